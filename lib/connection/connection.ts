import os from 'node:os';
import { inspect, type InspectOptionsStylized } from 'node:util';

import {
  describeEndpoint,
  resolveConnectionConfig,
  type ConnectionConfig,
  type ConnectionOptions,
  type Endpoint,
} from './config';
import {
  ConnectionError,
  ErrorCode,
  PostageError,
  isRefusal,
  redactCredentials,
  toPostageError,
} from '../errors';
import { SafeEmitter } from '../events';
import { exchangeKey, type ExchangeDefinition } from '../messages/exchange';
import { getLogger } from '../logger';
import { TIMED_OUT, beforeDeadline } from '../shutdown';
import { amqpTransport } from '../transport/amqp/amqp-transport';
import { memoryTransport } from '../transport/memory';
import type { Transport, TransportChannel, TransportConnection } from '../transport/types';

/** Lifecycle of a {@link Connection}, as a discriminated union on `type`. */
export type ConnectionStatus =
  /** Open; `recovered` is true when this follows a loss (channels and consumers are being recovered). */
  | { type: 'connected'; endpoint: string; recovered: boolean }
  /** The connection was lost unexpectedly; recovery starts. */
  | { type: 'disconnected'; endpoint: string; error: PostageError | undefined }
  /** The next attempt to reconnect starts in `delayMs`. */
  | { type: 'reconnecting'; attempt: number; delayMs: number; error: PostageError | undefined }
  /** Recovery gave up (reconnect.maxAttempts): pending work fails with RECONNECT_FAILED. */
  | { type: 'failed'; error: PostageError }
  | { type: 'blocked'; reason: string }
  | { type: 'unblocked' }
  | { type: 'closed' };

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  status: [status: ConnectionStatus];
  error: [error: PostageError];
}

/** How long the broker may take to answer a connection close. */
const CLOSE_TIMEOUT_MS = 5_000;

const transports = new Map<string, Transport>([
  ['amqp', amqpTransport],
  ['amqps', amqpTransport],
  ['memory', memoryTransport],
]);

/**
 * Registers the transport for a URL scheme (the in-process broker registers `memory`).
 * @internal
 */
export function registerTransport(scheme: string, transport: Transport): void {
  transports.set(scheme, transport);
}

/**
 * One connection to the broker, shared by any number of producers, consumers and processors.
 * It connects lazily on first use, declares each exchange once, and never lets an amqplib
 * 'error' go unhandled. Components built without a `connection` option open their own.
 *
 * Recovery: when the connection is lost unexpectedly it reconnects with exponential backoff
 * and jitter, moving through the URL list; meanwhile {@link Connection.open} waits for it.
 * Exchanges are declared again on their next use; consumers and publishers recover their own
 * channels when they see `connected` with `recovered: true`.
 *
 * @example
 * ```ts
 * const connection = new Connection({ url: 'amqp://guest:guest@localhost:5672' });
 * const producer = EchoProducer.create({ connection });
 * const processor = new EchoProcessor({ connection });
 * // ...
 * await connection.close();
 * ```
 */
export class Connection extends SafeEmitter<ConnectionEvents> {
  /** The resolved settings (endpoints never appear in logs with their password). */
  readonly config: ConnectionConfig;
  /** A name shown in the broker's management UI. */
  readonly connectionName: string;
  private current: TransportConnection | undefined;
  private currentEndpoint: Endpoint | undefined;
  private opening: Promise<TransportConnection> | undefined;
  private closing: Promise<void> | undefined;
  private exchanges = new Map<string, Promise<void>>();
  /** Exchange definitions (by identity) declared in that epoch. */
  private declaredDefinitions = new WeakMap<ExchangeDefinition, number>();
  /** Incremented for every new underlying connection. */
  private generation = 0;
  /** Incremented on every new connection and when a declaration goes stale (exchange deleted). */
  private epoch = 0;
  private topology: Promise<{ channel: TransportChannel; generation: number }> | undefined;
  private blockedReason: string | undefined;
  /** Index of the endpoint to try first on the next attempt. */
  private nextEndpoint = 0;
  /** Set while recovering after an unexpected close. */
  private recovering = false;
  /** True once a connection was ever opened: later losses are recovered. */
  private everConnected = false;
  /** Cuts a backoff sleep short (close()). */
  private wake: (() => void) | undefined;
  private recoveredAt: number | undefined;

