/**
 * RPC calls: the reply path, pending calls, timeouts and retries.
 *
 * Default reply path: RabbitMQ direct reply-to (`amq.rabbitmq.reply-to`) consumed on a plain
 * channel of the producer that also sends the requests, with a correlation id per call, so any
 * number of calls are in flight on one producer. Compatibility path (`per-call`): a private queue per call, as Python
 * postage does; needed to call Python postage servers, which reply without a correlation id.
 */
import { v4 as uuid } from 'uuid';

import type { Connection } from '../connection/connection';
import type { Encoder } from '../messages/encoder';
import {
  ConnectionError,
  ErrorCode,
  PostageError,
  PublishError,
  RpcTimeoutError,
  ValidationError,
  toPostageError,
} from '../errors';
import type { ExchangeDefinition } from '../messages/exchange';
import type { Logger } from '../logger';
import { MessageResultError, localFailure, resultFromBody, type RpcResult } from '../messages/message';
import { publishThrowError } from '../connection/publish-errors';
import type { Publisher } from '../connection/publisher';
import { isEnvelope, isResultContent } from '../messages/schema';
import type { PublishOptions, TransportChannel, TransportMessage } from '../transport/types';

/** RabbitMQ's direct reply-to pseudo-queue. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** How replies come back: direct reply-to (default) or a private queue per call (Python postage servers). */
export type RpcReplyMode = 'direct' | 'per-call';

/** One RPC request, ready to publish. */
export interface RpcRequest {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  /** Properties of the request (content type, delivery mode, message id...). */
  readonly properties: PublishOptions;
  /** What the call is, for messages: e.g. `rpc 'echo'`. */
  readonly label: string;
  /** Declared before each attempt when not declared on the current connection. */
  readonly definition?: ExchangeDefinition;
}

/** Timing of one call. */
export interface RpcCallOptions {
  /** Per attempt, in milliseconds. */
  readonly timeoutMs: number;
  /** Extra attempts after the first one times out. */
  readonly maxRetry: number;
  readonly mode: RpcReplyMode;
}

/** Options of {@link RpcClient.consume}. */
export interface ConsumeRpcOptions {
  /** How many results to wait for. @default 1 */
  count?: number;
  /** Seconds to wait for all of them. @default the producer's rpc timeout */
  timeout?: number;
  /** Called with each decoded reply body, as postage's `callback`. */
  onReply?: (body: unknown) => void;
}

interface PendingCall {
  settle(result: RpcResult): void;
}

/** First delay before an unroutable request is sent again during a recovery; it doubles... */
const UNROUTABLE_FIRST_DELAY_MS = 100;
/** ...up to this. */
const UNROUTABLE_MAX_DELAY_MS = 1_000;

/**
 * A direct reply-to call: one object holds its state, so a call allocates no closures; its
 * timer passes the call to a shared function.
 */
class DirectCall implements PendingCall {
  attempts = 0;
  timer: NodeJS.Timeout | undefined;
  /** Sends the request again after it came back unroutable during a recovery. */
  retryTimer: NodeJS.Timeout | undefined;
  /** Times the request was sent again for that reason (the backoff grows with it). */
  unroutable = 0;
  /** Date.now() at which the call's last attempt times out. */
  readonly deadline: number;
  /** The request's properties with the reply address, built once for every attempt. */
  readonly properties: PublishOptions;

  constructor(
    readonly client: RpcClient,
    readonly request: RpcRequest,
    readonly options: RpcCallOptions,
    readonly correlationId: string,
    private readonly resolve: (result: RpcResult) => void,
  ) {
    // The request's properties are built for this call alone: completed in place, not copied.
    const properties = request.properties;
    properties.replyTo = DIRECT_REPLY_TO;
    properties.correlationId = correlationId;
    // A call that timed out must not run late: the broker drops the request instead.
    properties.expiration = expirationOf(options.timeoutMs);
    this.properties = properties;
    this.deadline = Date.now() + (options.maxRetry + 1) * options.timeoutMs;
  }

