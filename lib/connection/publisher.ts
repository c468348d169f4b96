/**
 * Publishing with confirms. Every publish returns a promise that settles exactly once: on the
 * broker's ack, or with a typed error (NACKED, UNROUTABLE, CONFIRM_TIMEOUT, BUFFER_FULL,
 * DISCONNECTED, CLOSED, MESSAGE_TOO_LARGE or ENCODE_FAILED when the client cannot encode it,
 * or the broker's channel error). Confirms are pipelined: publishes go out
 * back to back and each promise settles when its own confirm comes.
 *
 * At-least-once across a connection loss: a publish whose confirm had not come when the
 * connection dropped is published again after the reconnection (the broker may then hold it
 * twice). While the connection is down or blocked, publishes wait in a buffer bounded in
 * messages and bytes.
 */
import type { ConnectionStatus } from './connection';
import type { Connection } from './connection';
import type { PublishBufferOptions } from './config';
import { ChannelError, ErrorCode, PostageError, PublishError, isRefusal, toPostageError } from '../errors';
import type { ExchangeDefinition } from '../messages/exchange';
import { publishThrowError } from './publish-errors';
import { withTimeout } from '../shutdown';
import type { PublishOptions, TransportChannel, TransportMessage } from '../transport/types';

interface Entry {
  readonly seq: number;
  readonly exchange: string;
  /** Declared (again after a reconnect) before the entry goes out. */
  readonly definition: ExchangeDefinition | undefined;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: PublishOptions;
  readonly resolve: () => void;
  readonly reject: (error: PostageError) => void;
  /** RPC requests go out on the channel that holds their reply consumer, never elsewhere. */
  readonly pinned: boolean;
  /** Date.now() after which the publish fails with CONFIRM_TIMEOUT. */
  readonly deadline: number;
  /** The channel of the current attempt; undefined while buffered or once settled. */
  channel: TransportChannel | undefined;
  returned: TransportMessage | undefined;
  settled: boolean;
}

/** Publisher settings, from the connection's configuration unless given. */
export interface PublisherOptions {
  /** Milliseconds. */
  confirmTimeout?: number;
  publishBuffer?: Readonly<PublishBufferOptions>;
  /**
   * Milliseconds close() waits for the publishes already accepted to settle before it fails
   * what is left with CLOSED. @default the confirm timeout (no publish then fails earlier than
   * it would have without the close)
   */
  closeTimeout?: number;
}

/** Sends in a row before the drain lets the event loop turn (confirms, timers, signals). */
const SENDS_PER_TURN = 512;
/** How long closing the publishing channel may take once every publish has settled. */
const CHANNEL_CLOSE_TIMEOUT_MS = 5_000;

/** Codes of a broker refusal that closes the channel: the unconfirmed publishes share its fate. */
const CHANNEL_EXCEPTIONS = new Set<ErrorCode>([
  ErrorCode.NOT_FOUND,
  ErrorCode.PRECONDITION_FAILED,
  ErrorCode.ACCESS_REFUSED,
  ErrorCode.RESOURCE_LOCKED,
  ErrorCode.BROKER_ERROR,
]);

/** Codes after which waiting longer cannot help: every buffered publish fails with it. */
const FATAL = new Set<ErrorCode>([
  ErrorCode.CLOSED,
  ErrorCode.RECONNECT_FAILED,
  ErrorCode.CONNECTION_FAILED,
  ErrorCode.INVALID_CONFIG,
]);

/**
 * Owns one confirm channel on a {@link Connection} and publishes on it.
 * @internal
 */