  constructor(options: ConnectionOptions & { connectionName?: string } = {}) {
    super(options.logger ?? getLogger());
    this.config = resolveConnectionConfig(options);
    this.connectionName = options.connectionName ?? `postage ${process.pid}@${os.hostname()}`;
  }

  /** True while an underlying connection is open. */
  get isOpen(): boolean {
    return this.current !== undefined;
  }

  /** True once {@link Connection.close} was called. */
  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /** True while reconnecting after an unexpected close. */
  get isRecovering(): boolean {
    return this.recovering;
  }

  /** Date.now() when the connection last came back after a loss; undefined if it never did. */
  get lastRecovery(): number | undefined {
    return this.recoveredAt;
  }

  /** The broker has blocked publishers (memory or disk alarm); the reason, or undefined. */
  get blocked(): string | undefined {
    return this.blockedReason;
  }

  /** Where the connection is (or would be) open, without credentials. */
  get endpoint(): string {
    const endpoint = this.currentEndpoint ?? this.config.endpoints[0];
    return endpoint === undefined ? '(none)' : describeEndpoint(endpoint);
  }

  /**
   * What the connection shows of itself to `JSON.stringify`: its name, endpoints (without
   * password) and state. `util.inspect` (console.log) prints the same.
   */
  toJSON(): { name: string; endpoints: string[]; open: boolean; closed: boolean; recovering: boolean } {
    return {
      name: this.connectionName,
      endpoints: this.config.endpoints.map(describeEndpoint),
      open: this.isOpen,
      closed: this.isClosed,
      recovering: this.recovering,
    };
  }

  /** Prints what {@link Connection.toJSON} returns: never the password, nor amqplib's internals. */
  [inspect.custom](_depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    return `Connection ${show(this.toJSON(), options)}`;
  }

  /**
   * Opens the connection if it is not open (trying each endpoint in order) and returns it.
   * A refusal fails at once, without retrying: ACCESS_REFUSED (the login: user name or
   * password) or NOT_ALLOWED (the virtual host). A broker that cannot be reached is retried
   * with backoff until connectTimeout, each failed attempt logged at warn.
   * @throws {@link ConnectionError} CONNECTION_FAILED, ACCESS_REFUSED, NOT_ALLOWED, or CLOSED after close()
   */
  open(): Promise<TransportConnection> {
    if (this.closing !== undefined) {
      return Promise.reject(new ConnectionError(ErrorCode.CLOSED, 'the connection is closed'));
    }
    if (this.current !== undefined) return Promise.resolve(this.current);
    if (this.opening === undefined) {
      const opening = this.firstConnect().finally(() => {
        if (this.opening === opening) this.opening = undefined;
      });
      this.opening = opening;
    }
    return this.opening;
  }

  /**
   * Closes the underlying connection, if one is open, without closing this Connection: the
   * next open() connects again. A component whose start failed releases what it opened with
   * it (the process must not be held by a socket nobody uses). No recovery follows.
   * @internal
   */
  async disconnect(): Promise<void> {
    const connection = this.current;
    if (connection === undefined || this.closing !== undefined) return;
    // No longer current: its 'close' is not taken for a loss.
    this.current = undefined;
    this.topology = undefined;
    this.exchanges.clear();
    this.blockedReason = undefined;
    try {
      await connection.close();
    } catch (err) {
      this.logger.debug({ err }, 'disconnect on a closed connection');
    }
  }

  /**
   * Opens a new channel on the connection. Its 'error' event is always handled.
   * @param confirm - publisher confirms on this channel
   */
  async createChannel(confirm: boolean): Promise<TransportChannel> {
    const connection = await this.open();
    let channel: TransportChannel;
    try {
      channel = confirm ? await connection.createConfirmChannel() : await connection.createChannel();
    } catch (err) {
      throw toPostageError(err, ErrorCode.CHANNEL_CLOSED, 'cannot open a channel');
    }
    // amqplib throws an unhandled 'error' when a channel is closed by the broker.
    channel.on('error', (err: Error) => this.logger.debug({ err }, 'channel error'));
    return channel;
  }

