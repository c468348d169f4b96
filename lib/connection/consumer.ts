import type { ConnectionOptions } from './config';
import { Connection } from './connection';
import { jsonEncoder, type Encoder } from '../messages/encoder';
import { ConnectionError, ErrorCode, PostageError, toPostageError } from '../errors';
import { SafeEmitter } from '../events';
import type { ExchangeDefinition } from '../messages/exchange';
import { withTimeout } from '../shutdown';
import type { QueueOptions, TransportChannel, TransportMessage } from '../transport/types';

/**
 * Queue declaration flags, with postage's (pika's) names or amqplib's. Postage's defaults
 * apply: not durable, not exclusive, not auto-delete (so that TypeScript and Python
 * components declare shared queues identically).
 */

/**
 * The channel a delivery came on (an ack must go to that channel or nowhere), kept on the
 * message under a private symbol: cheaper per message than a WeakMap entry, gone with it.
 */
const DELIVERED_ON = Symbol('postage.deliveredOn');

type Delivered = TransportMessage & { [DELIVERED_ON]?: TransportChannel };

function deliveredOn(message: TransportMessage): TransportChannel | undefined {
  return (message as Delivered)[DELIVERED_ON];
}

export interface QueueFlags {
  durable?: boolean;
  exclusive?: boolean;
  auto_delete?: boolean;
  autoDelete?: boolean;
  /** Only check that the queue exists. */
  passive?: boolean;
  /** Queue arguments, e.g. `{ 'x-dead-letter-exchange': 'dlx', 'x-queue-type': 'quorum' }`. */
  arguments?: Readonly<Record<string, unknown>>;
}

/** A queue: its name, or `{name, flags}` (postage 1.0.2's form). `''` asks the broker for a name. */
export type QueueSpec = string | { readonly name: string; readonly flags?: QueueFlags };

/** postage's eqk: a list of (Exchange, [(queue, routing key), ...]). */
export type Eqk = ReadonlyArray<readonly [ExchangeDefinition, ReadonlyArray<readonly [QueueSpec, string]>]>;

/** Options of {@link GenericConsumer}. */
export interface ConsumerOptions extends ConnectionOptions {
  /** Share a connection instead of opening one. */
  connection?: Connection;
  /** Unacknowledged messages the broker may hand this consumer, per queue. @default 10 */
  prefetch?: number;
  /** @default the JSON encoder */
  encoder?: Encoder;
}

/** How long each step of close() (cancelling the consumers, closing the channel) may take. */
const CLOSE_STEP_TIMEOUT_MS = 5_000;

/** Default prefetch: enough to keep a handler busy, small enough to spread work between consumers. */
export const DEFAULT_PREFETCH = 10;

/** Called for every delivery, with the queue it came from; `null` when the broker cancelled the consumer. */
export type DeliveryHandler = (message: TransportMessage | null, queue: string) => void;

/** Events of a {@link GenericConsumer}. */
export interface ConsumerEvents {
  /**
   * Consuming stopped for good: recovery gave up (the connection failed or was closed).
   */
  lost: [error: PostageError];
  /**
   * Consuming was interrupted (connection lost, channel closed by the broker, queue deleted):
   * recovery started. Unacked deliveries go back to their queue and come again.
   */
  interrupted: [error: PostageError];
  /** Queues, bindings and consumers are back after an interruption. */
  recovered: [];
  error: [error: PostageError];
}

interface Binding {
  readonly exchange: ExchangeDefinition;
  readonly queue: string;
  readonly key: string;
}

interface QueueState {
  readonly flags: QueueFlags;
  consumerTag: string | undefined;
  /** Declared as `''`: the broker names it, again after a reconnect. */
  readonly serverNamed: boolean;
  /** Cancelled by the user: not consumed again by recovery. */
  cancelled: boolean;
}

/**
 * A consumer: declares exchanges, queues and bindings (its `eqk`), and consumes every bound
 * queue once (one consumer per queue, whatever its number of keys), with manual acks and a
 * prefetch. Queues bound at runtime with {@link GenericConsumer.queueBind} are consumed too.
 *
 * @example
 * ```ts
 * const consumer = new GenericConsumer({ eqk: [[EchoExchange, [['echo-queue', 'echo-rk']]]] });
 * await consumer.startConsuming((message) => { ...; consumer.ack(message!); });
 * ```
 */
export class GenericConsumer extends SafeEmitter<ConsumerEvents> {
  /** Default bindings. */
  static eqk: Eqk = [];

  readonly connection: Connection;
  readonly prefetch: number;
  readonly encoder: Encoder;
  readonly #ownsConnection: boolean;
  readonly #bindings: Binding[] = [];
  readonly #queues = new Map<string, QueueState>();
  #channel: TransportChannel | undefined;
  #opening: Promise<TransportChannel> | undefined;
  #onDelivery: DeliveryHandler | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #pendingEqk: Eqk;
  #recovering: Promise<void> | undefined;