export class Publisher {
  private channel: TransportChannel | undefined;
  private opening: Promise<TransportChannel> | undefined;
  /**
   * Every unsettled publish (buffered or sent), oldest first, from `ledgerHead` on; settled
   * ones leave from the head. Confirms mostly come in publish order (not always: RabbitMQ
   * confirms a returned publish at once, before earlier ones a queue still holds) and a
   * basic.return comes before the ack of the same publish, so settling mostly pops at the head
   * and a return is matched by a short scan from it: no per-message map or timer on the hot
   * path. Deadlines grow with the sequence, so one timer armed for the head enforces every
   * confirm timeout.
   */
  private ledger: Entry[] = [];
  private ledgerHead = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Publishes sent and awaiting their confirm. */
  private unconfirmed = 0;
  /** Publishes waiting to go out, oldest first. */
  private buffer: Entry[] = [];
  private bufferedBytes = 0;
  private seq = 0;
  private pumping = false;
  /** Set while the channel's write buffer is full; publishes wait for 'drain'. */
  private draining: Promise<void> | undefined;
  /** Set by close(): no new publish is accepted; those accepted still go out and settle. */
  private closing: Promise<void> | undefined;
  /** Set once close() has waited for the accepted publishes: nothing goes out any more. */
  private closed = false;
  /** Called when the last unsettled publish settles (close() waits for it). */
  private onIdle: (() => void) | undefined;
  private readonly confirmTimeout: number;
  private readonly closeTimeout: number;
  private readonly limits: Readonly<PublishBufferOptions>;
  /**
   * Why a channel closed (e.g. 404 no exchange), for its unconfirmed publishes' errors. Set on
   * 'error', which amqplib emits before it fails the confirm callbacks.
   */
  private readonly closeReasons = new WeakMap<TransportChannel, PostageError>();
  /** Channels retired after a nack: closed once their last publish has settled. */
  private readonly retired = new WeakSet<TransportChannel>();
  private readonly onStatus = (status: ConnectionStatus): void => {
    if (status.type === 'connected' || status.type === 'unblocked') this.pump();
  };

  constructor(
    private readonly connection: Connection,
    options: PublisherOptions = {},
  ) {
    this.confirmTimeout = options.confirmTimeout ?? connection.config.confirmTimeout;
    this.closeTimeout = options.closeTimeout ?? this.confirmTimeout;
    this.limits = options.publishBuffer ?? connection.config.publishBuffer;
    connection.on('status', this.onStatus);
  }

  /** The open channel, if any (a synchronous fast path). */
  get current(): TransportChannel | undefined {
    return this.channel;
  }

  /** Publishes waiting in the outage buffer, and awaiting their confirm (for tests and metrics). */
  get pending(): { buffered: number; bufferedBytes: number; unconfirmed: number } {
    return {
      buffered: this.buffer.length,
      bufferedBytes: this.bufferedBytes,
      unconfirmed: this.unconfirmed,
    };
  }