  /**
   * Declares an exchange, once per underlying connection (again after a reconnect). Passive
   * exchanges and the reserved `amq.*` exchanges are checked, not declared; the default
   * exchange (`''`) is skipped.
   * @throws {@link ChannelError} e.g. PRECONDITION_FAILED for a redeclare with other parameters
   */
  declareExchange(exchange: ExchangeDefinition): Promise<void> {
    if (exchange.name === '') return Promise.resolve();
    const key = exchangeKey(exchange);
    let declared = this.exchanges.get(key);
    if (declared === undefined) {
      declared = this.withTopology(async (channel, generation) => {
        // Read once the topology channel is open: opening the connection starts a new epoch,
        // and a declaration made on it must count for that epoch (a producer whose first act
        // is a publish would otherwise take the slow path for its whole life).
        const epoch = this.epoch;
        if (exchange.passive || exchange.name.startsWith('amq.')) {
          await channel.checkExchange(exchange.name);
        } else {
          await channel.assertExchange(exchange.name, exchange.exchange_type, {
            durable: exchange.durable,
            autoDelete: exchange.auto_delete,
            internal: exchange.internal ?? false,
            arguments: { ...(exchange.arguments ?? {}) },
          });
        }
        // Declared on the connection of that generation: a reconnect makes it stale.
        if (generation === this.generation && epoch === this.epoch)
          this.declaredDefinitions.set(exchange, epoch);
        this.logger.debug({ exchange: exchange.name, type: exchange.exchange_type }, 'exchange declared');
      }, `declare exchange '${exchange.name}'`);
      // A failed declaration is retried on next use.
      declared.catch(() => {
        if (this.exchanges.get(key) === declared) this.exchanges.delete(key);
      });
      this.exchanges.set(key, declared);
    } else if (this.declaredDefinitions.get(exchange) !== this.epoch) {
      // Another definition object with the same parameters was declared: this one is too,
      // while that declaration still stands (a close or forgetExchanges() clears the map).
      const pending = declared;
      void pending.then(
        () => {
          if (this.current !== undefined && this.exchanges.get(key) === pending)
            this.declaredDefinitions.set(exchange, this.epoch);
        },
        () => undefined,
      );
    }
    return declared;
  }

  /** True when the exchange was declared on the current connection (a synchronous fast path). */
  isExchangeDeclared(exchange: ExchangeDefinition): boolean {
    return (
      exchange.name === '' ||
      (this.current !== undefined && this.declaredDefinitions.get(exchange) === this.epoch)
    );
  }

  /**
   * Forgets that exchanges were declared (the broker said one does not exist: deleted by an
   * operator, or auto-deleted): each is declared again on its next use.
   */
  forgetExchanges(): void {
    this.epoch++;
    this.exchanges.clear();
  }

  /**
   * Runs a declaration on the connection's topology channel. A broker error closes only that
   * channel (never a publishing or consuming one); it is reopened on the next call.
   * @internal
   */
  async withTopology<T>(
    fn: (channel: TransportChannel, generation: number) => Promise<T>,
    what: string,
  ): Promise<T> {
    const topology = (this.topology ??= this.createChannel(false).then((channel) => {
      channel.on('close', () => {
        if (this.topology === topology) this.topology = undefined;
      });
      return { channel, generation: this.generation };
    }));
    let opened: { channel: TransportChannel; generation: number };
    try {
      opened = await topology;
    } catch (err) {
      if (this.topology === topology) this.topology = undefined;
      throw err;
    }
    try {
      return await fn(opened.channel, opened.generation);
    } catch (err) {
      throw toPostageError(err, ErrorCode.BROKER_ERROR, what);
    }
  }

