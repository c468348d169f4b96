import os from 'node:os';

import {
  describeEndpoint,
  resolveConnectionConfig,
  type ConnectionConfig,
  type ConnectionOptions,
  type Endpoint,
} from './config';
import { ConnectionError, ErrorCode, PostageError, toPostageError } from './errors';
import { SafeEmitter } from './events';
import { exchangeKey, type ExchangeDefinition } from './exchange';
import { getLogger } from './logger';
import { amqpTransport } from './transport/amqp/amqp-transport';
import { memoryTransport } from './transport/memory';
import type { Transport, TransportChannel, TransportConnection } from './transport/types';

/** Lifecycle of a {@link Connection}, as a discriminated union on `type`. */
export type ConnectionStatus =
  | { type: 'connected'; endpoint: string }
  | { type: 'disconnected'; endpoint: string; error: PostageError | undefined }
  | { type: 'blocked'; reason: string }
  | { type: 'unblocked' }
  | { type: 'closed' };

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  status: [status: ConnectionStatus];
  error: [error: PostageError];
}

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
   * Opens the connection if it is not open (trying each endpoint in order) and returns it.
   * @throws {@link ConnectionError} CONNECTION_FAILED, or CLOSED after close()
   */
  open(): Promise<TransportConnection> {
    if (this.closing !== undefined) {
      return Promise.reject(new ConnectionError(ErrorCode.CLOSED, 'the connection is closed'));
    }
    if (this.current !== undefined) return Promise.resolve(this.current);
    this.opening ??= this.connectAny().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
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
    channel.on('error', (err: Error) => this.logger.debug('channel error', { error: err }));
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
      const epoch = this.epoch;
      declared = this.withTopology(async (channel, generation) => {
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
        this.logger.debug('exchange declared', { exchange: exchange.name, type: exchange.exchange_type });
      }, `declare exchange '${exchange.name}'`);
      // A failed declaration is retried on next use.
      declared.catch(() => {
        if (this.exchanges.get(key) === declared) this.exchanges.delete(key);
      });
      this.exchanges.set(key, declared);
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

  /** Closes the connection and every channel on it. Idempotent; never rejects. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const opening = this.opening;
    if (opening !== undefined) await opening.catch(() => undefined);
    const connection = this.current;
    this.current = undefined;
    this.topology = undefined;
    this.exchanges.clear();
    if (connection !== undefined) {
      try {
        await connection.close();
      } catch (err) {
        // Already closed by the peer: nothing left to release.
        this.logger.debug('close on a closed connection', { error: err });
      }
    }
    this.emit('status', { type: 'closed' });
  }

  private async connectAny(): Promise<TransportConnection> {
    const failures: string[] = [];
    let lastError: unknown;
    for (const endpoint of this.config.endpoints) {
      const transport = this.config.transport ?? transports.get(endpoint.protocol);
      if (transport === undefined) {
        throw new PostageError(
          ErrorCode.INVALID_CONFIG,
          `no transport for ${endpoint.protocol}:// (the in-process broker must be loaded)`,
        );
      }
      try {
        const connection = await transport.connect(endpoint, {
          heartbeat: this.config.heartbeat,
          connectTimeout: this.config.connectTimeout,
          connectionName: this.connectionName,
        });
        if (this.closing !== undefined) {
          await connection.close().catch(() => undefined);
          throw new ConnectionError(ErrorCode.CLOSED, 'the connection was closed while opening');
        }
        this.attach(connection, endpoint);
        return connection;
      } catch (err) {
        if (err instanceof PostageError && err.code === ErrorCode.CLOSED) throw err;
        lastError = err;
        failures.push(`${describeEndpoint(endpoint)}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    throw new ConnectionError(ErrorCode.CONNECTION_FAILED, `cannot connect to ${failures.join('; ')}`, {
      cause: lastError,
    });
  }

  private attach(connection: TransportConnection, endpoint: Endpoint): void {
    this.current = connection;
    this.currentEndpoint = endpoint;
    this.generation++;
    this.epoch++;
    let lastError: PostageError | undefined;
    connection.on('error', (err: Error) => {
      lastError = toPostageError(err, ErrorCode.CONNECTION_CLOSED, 'connection error');
      this.logger.debug('connection error', { error: err });
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
      this.logger.warn('connection lost', { endpoint: describeEndpoint(endpoint), error });
      this.emit('status', { type: 'disconnected', endpoint: describeEndpoint(endpoint), error });
    });
    connection.on('blocked', (reason: string) => {
      this.blockedReason = reason;
      this.emit('status', { type: 'blocked', reason });
    });
    connection.on('unblocked', () => {
      this.blockedReason = undefined;
      this.emit('status', { type: 'unblocked' });
    });
    this.logger.debug('connected', { endpoint: describeEndpoint(endpoint) });
    this.emit('status', { type: 'connected', endpoint: describeEndpoint(endpoint) });
  }
}