  constructor(options: ConsumerOptions & { eqk?: Eqk } = {}) {
    const connection = options.connection ?? new Connection(options);
    super(options.logger ?? connection.logger);
    this.connection = connection;
    this.#ownsConnection = options.connection === undefined;
    this.prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    if (!(Number.isInteger(this.prefetch) && this.prefetch >= 0 && this.prefetch <= 65_535)) {
      throw new PostageError(
        ErrorCode.INVALID_ARGUMENT,
        `prefetch must be an integer in 0..65535, got ${this.prefetch}`,
      );
    }
    this.encoder = options.encoder ?? jsonEncoder;
    this.#pendingEqk = options.eqk ?? (this.constructor as typeof GenericConsumer).eqk;
  }

  /** The (queue, key) pairs bound so far (postage's `qk_list`). */
  get qkList(): ReadonlyArray<readonly [string, string]> {
    return this.#bindings.map((b) => [b.queue, b.key] as const);
  }

  /** The queues consumed (or to be consumed). */
  get queueNames(): string[] {
    return [...this.#queues.keys()];
  }

  /** Adds bindings; they are declared now if consuming, otherwise when consuming starts. */
  async addEqk(eqk: Eqk): Promise<void> {
    for (const [exchange, pairs] of eqk) {
      for (const [queue, key] of pairs) await this.queueBind(exchange, queue, key);
    }
  }

  /** Alias of {@link GenericConsumer.addEqk}. */
  add_eqk(eqk: Eqk): Promise<void> {
    return this.addEqk(eqk);
  }

  /**
   * Declares the exchange and the queue, binds them with the key and, when the consumer is
   * consuming, starts consuming the queue if it is new. Returns the queue's name (the broker's
   * when `''` was given).
   */
  async queueBind(
    exchange: ExchangeDefinition,
    queue: QueueSpec,
    key: string,
    flags?: QueueFlags,
  ): Promise<string> {
    this.#assertOpen();
    const spec =
      typeof queue === 'string'
        ? { name: queue, flags: flags ?? {} }
        : { name: queue.name, flags: { ...queue.flags, ...flags } };
    await this.connection.declareExchange(exchange);
    const name = await this.#declareQueue(spec.name, spec.flags);
    await this.connection.withTopology(
      (channel) => channel.bindQueue(name, exchange.name, key),
      `bind queue '${name}' to '${exchange.name}' with '${key}'`,
    );
    if (!this.#bindings.some((b) => b.exchange.name === exchange.name && b.queue === name && b.key === key)) {
      this.#bindings.push({ exchange, queue: name, key });
    }
    this.logger.debug({ queue: name, exchange: exchange.name, key }, 'queue bound');
    if (!this.#queues.has(name)) {
      this.#queues.set(name, {
        flags: spec.flags,
        consumerTag: undefined,
        serverNamed: spec.name === '',
        cancelled: false,
      });
    }
    if (this.#onDelivery !== undefined) await this.#consumeQueue(name);
    return name;
  }

  /** Alias of {@link GenericConsumer.queueBind}. */
  queue_bind(
    exchange: ExchangeDefinition,
    queue: QueueSpec,
    key: string,
    flags?: QueueFlags,
  ): Promise<string> {
    return this.queueBind(exchange, queue, key, flags);
  }