  /**
   * Closes the connection and every channel on it. Idempotent and safe to call concurrently:
   * every call returns the same promise, which never rejects. Bounded: a connection still
   * opening is waited for up to `connectTimeout`, and a broker that does not answer the close
   * within 5 s is left to the heartbeat.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.wake?.();
    const opening = this.opening;
    if (opening !== undefined) await opening.catch(() => undefined);
    const connection = this.current;
    this.current = undefined;
    this.topology = undefined;
    this.exchanges.clear();
    if (connection !== undefined) {
      const closed = connection.close().catch((err: unknown) => {
        // Already closed by the peer: nothing left to release.
        this.logger.debug({ err }, 'close on a closed connection');
      });
      if ((await beforeDeadline(closed, Date.now() + CLOSE_TIMEOUT_MS)) === TIMED_OUT) {
        this.logger.warn({ timeoutMs: CLOSE_TIMEOUT_MS }, 'the broker did not answer the close in time');
      }
    }
    this.emitStatus({ type: 'closed' });
  }

  /**
   * The first connection: every endpoint in turn, again with backoff, until connectTimeout
   * has passed; then CONNECTION_FAILED.
   */
  private async firstConnect(): Promise<TransportConnection> {
    const deadline = Date.now() + this.config.connectTimeout;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.connectAny(deadline, this.everConnected);
      } catch (err) {
        // A refusal (login, vhost) is an answer, not an outage: retrying cannot change it.
        if (err instanceof PostageError && err.code !== ErrorCode.CONNECTION_FAILED) throw err;
        const delayMs = Math.min(this.backoff(attempt), deadline - Date.now());
        this.logger.warn(
          {
            attempt,
            endpoint: this.endpoint,
            ...(delayMs > 0 ? { delayMs } : { connectTimeout: this.config.connectTimeout }),
            err,
          },
          delayMs > 0 ? 'connect failed, retrying' : 'connect failed, giving up',
        );
        if (delayMs <= 0) throw err;
        await this.sleep(delayMs);
        if (this.closing !== undefined) {
          throw new ConnectionError(ErrorCode.CLOSED, 'the connection was closed while opening');
        }
      }
    }
  }

  /**
   * Recovery after an unexpected close: backoff with jitter, moving through the URL list,
   * until a connection opens, close() is called or reconnect.maxAttempts runs out.
   */
  private async recover(error: PostageError | undefined): Promise<TransportConnection> {
    this.recovering = true;
    let lastError = error;
    try {
      for (let attempt = 1; attempt <= this.config.reconnect.maxAttempts; attempt++) {
        const delayMs = this.backoff(attempt);
        this.emit('status', { type: 'reconnecting', attempt, delayMs, error: lastError });
        await this.sleep(delayMs);
        if (this.closing !== undefined) break;
        try {
          return await this.connectAny(Date.now() + this.config.connectTimeout, true);
        } catch (err) {
          if (err instanceof PostageError && err.code === ErrorCode.CLOSED) throw err;
          lastError = toPostageError(err, ErrorCode.CONNECTION_FAILED, 'reconnect');
          // A refusal is retried too while recovering (an operator may be fixing the user or
          // the vhost, a restarting broker may refuse for a moment), but said as such.
          this.logger.warn(
            { attempt, endpoint: this.endpoint, code: lastError.code, err: lastError },
            'reconnect attempt failed',
          );
        }
      }
    } finally {
      this.recovering = false;
    }
    if (this.closing !== undefined) {
      throw new ConnectionError(ErrorCode.CLOSED, 'the connection was closed while reconnecting');
    }
    const failed = new ConnectionError(
      ErrorCode.RECONNECT_FAILED,
      `gave up reconnecting after ${this.config.reconnect.maxAttempts} attempts`,
      { cause: lastError },
    );
    this.emit('status', { type: 'failed', error: failed });
    this.reportError(failed, 'connection');
    throw failed;
  }

  /**
   * Emits a status. A listener that throws must not undo the connection that was just made
   * (connectAny would take it for a failed attempt): the error is logged.
   */
  private emitStatus(status: ConnectionStatus): void {
    try {
      this.emit('status', status);
    } catch (err) {
      this.logger.error({ status: status.type, err }, 'a status listener threw');
    }
  }

  /** The delay before an attempt: initialDelay doubling up to maxDelay, moved by +-jitter. */
  private backoff(attempt: number): number {
    const { initialDelay, maxDelay, jitter } = this.config.reconnect;
    const base = Math.min(maxDelay, initialDelay * 2 ** Math.min(attempt - 1, 30));
    return Math.max(1, Math.round(base * (1 + jitter * (2 * Math.random() - 1))));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** One pass over the endpoints, starting after the last one that failed. */
  private async connectAny(deadline: number, recovered: boolean): Promise<TransportConnection> {
    const failures: string[] = [];
    let lastError: unknown;
    const endpoints = this.config.endpoints;
    for (let i = 0; i < endpoints.length; i++) {
      const index = (this.nextEndpoint + i) % endpoints.length;
      const endpoint = endpoints[index] as Endpoint;
      const transport = this.config.transport ?? transports.get(endpoint.protocol);
      if (transport === undefined) {
        throw new PostageError(
          ErrorCode.INVALID_CONFIG,
          `no transport for ${endpoint.protocol}:// (the in-process broker must be loaded)`,
        );
      }
      try {
        const timeoutMs = Math.max(100, Math.min(this.config.connectTimeout, deadline - Date.now()));
        const connection = await withTimeout(
          transport.connect(endpoint, {
            heartbeat: this.config.heartbeat,
            connectTimeout: timeoutMs,
            connectionName: this.connectionName,
          }),
          timeoutMs,
          `connect to ${describeEndpoint(endpoint)}`,
        );
        if (this.closing !== undefined) {
          await connection.close().catch(() => undefined);
          throw new ConnectionError(ErrorCode.CLOSED, 'the connection was closed while opening');
        }
        this.nextEndpoint = index;
        this.attach(connection, endpoint, recovered);
        return connection;
      } catch (err) {
        if (err instanceof PostageError && err.code === ErrorCode.CLOSED) throw err;
        // The brokers of one list share their users and vhosts: one refusal answers for all.
        if (isRefusal(err)) throw err;
        lastError = err;
        this.nextEndpoint = (index + 1) % endpoints.length;
        failures.push(
          `${describeEndpoint(endpoint)}: ${redactCredentials(err instanceof Error ? err.message : String(err))}`,
        );
      }
    }
    throw new ConnectionError(ErrorCode.CONNECTION_FAILED, `cannot connect to ${failures.join('; ')}`, {
      cause: lastError,
    });
  }

  private attach(connection: TransportConnection, endpoint: Endpoint, recovered: boolean): void {
    this.everConnected = true;
    this.current = connection;
    this.currentEndpoint = endpoint;
    this.generation++;
    this.epoch++;
    if (recovered) this.recoveredAt = Date.now();
    let lastError: PostageError | undefined;
    connection.on('error', (err: Error) => {
      lastError = toPostageError(err, ErrorCode.CONNECTION_CLOSED, 'connection error');
      this.logger.debug({ err }, 'connection error');
    });
    connection.on('close', (err?: Error) => {
      if (this.current !== connection) return;
      this.current = undefined;
      this.topology = undefined;
      this.exchanges.clear();
      this.blockedReason = undefined;
      if (this.closing !== undefined) return;
      const error =
        err === undefined ? lastError : toPostageError(err, ErrorCode.CONNECTION_CLOSED, 'connection lost');
      this.logger.warn({ endpoint: describeEndpoint(endpoint), err: error }, 'connection lost');
      // The next attempt starts with the next broker of the list.
      this.nextEndpoint = (this.config.endpoints.indexOf(endpoint) + 1) % this.config.endpoints.length;
      this.emit('status', { type: 'disconnected', endpoint: describeEndpoint(endpoint), error });
      if (this.closing !== undefined || this.current !== undefined) return;
      const opening = this.recover(error).finally(() => {
        if (this.opening === opening) this.opening = undefined;
      });
      // Failures reach callers of open() and the 'failed' status; this only keeps them handled.
      opening.catch(() => undefined);
      this.opening = opening;
    });
    connection.on('blocked', (reason: string) => {
      this.blockedReason = reason;
      this.emit('status', { type: 'blocked', reason });
    });
    connection.on('unblocked', () => {
      this.blockedReason = undefined;
      this.emit('status', { type: 'unblocked' });
    });
    this.logger.debug({ endpoint: describeEndpoint(endpoint) }, 'connected');
    this.emitStatus({ type: 'connected', endpoint: describeEndpoint(endpoint), recovered });
  }
}

/**
 * Bounds a connect attempt: a broker that accepts the TCP connection while it boots or stops
 * may never finish the handshake, and amqplib's own timeout does not cover every phase. A
 * connection that opens after the deadline is closed.
 */
function withTimeout(
  connecting: Promise<TransportConnection>,
  ms: number,
  what: string,
): Promise<TransportConnection> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new ConnectionError(ErrorCode.CONNECTION_FAILED, `${what}: no handshake within ${ms} ms`));
    }, ms);
    connecting.then(
      (connection) => {
        clearTimeout(timer);
        if (late) {
          connection.on('error', () => undefined);
          connection.close().catch(() => undefined);
        } else resolve(connection);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