  /** Returns the open confirm channel, opening one if needed. */
  getChannel(): Promise<TransportChannel> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    return this.channelForDrain();
  }

  /** The channel for publishes already accepted: still opened while close() waits for them. */
  private channelForDrain(): Promise<TransportChannel> {
    if (this.closed) return Promise.reject(closedError());
    if (this.channel !== undefined) return Promise.resolve(this.channel);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /**
   * Publishes a message: at once when the channel is ready, otherwise through the buffer.
   * @param exchange - a name, or a definition that is declared first (again after a reconnect)
   * @returns a promise settled by the broker's confirm, or rejected with a typed error within
   *   the confirm timeout
   */
  publish(
    exchange: string | ExchangeDefinition,
    routingKey: string,
    content: Buffer,
    options: PublishOptions,
  ): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    if (this.limits.policy === 'fail-fast' && this.connection.isRecovering) {
      return Promise.reject(
        new PublishError(ErrorCode.DISCONNECTED, 'the connection is down (publishBuffer policy fail-fast)'),
      );
    }
    const definition = typeof exchange === 'string' ? undefined : exchange;
    const name = typeof exchange === 'string' ? exchange : exchange.name;
    return new Promise<void>((resolve, reject) => {
      const entry = this.entry(name, definition, routingKey, content, options, resolve, reject, false);
      const channel = this.channel;
      if (
        channel !== undefined &&
        this.buffer.length === 0 &&
        this.draining === undefined &&
        this.connection.blocked === undefined &&
        (definition === undefined || this.connection.isExchangeDeclared(definition))
      ) {
        this.send(entry, channel);
        return;
      }
      if (
        this.buffer.length + 1 > this.limits.maxMessages ||
        this.bufferedBytes + content.length > this.limits.maxBytes
      ) {
        this.fail(
          entry,
          new PublishError(
            ErrorCode.BUFFER_FULL,
            `the publish buffer is full (${this.buffer.length} messages, ${this.bufferedBytes} bytes)`,
          ),
        );
        return;
      }
      this.buffer.push(entry);
      this.bufferedBytes += content.length;
      this.pump();
    });
  }

  /**
   * Publishes on a given channel (RPC: the channel that holds the reply consumer). Not
   * buffered, not republished: the RPC call retries by its own policy.
   */
  publishOn(
    channel: TransportChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: PublishOptions,
  ): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    return new Promise<void>((resolve, reject) => {
      this.send(
        this.entry(exchange, undefined, routingKey, content, options, resolve, reject, true),
        channel,
      );
    });
  }

  /**
   * Closes: no new publish is accepted (CLOSED); those already accepted, buffered or sent, go
   * out and settle (confirm, return or error) within `closeTimeout`, after which what is left
   * rejects with CLOSED; then the channel closes. Idempotent: every call returns the same
   * promise, which never rejects.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    await this.settled(this.closeTimeout);
    this.closed = true;
    this.connection.removeListener('status', this.onStatus);
    const closing = new PostageError(
      ErrorCode.CLOSED,
      'the producer closed before the message was confirmed',
    );
    for (const entry of this.ledger.slice(this.ledgerHead)) this.fail(entry, closing);
    this.compact();
    // A channel still opening (maybe waiting for a reconnection) closes itself when it opens:
    // close() must not wait for the broker to come back.
    const channel = this.channel;
    this.channel = undefined;
    if (channel !== undefined) await withTimeout(channel.close(), CHANNEL_CLOSE_TIMEOUT_MS);
  }

  /** Resolves once no publish is unsettled, or after `ms`. */
  private settled(ms: number): Promise<void> {
    this.compact();
    if (this.ledgerHead >= this.ledger.length) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.onIdle = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.onIdle = done;
      // Buffered publishes go out now if a channel is ready (the status listener pumps later).
      this.pump();
    });
  }

  private entry(
    exchange: string,
    definition: ExchangeDefinition | undefined,
    routingKey: string,
    content: Buffer,
    options: PublishOptions,
    resolve: () => void,
    reject: (error: PostageError) => void,
    pinned: boolean,
  ): Entry {
    const entry: Entry = {
      seq: this.seq++,
      exchange,
      definition,
      routingKey,
      content,
      options,
      resolve,
      reject,
      pinned,
      deadline: Date.now() + this.confirmTimeout,
      channel: undefined,
      returned: undefined,
      settled: false,
    };
    this.ledger.push(entry);
    if (this.sweepTimer === undefined) this.armSweep(this.confirmTimeout);
    return entry;
  }

  private armSweep(ms: number): void {
    this.sweepTimer = setTimeout(() => this.sweep(), ms);
  }

  /** Fails the publishes past their deadline (the oldest first) and arms the timer for the next. */
  private sweep(): void {
    this.sweepTimer = undefined;
    const now = Date.now();
    for (;;) {
      const head = this.ledger[this.ledgerHead];
      if (head === undefined) break;
      if (head.settled) {
        this.ledgerHead++;
        continue;
      }
      if (head.deadline > now) break;
      this.fail(
        head,
        new PublishError(
          ErrorCode.CONFIRM_TIMEOUT,
          `publish to exchange '${head.exchange}' with key '${head.routingKey}': no confirm within ${this.confirmTimeout} ms`,
        ),
      );
    }
    this.compact();
    const head = this.ledger[this.ledgerHead];
    if (head !== undefined) this.armSweep(Math.max(1, head.deadline - now));
  }

  /** Drops settled publishes from the head of the ledger; stops the timer when none is left. */
  private compact(): void {
    const ledger = this.ledger;
    let head = this.ledgerHead;
    while (head < ledger.length && (ledger[head] as Entry).settled) head++;
    if (head === ledger.length) {
      this.ledger = [];
      this.ledgerHead = 0;
      if (this.sweepTimer !== undefined) {
        clearTimeout(this.sweepTimer);
        this.sweepTimer = undefined;
      }
      this.onIdle?.();
      return;
    }
    if (head >= 1024 && head * 2 >= ledger.length) {
      this.ledger = ledger.slice(head);
      head = 0;
    }
    this.ledgerHead = head;
  }

  /** Sends buffered publishes in order while a channel is ready; waits (never spins) otherwise. */
  private pump(): void {
    if (this.pumping || this.buffer.length === 0) return;
    this.pumping = true;
    this.drainBuffer().then(
      () => this.afterDrain(),
      (err: unknown) => {
        // A defect, not an outcome: the buffered publishes fail with it rather than wait forever.
        const error = toPostageError(err, ErrorCode.BROKER_ERROR, 'publish from the outage buffer');
        this.connection.logger.error({ err: error }, 'publisher: the outage buffer could not be drained');
        for (const entry of [...this.buffer]) this.fail(entry, error);
        this.afterDrain();
      },
    );
  }

  private afterDrain(): void {
    this.pumping = false;
    // Entries may have come back (a channel lost meanwhile) after the loop's last check.
    if (this.buffer.length > 0 && this.channel !== undefined && this.connection.blocked === undefined)
      this.pump();
  }

  /**
   * The loop of {@link Publisher.pump}. It never runs in microtasks alone: a turn that sent
   * nothing, and every {@link SENDS_PER_TURN} sends, wait for the event loop, so confirms,
   * timers and signals are served whatever the broker or a message does.
   */
  private async drainBuffer(): Promise<void> {
    let sends = 0;
    let progressed = true;
    while (this.buffer.length > 0 && !this.closed) {
      if (!progressed || sends >= SENDS_PER_TURN) {
        await nextTurn();
        sends = 0;
        continue;
      }
      progressed = false;
      // Blocked by an alarm: the status listener pumps again on 'unblocked'.
      if (this.connection.blocked !== undefined) return;
      let channel: TransportChannel;
      try {
        channel = await this.channelForDrain();
      } catch (err) {
        const error = toPostageError(err, ErrorCode.CONNECTION_FAILED, 'open the publishing channel');
        if (FATAL.has(error.code) || isRefusal(error)) {
          for (const entry of [...this.buffer]) this.fail(entry, error);
          return;
        }
        await delay(50);
        continue;
      }
      if (this.draining !== undefined) {
        await this.draining;
        continue;
      }
      // The buffer may have emptied while the channel opened: its publishes timed out (an
      // outage longer than confirmTimeout) or the publisher closed.
      const entry = this.buffer[0];
      if (entry === undefined) return;
      const definition = entry.definition;
      if (definition !== undefined && !this.connection.isExchangeDeclared(definition)) {
        try {
          await this.connection.declareExchange(definition);
        } catch (err) {
          const error = toPostageError(err, ErrorCode.BROKER_ERROR, `declare exchange '${definition.name}'`);
          if (FATAL.has(error.code)) {
            for (const e of [...this.buffer]) this.fail(e, error);
            return;
          }
          if (CHANNEL_EXCEPTIONS.has(error.code)) this.fail(entry, error);
          else await delay(50);
          continue;
        }
        // Declared: send it now (the channel may have changed meanwhile: check again).
        if (this.buffer[0] !== entry || this.channel === undefined) continue;
        channel = this.channel;
      }
      if (this.channel !== channel) continue;
      this.buffer.shift();
      this.bufferedBytes -= entry.content.length;
      this.send(entry, channel);
      sends++;
      progressed = true;
    }
  }

  private send(entry: Entry, channel: TransportChannel): void {
    entry.channel = channel;
    this.unconfirmed++;
    let writable: boolean;
    try {
      writable = channel.publish(
        entry.exchange,
        entry.routingKey,
        entry.content,
        entry.options,
        (err: unknown) => this.onConfirm(entry, channel, err),
      );
    } catch (err) {
      const error = publishThrowError(err, entry.exchange);
      if (error.code !== ErrorCode.CHANNEL_CLOSED) {
        // The message itself cannot go out, on this channel or any other: it fails for good.
        this.fail(entry, error);
        return;
      }
      // The channel is closing: what follows goes on a new one, this publish with it.
      if (this.channel === channel) this.channel = undefined;
      if (entry.pinned) this.fail(entry, error);
      else {
        this.requeue([entry]);
        this.pump();
      }
      return;
    }
    if (!writable && this.draining === undefined && channel === this.channel) {
      this.draining = new Promise<void>((done) => {
        const release = (): void => {
          channel.removeListener('drain', release);
          channel.removeListener('close', release);
          this.draining = undefined;
          done();
        };
        channel.on('drain', release);
        channel.on('close', release);
      });
    }
  }

  private async open(): Promise<TransportChannel> {
    const channel = await this.connection.createChannel(true);
    channel.on('error', (err: Error) => {
      const reason = toPostageError(err, ErrorCode.CHANNEL_CLOSED, 'publishing channel');
      this.closeReasons.set(channel, reason);
      // "no exchange 'x'": the exchange was deleted; declare it again on next use.
      if (reason.code === ErrorCode.NOT_FOUND) this.connection.forgetExchanges();
    });
    channel.on('return', (message: TransportMessage) => this.onReturn(channel, message));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
      // Whatever amqplib did with the confirm callbacks, every publish of this channel settles
      // or goes back to the buffer.
      setImmediate(() => {
        for (const entry of this.ledger.slice(this.ledgerHead)) {
          if (entry.channel === channel) this.onConfirm(entry, channel, new Error('channel closed'));
        }
        this.pump();
      });
    });
    if (this.closed) {
      await withTimeout(channel.close(), CHANNEL_CLOSE_TIMEOUT_MS);
      throw closedError();
    }
    this.channel = channel;
    return channel;
  }

  private onConfirm(entry: Entry, channel: TransportChannel, err: unknown): void {
    if (entry.settled || entry.channel !== channel) return;
    this.settleConfirm(entry, channel, err);
    if (this.retired.has(channel)) this.closeIfDrained(channel);
  }

  /** Closes a channel retired after a nack once none of its publishes awaits a confirm. */
  private closeIfDrained(channel: TransportChannel): void {
    for (let at = this.ledgerHead; at < this.ledger.length; at++) {
      const entry = this.ledger[at] as Entry;
      if (!entry.settled && entry.channel === channel) return;
    }
    this.retired.delete(channel);
    void channel.close().catch(() => undefined);
  }

  private settleConfirm(entry: Entry, channel: TransportChannel, err: unknown): void {
    if (err === null || err === undefined) {
      if (entry.returned !== undefined) {
        const { replyCode, replyText } = entry.returned.fields;
        this.fail(
          entry,
          new PublishError(
            ErrorCode.UNROUTABLE,
            `no queue is bound to exchange '${entry.exchange}' with routing key '${entry.routingKey}' ` +
              `(${replyCode ?? 312} ${replyText ?? 'NO_ROUTE'})`,
          ),
        );
      } else {
        entry.settled = true;
        entry.channel = undefined;
        this.unconfirmed--;
        if (this.ledger[this.ledgerHead] === entry) this.compact();
        entry.resolve();
      }
      return;
    }
    const text = err instanceof Error ? err.message : String(err);
    const where = `publish to exchange '${entry.exchange}' with key '${entry.routingKey}'`;
    if (/nack/i.test(text)) {
      this.fail(entry, new PublishError(ErrorCode.NACKED, `${where}: the broker refused the message`));
      // RabbitMQ 3.10: a channel opened while a quorum queue elects a new leader can nack every
      // later publish to that queue (spec/cluster: still at 60 s, when a new channel on the same
      // node is confirmed at once). Later publishes go on a new channel; this one closes when
      // its last publish settles.
      if (this.channel === channel && !entry.pinned) {
        this.channel = undefined;
        this.retired.add(channel);
      }
      return;
    }
    const reason = this.closeReasons.get(channel);
    if (reason instanceof ChannelError && CHANNEL_EXCEPTIONS.has(reason.code)) {
      this.fail(
        entry,
        new ChannelError(reason.code, `${where}: ${reason.message}`, {
          cause: reason,
          replyCode: reason.replyCode ?? 0,
        }),
      );
      return;
    }
    // The connection (or channel) went away before the confirm: the broker may or may not
    // have the message. Publish it again (at-least-once), unless it is an RPC request.
    if (entry.pinned || this.closed) {
      this.fail(entry, reason ?? toPostageError(err, ErrorCode.CHANNEL_CLOSED, where));
    } else {
      this.requeue([entry]);
    }
  }

  /** Puts publishes back at the head of the buffer, in their original order. */
  private requeue(entries: Entry[]): void {
    for (const entry of entries) {
      if (entry.channel !== undefined) this.unconfirmed--;
      entry.channel = undefined;
      entry.returned = undefined;
      this.bufferedBytes += entry.content.length;
      let at = 0;
      while (at < this.buffer.length && (this.buffer[at] as Entry).seq < entry.seq) at++;
      this.buffer.splice(at, 0, entry);
    }
  }

  private fail(entry: Entry, error: PostageError): void {
    if (entry.settled) return;
    entry.settled = true;
    if (entry.channel === undefined) {
      const at = this.buffer.indexOf(entry);
      if (at >= 0) {
        this.buffer.splice(at, 1);
        this.bufferedBytes -= entry.content.length;
      }
    } else {
      entry.channel = undefined;
      this.unconfirmed--;
    }
    if (this.ledger[this.ledgerHead] === entry) this.compact();
    entry.reject(error);
  }

  /** Marks the publish a basic.return names: the oldest unconfirmed one of that channel that matches. */
  private onReturn(channel: TransportChannel, message: TransportMessage): void {
    const id = message.properties.messageId;
    if (id === undefined) return;
    const { exchange, routingKey } = message.fields;
    const ledger = this.ledger;
    for (let i = this.ledgerHead; i < ledger.length; i++) {
      const entry = ledger[i] as Entry;
      if (
        entry.channel === channel &&
        entry.returned === undefined &&
        entry.options.messageId === id &&
        entry.exchange === exchange &&
        entry.routingKey === routingKey
      ) {
        entry.returned = message;
        return;
      }
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves after the event loop has turned once (timers and I/O served). */
function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

function closedError(): PostageError {
  return new PostageError(ErrorCode.CLOSED, 'the producer is closed');
}