  settle(result: RpcResult): void {
    if (!this.client.forget(this.correlationId)) return;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    this.resolve(result);
  }
}

function onDirectRetryTimer(call: DirectCall): void {
  call.retryTimer = undefined;
  call.client.sendDirect(call);
}

function onDirectCallTimer(call: DirectCall): void {
  if (call.attempts <= call.options.maxRetry) {
    call.client.logDebug(
      { attempts: call.attempts },
      `${call.request.label}: no reply in ${call.options.timeoutMs} ms, retrying`,
    );
    call.client.attemptDirect(call);
  } else {
    call.settle(localFailure(timedOut(call.request, call.options), 'TimeoutError'));
  }
}

/**
 * The error of a call that got no reply. Its stack is captured again where the caller awaited
 * the call (producer.ts, `withCallerStack`), so that it names the caller's line.
 */
function timedOut(request: RpcRequest, options: RpcCallOptions): RpcTimeoutError {
  return new RpcTimeoutError(
    ErrorCode.RPC_TIMEOUT,
    `${request.label}: no reply from exchange '${request.exchange}' key '${request.routingKey}' after ` +
      `${options.maxRetry + 1} attempt(s) of ${options.timeoutMs / 1000} s`,
  );
}

let lastTimeoutMs = -1;
let lastExpiration = '';

/** The per-message TTL of a request, in whole milliseconds (cached: a producer uses one timeout). */
function expirationOf(timeoutMs: number): string {
  if (timeoutMs !== lastTimeoutMs) {
    lastExpiration = String(Math.max(1, Math.ceil(timeoutMs)));
    lastTimeoutMs = timeoutMs;
  }
  return lastExpiration;
}

/** @internal */
export class RpcClient {
  private readonly pending = new Map<string, PendingCall>();
  /**
   * The plain (non-confirm) channel that holds the direct reply-to consumer and sends the
   * direct requests: the reply is the acknowledgement, and a mandatory request that routes
   * nowhere comes back as a basic.return (UNROUTABLE) on it.
   */
  private replyChannel: TransportChannel | undefined;
  private replyOpening: Promise<TransportChannel> | undefined;
  private closed = false;
  /** Said once per producer: a reply without a correlation id (see {@link RpcClient.noCorrelationId}). */
  private warnedNoCorrelationId = false;

  /**
   * @param recoveryWindow - milliseconds after a recovery of the connection during which an
   *   unroutable request is sent again (see {@link RpcClient.unroutableRetryDelay})
   */
  constructor(
    private readonly publisher: Publisher,
    private readonly encoder: Encoder,
    private readonly logger: Logger,
    private readonly connection?: Connection,
    private readonly recoveryWindow = 0,
  ) {}