  /**
   * Removes a binding. The queue stays consumed: messages already in it, or reaching it by other
   * bindings, are still processed.
   */
  async queueUnbind(exchange: ExchangeDefinition, queue: string, key: string): Promise<void> {
    this.#assertOpen();
    await this.connection.declareExchange(exchange);
    await this.connection.withTopology(
      (channel) => channel.unbindQueue(queue, exchange.name, key),
      `unbind queue '${queue}' from '${exchange.name}' with '${key}'`,
    );
    const index = this.#bindings.findIndex(
      (b) => b.exchange.name === exchange.name && b.queue === queue && b.key === key,
    );
    if (index >= 0) this.#bindings.splice(index, 1);
  }

  /** Alias of {@link GenericConsumer.queueUnbind}. */
  queue_unbind(exchange: ExchangeDefinition, queue: string, key: string): Promise<void> {
    return this.queueUnbind(exchange, queue, key);
  }

  /** Declares the pending bindings and consumes every queue once. Resolves when all consume. */
  async startConsuming(onDelivery: DeliveryHandler): Promise<void> {
    this.#assertOpen();
    const eqk = this.#pendingEqk;
    this.#pendingEqk = [];
    try {
      await this.addEqk(eqk);
    } catch (err) {
      // Declared again by the next start (declarations are idempotent): a failed start can be retried.
      this.#pendingEqk = eqk;
      throw err;
    }
    this.#onDelivery = onDelivery;
    await this.#getChannel();
    for (const name of this.#queues.keys()) await this.#consumeQueue(name);
  }

  /**
   * Stops consuming one queue; recovery does not consume it again. Its bindings stay.
   * Messages in flight can still be acked.
   */
  async cancel(queue: string): Promise<void> {
    const state = this.#queues.get(queue);
    if (state === undefined) return;
    state.cancelled = true;
    const tag = state.consumerTag;
    state.consumerTag = undefined;
    if (tag !== undefined) await this.#channel?.cancel(tag).catch(() => undefined);
  }

  /** Cancels every consumer: no new deliveries. Messages in flight can still be acked. */
  async stopConsuming(): Promise<void> {
    this.#onDelivery = undefined;
    const channel = this.#channel;
    const tags: string[] = [];
    for (const state of this.#queues.values()) {
      if (state.consumerTag !== undefined) tags.push(state.consumerTag);
      state.consumerTag = undefined;
    }
    if (channel === undefined) return;
    await Promise.all(tags.map((tag) => channel.cancel(tag).catch(() => undefined)));
  }

  /**
   * Acknowledges a message on the channel it came on. A no-op (logged) when that channel is
   * gone: the broker requeues the message (acking it on another channel would ack another).
   */
  ack(message: TransportMessage): void {
    const channel = deliveredOn(message) ?? this.#channel;
    if (channel !== this.#channel) {
      this.logger.debug('ack after the channel closed: the broker redelivers the message');
      return;
    }
    try {
      channel?.ack(message);
    } catch (err) {
      this.logger.debug({ err }, 'ack on a closed channel: the broker will redeliver');
    }
  }

  /** Rejects a message; without requeue it is dead-lettered (or dropped when the queue has no DLX). */
  reject(message: TransportMessage, requeue = false): void {
    const channel = deliveredOn(message) ?? this.#channel;
    if (channel !== this.#channel) {
      this.logger.debug('reject after the channel closed: the broker redelivers the message');
      return;
    }
    try {
      channel?.reject(message, requeue);
    } catch (err) {
      this.logger.debug({ err }, 'reject on a closed channel: the broker will redeliver');
    }
  }

  /** Decodes a body with the consumer's encoder. */
  decode(content: Buffer): unknown {
    return this.encoder.decode(content);
  }

  /**
   * Publishes bytes on the consuming channel (RPC replies: sent before the request is acked,
   * on the same channel, so the reply always precedes the ack).
   */
  publish(exchange: string, routingKey: string, content: Buffer, properties: Record<string, unknown>): void {
    const channel = this.#channel;
    if (channel === undefined)
      throw new ConnectionError(ErrorCode.CHANNEL_CLOSED, 'the consuming channel is closed');
    channel.publish(exchange, routingKey, content, properties);
  }

  /**
   * Stops consuming and closes the channel (and the connection if this consumer opened it).
   * Idempotent and safe to call concurrently: every call returns the same promise, which never
   * rejects; each step is bounded.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    await withTimeout(this.stopConsuming(), CLOSE_STEP_TIMEOUT_MS);
    this.#closed = true;
    // A channel still opening (maybe waiting for a reconnection) closes itself when it opens:
    // close() must not wait for the broker to come back.
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel !== undefined) await withTimeout(channel.close(), CLOSE_STEP_TIMEOUT_MS);
    if (this.#ownsConnection) await this.connection.close();
  }

  async #declareQueue(name: string, flags: QueueFlags): Promise<string> {
    const reply = await this.connection.withTopology(async (channel) => {
      if (flags.passive === true) return channel.checkQueue(name);
      const options: QueueOptions = {
        durable: flags.durable ?? false,
        exclusive: flags.exclusive ?? false,
        autoDelete: flags.autoDelete ?? flags.auto_delete ?? false,
      };
      if (flags.arguments !== undefined) options.arguments = { ...flags.arguments };
      return channel.assertQueue(name, options);
    }, `declare queue '${name}'`);
    return reply.queue;
  }

  async #consumeQueue(name: string): Promise<void> {
    const state = this.#queues.get(name);
    const onDelivery = this.#onDelivery;
    if (state === undefined || state.consumerTag !== undefined || state.cancelled || onDelivery === undefined)
      return;
    const channel = await this.#getChannel();
    try {
      const { consumerTag } = await channel.consume(
        name,
        (message) => {
          if (message === null) {
            state.consumerTag = undefined;
            // The broker cancelled the consumer (queue deleted, quorum leader moved): the
            // queue is declared again and consumed again, unless the user cancelled it.
            if (!state.cancelled && !this.#closed && this.#onDelivery !== undefined) {
              this.#interrupt(
                new PostageError(ErrorCode.NOT_FOUND, `the broker cancelled the consumer of queue '${name}'`),
              );
            }
          } else {
            (message as Delivered)[DELIVERED_ON] = channel;
          }
          // amqplib closes the channel if this callback throws: it must not.
          try {
            this.#onDelivery?.(message, name);
          } catch (err) {
            this.logger.error({ err, queue: name }, 'delivery handler threw');
          }
        },
        { noAck: false },
      );
      state.consumerTag = consumerTag;
    } catch (err) {
      throw toPostageError(err, ErrorCode.BROKER_ERROR, `consume queue '${name}'`);
    }
    this.logger.debug({ queue: name }, 'consuming');
  }

  #getChannel(): Promise<TransportChannel> {
    if (this.#channel !== undefined) return Promise.resolve(this.#channel);
    this.#opening ??= this.#openChannel().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #openChannel(): Promise<TransportChannel> {
    const channel = await this.connection.createChannel(false);
    let lastError: PostageError | undefined;
    channel.on('error', (err: Error) => {
      lastError = toPostageError(err, ErrorCode.CHANNEL_CLOSED, 'consuming channel');
    });
    channel.on('close', () => {
      if (this.#channel !== channel) return;
      this.#channel = undefined;
      for (const state of this.#queues.values()) state.consumerTag = undefined;
      if (!this.#closed && this.#onDelivery !== undefined) {
        this.#interrupt(
          lastError ?? new ConnectionError(ErrorCode.CONNECTION_CLOSED, 'the consuming channel closed'),
        );
      }
    });
    if (this.prefetch > 0) await channel.prefetch(this.prefetch);
    if (this.#closed) {
      await channel.close().catch(() => undefined);
      throw new PostageError(ErrorCode.CLOSED, 'the consumer is closed');
    }
    this.#channel = channel;
    return channel;
  }

  /** Starts recovery once; interruptions during a recovery join it. */
  #interrupt(error: PostageError): void {
    this.logger.warn({ code: error.code, err: error }, 'consuming interrupted, recovering');
    this.emit('interrupted', error);
    if (this.#recovering !== undefined) {
      this.#again = true;
      return;
    }
    this.#recovering = this.#recover()
      .catch((err: unknown) => {
        // Only a listener of 'lost' that throws gets here: reported, never left unhandled.
        this.reportError(toPostageError(err, ErrorCode.CONNECTION_CLOSED, 'consumer recovery'), 'consumer');
      })
      .finally(() => {
        this.#recovering = undefined;
      });
  }

  #again = false;

  /**
   * Declares the queues and bindings again and consumes every queue the user did not cancel,
   * retrying with backoff until it works, the consumer stops or the connection gives up.
   */
  async #recover(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.#again = false;
      if (this.#closed || this.#onDelivery === undefined) return;
      try {
        await this.connection.open();
        await this.#redeclare();
        for (const name of [...this.#queues.keys()]) await this.#consumeQueue(name);
        if (this.#again) continue;
        this.logger.info({ queues: this.queueNames }, 'consuming recovered');
        this.emit('recovered');
        return;
      } catch (err) {
        const error = toPostageError(err, ErrorCode.CONNECTION_CLOSED, 'recover the consumer');
        if (this.#closed || this.#onDelivery === undefined) return;
        if (error.code === ErrorCode.CLOSED || error.code === ErrorCode.RECONNECT_FAILED) {
          this.emit('lost', error);
          return;
        }
        this.logger.debug({ attempt, err: error }, 'consumer recovery attempt failed');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** Math.min(attempt, 6))));
      }
    }
  }

  /** Declares every queue and binding again (server-named queues get a new name). */
  async #redeclare(): Promise<void> {
    const renamed = new Map<string, string>();
    const queues = new Map<string, QueueState>();
    for (const [name, state] of this.#queues) {
      const declared = await this.#declareQueue(state.serverNamed ? '' : name, state.flags);
      if (declared !== name) renamed.set(name, declared);
      queues.set(declared, state);
    }
    if (renamed.size > 0) {
      this.#queues.clear();
      for (const [name, state] of queues) this.#queues.set(name, state);
      for (let i = 0; i < this.#bindings.length; i++) {
        const binding = this.#bindings[i] as Binding;
        const to = renamed.get(binding.queue);
        if (to !== undefined) this.#bindings[i] = { ...binding, queue: to };
      }
    }
    for (const binding of this.#bindings) {
      await this.connection.declareExchange(binding.exchange);
      await this.connection.withTopology(
        (channel) => channel.bindQueue(binding.queue, binding.exchange.name, binding.key),
        `bind queue '${binding.queue}' to '${binding.exchange.name}' with '${binding.key}'`,
      );
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new PostageError(ErrorCode.CLOSED, 'the consumer is closed');
  }
}