  /** Calls in flight (for tests and metrics). */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Makes a call and resolves to its result. Never rejects for a remote or network outcome:
   * a timeout after all retries is `MessageResultException('TimeoutError')`, an unroutable
   * request `MessageResultException('UnroutableError')`; `unwrap()` throws the typed error.
   */
  call(request: RpcRequest, options: RpcCallOptions): Promise<RpcResult> {
    if (this.closed) return Promise.resolve(localFailure(closedError(), 'ConnectionError'));
    if (options.mode === 'direct') {
      return new Promise<RpcResult>((resolve) => {
        // The request's message id is unique to the call and kept by its retries: it is the
        // correlation id too.
        const call = new DirectCall(this, request, options, request.properties.messageId ?? uuid(), resolve);
        this.pending.set(call.correlationId, call);
        this.attemptDirect(call);
      });
    }
    const correlationId = uuid();
    return new Promise<RpcResult>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let retryTimer: NodeJS.Timeout | undefined;
      let attempts = 0;
      let unroutable = 0;
      let cleanup: (() => void) | undefined;
      let settled = false;
      const deadline = Date.now() + (options.maxRetry + 1) * options.timeoutMs;
      const call: PendingCall = {
        settle: (result) => {
          if (!this.pending.delete(correlationId)) return;
          settled = true;
          clearTimeout(timer);
          clearTimeout(retryTimer);
          cleanup?.();
          resolve(result);
        },
      };
      this.pending.set(correlationId, call);
      const fail = (err: unknown): void => {
        if (settled) return;
        const delay = isUnroutable(err) ? this.unroutableRetryDelay(deadline, unroutable) : undefined;
        if (delay === undefined) {
          this.failAttempt(call, request.label, attempts, err);
          return;
        }
        unroutable++;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(() => {
          if (!settled) send().catch(fail);
        }, delay);
      };
      // per-call mode: one private queue for the call, kept across its retries, so a late
      // reply to attempt 1 still answers it.
      let privateQueue: Promise<{ channel: TransportChannel; queue: string }> | undefined;
      const send = async (): Promise<void> => {
        const definition = request.definition;
        if (
          definition !== undefined &&
          this.connection !== undefined &&
          !this.connection.isExchangeDeclared(definition)
        ) {
          await this.connection.declareExchange(definition);
        }
        if (settled) return;
        privateQueue ??= this.openPrivateQueue(correlationId, call, (release) => {
          if (settled) release();
          else cleanup = release;
        });
        const opened = privateQueue;
        return opened.then(
          ({ channel, queue }) =>
            this.publisher.publishOn(channel, request.exchange, request.routingKey, request.content, {
              ...request.properties,
              replyTo: queue,
              correlationId,
              expiration: String(Math.max(1, Math.ceil(options.timeoutMs))),
            }),
          (err: unknown) => {
            if (privateQueue === opened) privateQueue = undefined;
            throw err;
          },
        );
      };
      const attempt = (): void => {
        attempts++;
        clearTimeout(retryTimer);
        timer = setTimeout(() => {
          if (attempts <= options.maxRetry) {
            this.logger.debug(
              { attempts },
              `${request.label}: no reply in ${options.timeoutMs} ms, retrying`,
            );
            attempt();
          } else {
            call.settle(localFailure(timedOut(request, options), 'TimeoutError'));
          }
        }, options.timeoutMs);
        send().catch(fail);
      };
      attempt();
    });
  }

  /**
   * Publishes a call whose reply goes to a private queue, and returns that queue's name
   * without waiting (postage's `_queue_only`). Read the replies with {@link RpcClient.consume}
   * on the same producer: the queue is exclusive to its connection.
   */
  async publishQueueOnly(request: RpcRequest, timeoutMs: number): Promise<string> {
    const channel = await this.publisher.getChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await this.publisher.publishOn(channel, request.exchange, request.routingKey, request.content, {
      ...request.properties,
      replyTo: queue,
      correlationId: uuid(),
      expiration: String(Math.max(1, Math.ceil(timeoutMs))),
    });
    return queue;
  }

  /**
   * Reads results from a reply queue (postage's `consume_rpc`). Resolves with `count` results;
   * on timeout rejects with {@link RpcTimeoutError} whose `results` holds those that came.
   */
  async consume(
    queue: string,
    count: number,
    timeoutMs: number,
    onReply?: (body: unknown) => void,
  ): Promise<RpcResult[]> {
    const timeoutError = new RpcTimeoutError(
      ErrorCode.RPC_TIMEOUT,
      `consume_rpc: fewer than ${count} replies on '${queue}' within ${timeoutMs} ms`,
    );
    const channel = await this.publisher.getChannel();
    const results: RpcResult[] = [];
    let consumerTag: string | undefined;
    let finish: ((error?: PostageError) => void) | undefined;
    const done = new Promise<RpcResult[]>((resolve, reject) => {
      const timer = setTimeout(() => finish?.(timeoutError), timeoutMs);
      finish = (error) => {
        finish = undefined;
        clearTimeout(timer);
        if (consumerTag !== undefined) channel.cancel(consumerTag).catch(() => undefined);
        if (error === undefined) resolve(results);
        else reject(Object.assign(error, { results: [...results] }));
      };
    });
    try {
      const reply = await channel.consume(
        queue,
        (message) => {
          if (finish === undefined) return;
          if (message === null) {
            finish(new ConnectionError(ErrorCode.CHANNEL_CLOSED, `the reply queue '${queue}' was deleted`));
            return;
          }
          if (onReply !== undefined) {
            try {
              onReply(this.tryDecode(message));
            } catch (err) {
              this.logger.warn({ err }, 'consume_rpc callback threw');
            }
          }
          results.push(this.decodeReply(message));
          if (results.length >= count) finish();
        },
        { noAck: true },
      );
      consumerTag = reply.consumerTag;
    } catch (err) {
      finish?.(toPostageError(err, ErrorCode.BROKER_ERROR, `consume_rpc on '${queue}'`));
    }
    return done;
  }

  /** Settles every pending call with a CLOSED failure. */
  close(): void {
    this.closed = true;
    for (const call of [...this.pending.values()])
      call.settle(localFailure(closedError(), 'ConnectionError'));
    const channel = this.replyChannel;
    this.replyChannel = undefined;
    if (channel !== undefined && this.connection !== undefined) void channel.close().catch(() => undefined);
  }

  private async openPrivateQueue(
    correlationId: string,
    call: PendingCall,
    onRelease: (release: () => void) => void,
  ): Promise<{ channel: TransportChannel; queue: string }> {
    const channel = await this.publisher.getChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    const { consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (message === null) return;
        // Python postage replies carry no correlation id: the private queue is the correlation.
        const id = message.properties.correlationId;
        if (id !== undefined && id !== correlationId) return;
        call.settle(this.decodeReply(message));
      },
      { noAck: true },
    );
    // Cancelling the only consumer of an auto-delete queue deletes the queue.
    onRelease(() => {
      channel.cancel(consumerTag).catch(() => undefined);
    });
    return { channel, queue };
  }

  /** @internal Removes a pending call; false when it had already settled. */
  forget(correlationId: string): boolean {
    return this.pending.delete(correlationId);
  }

  /** @internal */
  logDebug(fields: Record<string, unknown>, message: string): void {
    this.logger.debug(fields, message);
  }

  /**
   * @internal One attempt of a direct call: sent synchronously when the reply channel is open
   * and the exchange declared (the common case), otherwise once they are.
   */
  attemptDirect(call: DirectCall): void {
    call.attempts++;
    call.timer = setTimeout(onDirectCallTimer, call.options.timeoutMs, call);
    // This attempt sends the request: a resend pending from the last one is moot.
    clearTimeout(call.retryTimer);
    call.retryTimer = undefined;
    this.sendDirect(call);
  }

  /** @internal Sends a direct call's request, within its current attempt. */
  sendDirect(call: DirectCall): void {
    const channel = this.replyChannel;
    const definition = call.request.definition;
    if (
      channel !== undefined &&
      (definition === undefined ||
        this.connection === undefined ||
        this.connection.isExchangeDeclared(definition))
    ) {
      this.publishDirect(call, channel);
      return;
    }
    this.prepareDirect(call).then(
      (ready) => {
        if (this.pending.get(call.correlationId) === call) this.publishDirect(call, ready);
      },
      (err: unknown) => this.failAttempt(call, call.request.label, call.attempts, err),
    );
  }

  private async prepareDirect(call: DirectCall): Promise<TransportChannel> {
    const definition = call.request.definition;
    if (
      definition !== undefined &&
      this.connection !== undefined &&
      !this.connection.isExchangeDeclared(definition)
    ) {
      await this.connection.declareExchange(definition);
    }
    return this.replyChannel ?? this.openReplyChannel();
  }

  private publishDirect(call: DirectCall, channel: TransportChannel): void {
    const { request } = call;
    try {
      channel.publish(request.exchange, request.routingKey, request.content, call.properties);
    } catch (err) {
      const error = publishThrowError(err, request.exchange);
      // A closing channel: the next attempt opens another. An encoding failure ends the call.
      if (error.code === ErrorCode.CHANNEL_CLOSED && this.replyChannel === channel)
        this.replyChannel = undefined;
      this.failAttempt(call, request.label, call.attempts, error);
    }
  }

  /** What a failed send means for the call: settled at once when no retry can help. */
  private failAttempt(call: PendingCall, label: string, attempts: number, err: unknown): void {
    const error = toPostageError(err, ErrorCode.CHANNEL_CLOSED, label);
    switch (error.code) {
      case ErrorCode.UNROUTABLE:
      case ErrorCode.NOT_FOUND:
        // Nobody can answer: retrying would only wait out every timeout.
        call.settle(
          localFailure(error, error.code === ErrorCode.UNROUTABLE ? 'UnroutableError' : 'NotFoundError'),
        );
        return;
      case ErrorCode.CLOSED:
        call.settle(localFailure(error, 'ConnectionError'));
        return;
      case ErrorCode.ENCODE_FAILED:
      case ErrorCode.MESSAGE_TOO_LARGE:
        // The request itself cannot be sent: another attempt would fail the same way.
        call.settle(localFailure(error, 'ValidationError'));
        return;
      default:
        // Channel or connection trouble: the attempt's timer will retry on a fresh channel.
        this.logger.debug({ err: error }, `${label}: attempt ${attempts} not sent`);
    }
  }

  /** Opens the reply channel and its direct reply-to consumer (again after a reconnection). */
  private openReplyChannel(): Promise<TransportChannel> {
    this.replyOpening ??= this.setUpReplyChannel().finally(() => {
      this.replyOpening = undefined;
    });
    return this.replyOpening;
  }

  private async setUpReplyChannel(): Promise<TransportChannel> {
    if (this.closed) throw closedError();
    const channel =
      this.connection === undefined
        ? await this.publisher.getChannel()
        : await this.connection.createChannel(false);
    channel.on('close', () => {
      if (this.replyChannel === channel) this.replyChannel = undefined;
    });
    channel.on('error', (err: Error) => {
      // "no exchange 'x'": deleted meanwhile; the retry declares it again.
      const reason = toPostageError(err, ErrorCode.CHANNEL_CLOSED, 'RPC channel');
      if (reason.code === ErrorCode.NOT_FOUND) this.connection?.forgetExchanges();
    });
    channel.on('return', (message: TransportMessage) => this.onReturn(message));
    try {
      await channel.consume(DIRECT_REPLY_TO, (message) => this.onDirectReply(channel, message), {
        noAck: true,
      });
    } catch (err) {
      await channel.close().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await channel.close().catch(() => undefined);
      throw closedError();
    }
    this.replyChannel = channel;
    return channel;
  }

  /**
   * The rule for an unroutable request: after a recovery of the connection, the server may not
   * have declared its queue again yet (a non-durable queue is gone after a broker restart, and
   * the server's connection comes back on its own schedule). So within `recoveryWindow` ms of
   * the recovery, while the call has time left, the request is sent again after a backoff
   * (100 ms doubling up to 1 s); the delay is returned. Otherwise (a stable connection, the
   * window or the call's time run out) undefined: the call fails with UNROUTABLE at once.
   */
  private unroutableRetryDelay(deadline: number, retries: number): number | undefined {
    const recoveredAt = this.connection?.lastRecovery;
    if (recoveredAt === undefined || this.closed) return undefined;
    const now = Date.now();
    if (now - recoveredAt > this.recoveryWindow) return undefined;
    const delay = Math.min(UNROUTABLE_MAX_DELAY_MS, UNROUTABLE_FIRST_DELAY_MS * 2 ** Math.min(retries, 10));
    return now + delay < deadline ? delay : undefined;
  }

  /**
   * A request that no queue took: its call fails with UNROUTABLE, at once unless it came
   * back during a recovery (see {@link RpcClient.unroutableRetryDelay}).
   */
  private onReturn(message: TransportMessage): void {
    const id = message.properties.correlationId;
    const call = id === undefined ? undefined : this.pending.get(id);
    if (!(call instanceof DirectCall)) return;
    const { replyCode, replyText, exchange, routingKey } = message.fields;
    const delay = this.unroutableRetryDelay(call.deadline, call.unroutable);
    if (delay !== undefined) {
      this.logger.debug(
        { delayMs: delay, retries: call.unroutable },
        `${call.request.label}: unroutable after a recovery, sending again`,
      );
      call.unroutable++;
      clearTimeout(call.retryTimer);
      call.retryTimer = setTimeout(onDirectRetryTimer, delay, call);
      return;
    }
    const error = new PublishError(
      ErrorCode.UNROUTABLE,
      `no queue is bound to exchange '${exchange}' with routing key '${routingKey}' ` +
        `(${replyCode ?? 312} ${replyText ?? 'NO_ROUTE'})`,
    );
    call.settle(localFailure(error, 'UnroutableError'));
  }

  private onDirectReply(channel: TransportChannel, message: TransportMessage | null): void {
    if (message === null) {
      // The broker cancelled the reply consumer: open a fresh channel for the next attempt.
      if (this.replyChannel === channel) this.replyChannel = undefined;
      return;
    }
    const id = message.properties.correlationId;
    if (id === undefined) {
      this.noCorrelationId(message);
      return;
    }
    const call = this.pending.get(id);
    if (call === undefined) {
      // A late reply: its call gave up (timed out, or the producer closed).
      this.logger.debug({ correlationId: id }, 'reply dropped: no pending call has its correlation id');
      return;
    }
    call.settle(this.decodeReply(message));
  }

  /**
   * A reply without a correlation id cannot be matched to its call over direct reply-to: the
   * server is almost surely Python postage, which never sets one. The call then times out
   * after its retries while the server runs it once per attempt, so the first such reply is a
   * warning (once per producer) with the fix; the next ones are debug lines.
   */
  private noCorrelationId(message: TransportMessage): void {
    if (this.warnedNoCorrelationId) {
      this.logger.debug({ pending: this.pending.size }, 'reply without a correlation id dropped');
      return;
    }
    this.warnedNoCorrelationId = true;
    const body = this.tryDecode(message);
    const server = isEnvelope(body) ? body.fingerprint : undefined;
    this.logger.warn(
      { server, pending: this.pending.size },
      'an RPC reply came without a correlation id, which direct reply-to cannot match to its call: ' +
        'the server is probably Python postage. Its calls will time out after their retries, and ' +
        "the server runs each once per attempt. Call it with rpcReplyMode: 'per-call' (producer " +
        'option, or POSTAGE_RPC_REPLY_MODE=per-call)',
    );
  }

  private tryDecode(message: TransportMessage): unknown {
    try {
      return this.encoder.decode(message.content);
    } catch {
      return undefined;
    }
  }

  /** Any reply becomes a result: one that is not a valid result message is a MessageResultError. */
  private decodeReply(message: TransportMessage): RpcResult {
    let body: unknown;
    try {
      body = this.encoder.decode(message.content);
    } catch (err) {
      return malformed(err instanceof PostageError ? err.message : String(err));
    }
    if (!isEnvelope(body) || body.type !== 'result' || !isResultContent(body.content)) {
      return malformed(`not a result message: ${truncate(JSON.stringify(body))}`);
    }
    // The checks above narrowed body and its content apart; together they are the shape
    // resultFromBody takes (which copies what it keeps: no second copy here).
    return resultFromBody(body as typeof body & { content: typeof body.content });
  }
}

function malformed(detail: string): MessageResultError {
  const result = new MessageResultError(`Malformed reply ${detail}`);
  result.error = new ValidationError(ErrorCode.RPC_MALFORMED_REPLY, `malformed RPC reply: ${detail}`);
  return result;
}

function isUnroutable(err: unknown): boolean {
  return err instanceof PostageError && err.code === ErrorCode.UNROUTABLE;
}

function closedError(): PostageError {
  return new PostageError(ErrorCode.CLOSED, 'the producer was closed before the reply came');
}

function truncate(text: string | undefined): string {
  if (text === undefined) return 'undefined';
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
