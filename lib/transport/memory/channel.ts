import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';

import { CONTENT_HANDED_OVER } from '../../messages/encoder';
import { getLogger } from '../../logger';
import type {
  ConfirmCallback,
  ConsumeOptions,
  DeliveryCallback,
  ExchangeOptions,
  MessageProperties,
  PublishOptions,
  QueueInfo,
  QueueOptions,
  TransportChannel,
  TransportMessage,
} from '../types';
import { observed } from './broker';
import type { MemoryConnection } from './connection';
import { exchangeFlags, exchangeInequivalence, queueInequivalence, queueSettings } from './declare';
import {
  AmqpException,
  accessRefused,
  channelClosed,
  notFound,
  preconditionFailed,
  resourceLocked,
  type MethodName,
} from './errors';
import { EXCHANGE_TYPES, MemoryExchange, type ExchangeType } from './exchange';
import { Deque } from './deque';
import { parseExpiration, type Consumer, type ConsumerHost, type MemoryQueue, type Stored } from './queue';

const REPLY_TO = 'amq.rabbitmq.reply-to';
const REPLY_PREFIX = `${REPLY_TO}.`;

/** The consumer of a channel's direct reply-to pseudo-queue. */
export interface ReplyConsumer {
  readonly channel: MemoryChannel;
  readonly tag: string;
  readonly token: string;
  readonly callback: DeliveryCallback;
}

interface Unacked {
  readonly message: Stored;
  readonly queue: MemoryQueue;
  /** Undefined for basic.get. */
  readonly consumer: Consumer | undefined;
}

/**
 * What the channel sends the client, in order. A confirm is a bare number, the publish sequence
 * number (negative for a nack): there is one per publish, and an object each is garbage.
 */
type OutboxItem =
  | number
  | { readonly kind: 'return'; readonly message: TransportMessage }
  | { readonly kind: 'fail'; readonly exception: AmqpException }
  | { readonly kind: 'reply'; readonly consumer: ReplyConsumer; readonly message: Stored };

type Outcome = 'ack' | 'requeue' | 'dead-letter';

type HandedOver = PublishOptions & { [CONTENT_HANDED_OVER]?: boolean };

/**
 * A channel on a {@link MemoryConnection}, with amqplib's API and RabbitMQ's behaviour:
 * exceptions close the channel ('error' then 'close'), confirms and returns arrive
 * asynchronously in publish order, unacked messages are requeued when it closes.
 * Not exported by the package (its declaration ships: the memory transport's declarations name it).
 */
export class MemoryChannel extends EventEmitter implements TransportChannel, ConsumerHost {
  closed = false;
  /** An exception is on its way: the channel closes once the outbox reaches it. */
  private failing = false;
  private readonly broker;
  private readonly consumers = new Map<string, Consumer>();
  private replyConsumer: ReplyConsumer | undefined;
  private readonly unacked = new Map<number, Unacked>();
  /**
   * Callbacks of the publishes not yet confirmed, oldest first: the broker confirms a channel's
   * publishes in order, so the head is always the next one (sequence number `confirmedSeq + 1`).
   */
  private readonly unconfirmed = new Deque<ConfirmCallback | undefined>();
  private confirmedSeq = 0;
  private outbox: OutboxItem[] = [];
  private deliveryTag = 0;
  private publishSeq = 0;
  private consumerLimit = 0;
  private channelLimit = 0;
  private channelUnacked = 0;
  /**
   * Methods sent and not yet applied, and publishes waiting behind them. A method (declare,
   * bind, consume...) takes effect after a turn of the event loop, as after a broker round
   * trip, so that a publish made before a consumer is ready is unroutable here as on RabbitMQ.
   * A publish made meanwhile waits behind them: a channel's frames are handled in order.
   */
  private pendingMethods = 0;

  constructor(
    readonly connection: MemoryConnection,
    private readonly confirm: boolean,
  ) {
    super();
    this.broker = connection.broker;
  }

  /** EventEmitter's, typed as the transport seam declares it. */
  override removeListener(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.removeListener(event, listener as (...args: unknown[]) => void);
  }

  // ---- exchanges ----

  async assertExchange(
    name: string,
    type: string,
    options: ExchangeOptions = {},
  ): Promise<{ exchange: string }> {
    await this.roundTrip();
    this.usable();
    const method: MethodName = 'ExchangeDeclare';
    if (name === '')
      return this.raise(accessRefused('operation not permitted on the default exchange', method));
    if (!EXCHANGE_TYPES.has(type)) {
      const error = new AmqpException(503, `COMMAND_INVALID - unknown exchange type '${type}'`, method);
      this.connection.forceClose(error);
      throw error.forOperation();
    }
    const flags = exchangeFlags(options);
    const existing = this.broker.exchanges.get(name);
    if (existing !== undefined) {
      const differ = exchangeInequivalence(existing, type, flags);
      if (differ !== undefined) return this.raise(differ);
      return { exchange: name };
    }
    if (name.startsWith('amq.')) {
      return this.raise(accessRefused(`exchange name '${name}' contains reserved prefix 'amq.*'`, method));
    }
    const exchange = new MemoryExchange(
      name,
      type as ExchangeType,
      flags.durable,
      flags.autoDelete,
      flags.internal,
      flags.args,
    );
    this.broker.exchanges.set(name, exchange);
    return { exchange: name };
  }

  async checkExchange(name: string): Promise<{ exchange: string }> {
    await this.roundTrip();
    this.usable();
    this.exchange(name, 'ExchangeDeclare');
    return { exchange: name };
  }

  async deleteExchange(name: string, options: { ifUnused?: boolean } = {}): Promise<object> {
    await this.roundTrip();
    this.usable();
    const method: MethodName = 'ExchangeDelete';
    if (name === '' || name.startsWith('amq.')) {
      return this.raise(
        accessRefused(
          `operation not permitted on the ${name === '' ? 'default' : 'built-in'} exchange`,
          method,
        ),
      );
    }
    const exchange = this.broker.exchanges.get(name);
    if (exchange === undefined) return {};
    if (options.ifUnused === true && exchange.bindings.length > 0) {
      return this.raise(preconditionFailed(`exchange '${name}' in vhost '/' in use`, method));
    }
    this.broker.removeExchange(exchange);
    return {};
  }

  async bindExchange(
    destination: string,
    source: string,
    pattern: string,
    args: Record<string, unknown> = {},
  ): Promise<object> {
    await this.roundTrip();
    this.usable();
    const target = this.exchange(destination, 'ExchangeBind');
    const from = this.bindSource(source, 'ExchangeBind');
    from.bind(target, pattern, args);
    return {};
  }

  async unbindExchange(
    destination: string,
    source: string,
    pattern: string,
    args: Record<string, unknown> = {},
  ): Promise<object> {
    await this.roundTrip();
    this.usable();
    const target = this.exchange(destination, 'ExchangeUnbind');
    const from = this.bindSource(source, 'ExchangeUnbind');
    if (from.unbind(target, pattern, args)) this.broker.removeExchange(from);
    return {};
  }

  // ---- queues ----

  async assertQueue(name: string, options: QueueOptions = {}): Promise<QueueInfo> {
    await this.roundTrip();
    this.usable();
    const method: MethodName = 'QueueDeclare';
    const exclusive = options.exclusive ?? false;
    const owner = exclusive ? this.connection.id : undefined;
    if (name.startsWith('amq.')) {
      return this.raise(accessRefused(`queue name '${name}' contains reserved prefix 'amq.*'`, method));
    }
    const queueName = name === '' ? this.broker.generatedName() : name;
    const settings = queueSettings(queueName, options, owner);
    if (settings instanceof AmqpException) return this.raise(settings);
    const existing = this.broker.queues.get(queueName);
    if (existing !== undefined) {
      if (existing.settings.owner !== owner) return this.raise(resourceLocked(queueName, method));
      const differ = queueInequivalence(existing, settings);
      if (differ !== undefined) return this.raise(differ);
      existing.touch();
      return {
        queue: queueName,
        messageCount: existing.ready.length,
        consumerCount: existing.consumers.length,
      };
    }
    this.broker.createQueue(queueName, settings);
    return { queue: queueName, messageCount: 0, consumerCount: 0 };
  }

  async checkQueue(name: string): Promise<QueueInfo> {
    await this.roundTrip();
    this.usable();
    const queue = this.queue(name, 'QueueDeclare');
    queue.touch();
    return { queue: name, messageCount: queue.ready.length, consumerCount: queue.consumers.length };
  }

  async deleteQueue(
    name: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } = {},
  ): Promise<{ messageCount: number }> {
    await this.roundTrip();
    this.usable();
    const method: MethodName = 'QueueDelete';
    const queue = this.broker.queues.get(name);
    if (queue === undefined) return { messageCount: 0 };
    this.ownedOrRaise(queue, method);
    if (options.ifUnused === true && queue.consumers.length > 0) {
      return this.raise(preconditionFailed(`queue '${name}' in vhost '/' in use`, method));
    }
    if (options.ifEmpty === true && queue.ready.length > 0) {
      return this.raise(preconditionFailed(`queue '${name}' in vhost '/' is not empty`, method));
    }
    return { messageCount: this.broker.removeQueue(queue) };
  }

  async purgeQueue(name: string): Promise<{ messageCount: number }> {
    await this.roundTrip();
    this.usable();
    return { messageCount: this.queue(name, 'QueuePurge').purge() };
  }

  async bindQueue(
    name: string,
    source: string,
    pattern: string,
    args: Record<string, unknown> = {},
  ): Promise<object> {
    await this.roundTrip();
    this.usable();
    const queue = this.queue(name, 'QueueBind');
    this.bindSource(source, 'QueueBind').bind(queue, pattern, args);
    return {};
  }

  async unbindQueue(
    name: string,
    source: string,
    pattern: string,
    args: Record<string, unknown> = {},
  ): Promise<object> {
    await this.roundTrip();
    this.usable();
    const queue = this.queue(name, 'QueueUnbind');
    const from = this.bindSource(source, 'QueueUnbind');
    if (from.unbind(queue, pattern, args)) this.broker.removeExchange(from);
    return {};
  }

  // ---- publishing ----

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: PublishOptions = {},
    callback?: ConfirmCallback,
  ): boolean {
    if (this.closed) throw channelClosed();
    let seq = 0;
    if (this.confirm) {
      seq = ++this.publishSeq;
      this.unconfirmed.push(callback);
    }
    // Copy now: the caller may reuse its buffer once publish returns, as with a socket write;
    // a postage producer hands over a buffer it just encoded and never touches again.
    const body = (options as HandedOver)[CONTENT_HANDED_OVER] === true ? content : Buffer.from(content);
    if (this.pendingMethods > 0) {
      this.pendingMethods++;
      setImmediate(() => {
        this.pendingMethods--;
        if (!this.closed) this.routeOrHold(seq, exchange, routingKey, body, options);
      });
    } else {
      this.routeOrHold(seq, exchange, routingKey, body, options);
    }
    return true;
  }

  private routeOrHold(
    seq: number,
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: PublishOptions,
  ): void {
    if (this.connection.blocked !== undefined || this.connection.holding) {
      // RabbitMQ stops reading a blocked connection: nothing is routed or confirmed until it clears.
      this.connection.hold(() => {
        if (!this.closed) this.route(seq, exchange, routingKey, body, options);
      });
    } else {
      this.route(seq, exchange, routingKey, body, options);
    }
  }

  /** The broker round trip of a method: resolves on a later turn, after the methods sent before it. */
  private roundTrip(): Promise<void> {
    this.pendingMethods++;
    return new Promise((resolve) => {
      setImmediate(() => {
        this.pendingMethods--;
        resolve();
      });
    });
  }

  // ---- consuming ----

  async consume(
    queue: string,
    callback: DeliveryCallback,
    options: ConsumeOptions = {},
  ): Promise<{ consumerTag: string }> {
    await this.roundTrip();
    this.usable();
    const method: MethodName = 'BasicConsume';
    const tag = options.consumerTag ?? `amq.ctag-${randomBytes(16).toString('base64url').slice(0, 22)}`;
    if (this.consumers.has(tag) || this.replyConsumer?.tag === tag) {
      const error = new AmqpException(530, `NOT_ALLOWED - attempt to reuse consumer tag '${tag}'`, method);
      this.connection.forceClose(error);
      throw error.forOperation();
    }
    if (queue === REPLY_TO) {
      if (options.noAck !== true)
        return this.raise(preconditionFailed('reply consumer cannot acknowledge', method));
      if (this.replyConsumer !== undefined)
        return this.raise(preconditionFailed('reply consumer already set', method));
      const token = randomBytes(18).toString('base64url');
      this.replyConsumer = { channel: this, tag, token, callback };
      this.broker.replyConsumers.set(token, this.replyConsumer);
      return { consumerTag: tag };
    }
    const target = this.queue(queue, method);
    const exclusiveUse =
      target.exclusiveConsumer !== undefined || (options.exclusive === true && target.consumers.length > 0);
    if (exclusiveUse)
      return this.raise(accessRefused(`queue '${queue}' in vhost '/' in exclusive use`, method));
    const consumer: Consumer = {
      tag,
      queue: target,
      host: this,
      noAck: options.noAck === true,
      exclusive: options.exclusive === true,
      limit: this.consumerLimit,
      unacked: 0,
      callback,
    };
    this.consumers.set(tag, consumer);
    target.addConsumer(consumer);
    return { consumerTag: tag };
  }

  async cancel(consumerTag: string): Promise<{ consumerTag: string }> {
    await this.roundTrip();
    this.usable();
    if (this.replyConsumer?.tag === consumerTag) {
      this.broker.replyConsumers.delete(this.replyConsumer.token);
      this.replyConsumer = undefined;
    }
    const consumer = this.consumers.get(consumerTag);
    if (consumer !== undefined) {
      this.consumers.delete(consumerTag);
      consumer.queue.removeConsumer(consumer);
    }
    return { consumerTag };
  }

  async get(queue: string, options: { noAck?: boolean } = {}): Promise<TransportMessage | false> {
    await this.roundTrip();
    this.usable();
    const target = this.queue(queue, 'BasicGet');
    const message = target.take(Date.now());
    if (message === undefined) return false;
    const tag = ++this.deliveryTag;
    if (options.noAck !== true) {
      this.unacked.set(tag, { message, queue: target, consumer: undefined });
      target.unacked++;
    }
    const delivered = this.toTransport(message, tag, undefined, target);
    delivered.fields.messageCount = target.ready.length;
    return delivered;
  }

  ack(message: TransportMessage, allUpTo = false): void {
    this.settle(message, allUpTo, 'ack');
  }

  nack(message: TransportMessage, allUpTo = false, requeue = true): void {
    this.settle(message, allUpTo, requeue ? 'requeue' : 'dead-letter');
  }

  reject(message: TransportMessage, requeue = true): void {
    this.settle(message, false, requeue ? 'requeue' : 'dead-letter');
  }

  async prefetch(count: number, global = false): Promise<object> {
    await this.roundTrip();
    this.usable();
    if (global) this.channelLimit = count;
    else this.consumerLimit = count;
    return {};
  }

  async close(): Promise<void> {
    if (this.closed) throw channelClosed();
    // Methods and publishes sent before the close are handled first, as the broker does.
    if (this.pendingMethods > 0) {
      await this.roundTrip();
      if (this.closed) return;
    }
    // Confirms and returns already due go out before close-ok, as RabbitMQ sends them.
    this.flushOutbox();
    if (this.closed) return;
    this.teardown();
    this.emit('close');
  }

  // ---- ConsumerHost ----

  hasRoom(consumer: Consumer): boolean {
    if (consumer.noAck) return !this.closed;
    return (
      !this.closed &&
      (consumer.limit === 0 || consumer.unacked < consumer.limit) &&
      (this.channelLimit === 0 || this.channelUnacked < this.channelLimit)
    );
  }

  deliver(consumer: Consumer, message: Stored, queue: MemoryQueue): void {
    const tag = ++this.deliveryTag;
    if (!consumer.noAck) {
      this.unacked.set(tag, { message, queue, consumer });
      consumer.unacked++;
      this.channelUnacked++;
      queue.unacked++;
    }
    this.invoke(consumer.callback, this.toTransport(message, tag, consumer.tag, queue));
  }

  cancelledByBroker(consumer: Consumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    this.invoke(consumer.callback, null);
  }

  // ---- broker side ----

  /** @internal Runs due confirms, returns, replies and exceptions in order. */
  flushOutbox(): void {
    while (this.outbox.length > 0 && !this.closed) {
      const items = this.outbox;
      this.outbox = [];
      for (let i = 0; i < items.length; i++) {
        const item = items[i] as OutboxItem;
        if (typeof item === 'number') {
          const nack = item < 0;
          this.confirmThrough(nack ? -item : item, nack);
          if (this.closed) return;
          continue;
        }
        switch (item.kind) {
          case 'return':
            this.emit('return', item.message);
            break;
          case 'reply':
            this.invoke(
              item.consumer.callback,
              this.toTransport(item.message, ++this.deliveryTag, item.consumer.tag, undefined),
            );
            break;
          case 'fail':
            this.fail(item.exception);
            return;
        }
        if (this.closed) return;
      }
    }
  }

  /** @internal The connection closed under the channel. */
  closeByConnection(): void {
    if (this.closed) return;
    this.teardown();
    this.emit('close');
  }

  // ---- internals ----

  private route(
    seq: number,
    exchangeName: string,
    routingKey: string,
    body: Buffer,
    options: PublishOptions,
  ): void {
    if (this.failing) return; // the channel is about to close; the confirm fails then
    const method: MethodName = 'BasicPublish';
    if (body.length > this.broker.maxMessageSize) {
      return this.failLater(
        preconditionFailed(
          `message size ${body.length} is larger than configured max size ${this.broker.maxMessageSize}`,
          method,
        ),
      );
    }
    const exchange = this.broker.exchanges.get(exchangeName);
    if (exchange === undefined) return this.failLater(notFound('exchange', exchangeName, method));
    if (exchange.internal) {
      return this.failLater(
        accessRefused(`cannot publish to internal exchange '${exchangeName}' in vhost '/'`, method),
      );
    }
    if (options.expiration !== undefined && parseExpiration(String(options.expiration)) === undefined) {
      return this.failLater(preconditionFailed(`invalid expiration '${String(options.expiration)}'`, method));
    }
    const properties = toProperties(options);
    if (properties.replyTo === REPLY_TO) {
      if (this.replyConsumer === undefined)
        return this.failLater(preconditionFailed('fast reply consumer does not exist', method));
      properties.replyTo = REPLY_PREFIX + this.replyConsumer.token;
    }
    let routed = false;
    let refused = false;
    if (exchangeName === '' && routingKey.startsWith(REPLY_PREFIX)) {
      const consumer = this.broker.replyConsumers.get(routingKey.slice(REPLY_PREFIX.length));
      if (consumer !== undefined && !consumer.channel.closed) {
        routed = true;
        consumer.channel.push({
          kind: 'reply',
          consumer,
          message: stored(exchangeName, routingKey, body, properties),
        });
      }
    } else {
      const queues = this.broker.route(exchange, routingKey, properties.headers);
      const now = queues.length > 0 ? Date.now() : 0;
      for (let i = 0; i < queues.length; i++) {
        routed = true;
        const result = (queues[i] as MemoryQueue).enqueue(
          stored(exchangeName, routingKey, body, properties),
          now,
        );
        if (result === 'refused') refused = true;
      }
    }
    if (this.broker.observers.size > 0) this.observePublish(exchangeName, routingKey, body, properties);
    if (!routed && options.mandatory === true) {
      this.push({
        kind: 'return',
        message: {
          content: body,
          fields: {
            deliveryTag: 0,
            redelivered: false,
            exchange: exchangeName,
            routingKey,
            replyCode: 312,
            replyText: 'NO_ROUTE',
          },
          properties,
        },
      });
    }
    if (this.confirm) this.push(refused ? -seq : seq);
  }

  private observePublish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: MessageProperties,
  ): void {
    const target = exchange === '' ? undefined : this.broker.exchanges.get(exchange);
    const queues =
      exchange === ''
        ? this.broker.queues.has(routingKey)
          ? [routingKey]
          : []
        : target === undefined
          ? []
          : this.broker.route(target, routingKey, properties.headers).map((q) => q.name);
    const event = { exchange, routingKey, content, properties, connectionId: this.connection.id, queues };
    for (const observer of this.broker.observers) observer.published?.(event);
  }

  private settle(message: TransportMessage, allUpTo: boolean, outcome: Outcome): void {
    if (this.closed) throw channelClosed();
    if (this.failing) return;
    const tag = message.fields.deliveryTag;
    if (allUpTo) {
      for (const [t, entry] of this.unacked) {
        if (tag !== 0 && t > tag) break;
        this.finish(t, entry, outcome);
      }
      return;
    }
    const entry = this.unacked.get(tag);
    if (entry === undefined) {
      this.failLater(preconditionFailed(`unknown delivery tag ${tag}`, 'BasicAck'));
      return;
    }
    this.finish(tag, entry, outcome);
  }

  private finish(tag: number, entry: Unacked, outcome: Outcome): void {
    this.unacked.delete(tag);
    const { queue, consumer, message } = entry;
    queue.unacked--;
    if (consumer !== undefined) {
      consumer.unacked--;
      this.channelUnacked--;
    }
    if (this.broker.observers.size > 0) {
      const event = {
        ...observed(message),
        queue: queue.name,
        outcome: outcome === 'dead-letter' ? ('reject' as const) : outcome,
      };
      for (const observer of this.broker.observers) observer.settled?.(event);
    }
    if (outcome === 'requeue') queue.requeue(message);
    else if (outcome === 'dead-letter' && !queue.deleted) this.broker.deadLetter(queue, message, 'rejected');
    // Prefetch room opened: the queue may deliver again (all this channel's queues for a channel-wide limit).
    if (consumer !== undefined) {
      if (this.channelLimit !== 0) for (const c of this.consumers.values()) this.broker.schedule(c.queue);
      else if (!queue.deleted) this.broker.schedule(queue);
    }
  }

  /**
   * Confirms the publishes up to `seq`, as a basic.ack/nack with `multiple`. Publishes are routed
   * in order, so this is always exactly the oldest unconfirmed one.
   */
  private confirmThrough(seq: number, nack: boolean): void {
    while (this.confirmedSeq < seq && this.unconfirmed.length > 0) {
      const callback = this.unconfirmed.shift();
      this.confirmedSeq++;
      if (callback !== undefined) this.invokeConfirm(callback, nack ? new Error('message nacked') : null);
    }
  }

  private push(item: OutboxItem): void {
    this.outbox.push(item);
    this.broker.scheduleChannel(this);
  }

  /** An asynchronous channel exception (publish, ack): raised in order with the confirms before it. */
  private failLater(exception: AmqpException): void {
    this.failing = true;
    this.push({ kind: 'fail', exception });
  }

  /** A synchronous exception of an operation: the channel closes and the operation rejects. */
  private raise(exception: AmqpException): never {
    this.flushOutbox();
    this.fail(exception);
    throw exception.forOperation();
  }

  private fail(exception: AmqpException): void {
    if (this.closed) return;
    const error = exception.forChannel();
    this.teardown(false);
    // amqplib emits 'error', fails the unconfirmed publishes, then emits 'close'.
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.failUnconfirmed();
    this.emit('close');
  }

  private teardown(failConfirms = true): void {
    this.closed = true;
    this.outbox = [];
    for (const consumer of this.consumers.values()) consumer.queue.removeConsumer(consumer);
    this.consumers.clear();
    if (this.replyConsumer !== undefined) {
      this.broker.replyConsumers.delete(this.replyConsumer.token);
      this.replyConsumer = undefined;
    }
    // Unacked messages go back to their queues, redelivered, in their original order.
    for (const { message, queue } of this.unacked.values()) {
      queue.unacked--;
      queue.requeue(message, 'lost');
    }
    this.unacked.clear();
    this.channelUnacked = 0;
    this.connection.channels.delete(this);
    if (failConfirms) this.failUnconfirmed();
  }

  private failUnconfirmed(): void {
    if (this.unconfirmed.length === 0) return;
    const callbacks = this.unconfirmed.drain();
    this.confirmedSeq = this.publishSeq;
    const error = new Error('channel closed');
    for (const callback of callbacks) if (callback !== undefined) this.invokeConfirm(callback, error);
  }

  private usable(): void {
    if (this.closed || this.failing) throw channelClosed();
  }

  private exchange(name: string, method: MethodName): MemoryExchange {
    const exchange = this.broker.exchanges.get(name);
    if (exchange === undefined) this.raise(notFound('exchange', name, method));
    return exchange;
  }

  private bindSource(name: string, method: MethodName): MemoryExchange {
    if (name === '') this.raise(accessRefused('operation not permitted on the default exchange', method));
    return this.exchange(name, method);
  }

  private queue(name: string, method: MethodName): MemoryQueue {
    const queue = this.broker.queues.get(name);
    if (queue === undefined) this.raise(notFound('queue', name, method));
    this.ownedOrRaise(queue, method);
    return queue;
  }

  private ownedOrRaise(queue: MemoryQueue, method: MethodName): void {
    const owner = queue.settings.owner;
    if (owner !== undefined && owner !== this.connection.id) this.raise(resourceLocked(queue.name, method));
  }

  private toTransport(
    message: Stored,
    deliveryTag: number,
    consumerTag: string | undefined,
    queue: MemoryQueue | undefined,
  ): TransportMessage {
    let properties = { ...message.properties };
    // Quorum deliveries carry x-delivery-count: from the first one on 3.10, after a return on 4.0.
    if (
      queue !== undefined &&
      queue.settings.type === 'quorum' &&
      (message.returns > 0 || this.broker.rabbitmqVersion === '3.10')
    ) {
      properties = {
        ...properties,
        headers: { ...(properties.headers ?? {}), 'x-delivery-count': message.returns },
      };
    }
    const fields: TransportMessage['fields'] = {
      deliveryTag,
      redelivered: message.redelivered,
      exchange: message.exchange,
      routingKey: message.routingKey,
    };
    if (consumerTag !== undefined) fields.consumerTag = consumerTag;
    return { content: message.content, fields, properties };
  }

  private invoke(callback: DeliveryCallback, message: TransportMessage | null): void {
    try {
      callback(message);
    } catch (err) {
      this.handlerError(err, 'delivery');
    }
  }

  private invokeConfirm(callback: ConfirmCallback, err: Error | null): void {
    try {
      callback(err);
    } catch (error) {
      this.handlerError(error, 'confirm');
    }
  }

  private handlerError(err: unknown, where: string): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount('handler-error') > 0) this.emit('handler-error', error, where);
    else getLogger().error({ where, err: error }, 'in-process broker: a callback threw');
  }
}

/**
 * The basic properties of a publish (flags dropped, `persistent` as deliveryMode 2), in AMQP's
 * property order. Named reads, not a loop over the keys: this runs once per publish.
 */
function toProperties(options: PublishOptions): MessageProperties {
  const p: MessageProperties = {};
  if (options.contentType !== undefined) p.contentType = options.contentType;
  if (options.contentEncoding !== undefined) p.contentEncoding = options.contentEncoding;
  if (options.headers !== undefined) p.headers = { ...options.headers };
  if (options.deliveryMode !== undefined) p.deliveryMode = options.deliveryMode;
  if (options.priority !== undefined) p.priority = options.priority;
  if (options.correlationId !== undefined) p.correlationId = options.correlationId;
  if (options.replyTo !== undefined) p.replyTo = options.replyTo;
  if (options.expiration !== undefined) p.expiration = String(options.expiration);
  if (options.messageId !== undefined) p.messageId = options.messageId;
  if (options.timestamp !== undefined) p.timestamp = options.timestamp;
  if (options.type !== undefined) p.type = options.type;
  if (options.userId !== undefined) p.userId = options.userId;
  if (options.appId !== undefined) p.appId = options.appId;
  if (options.persistent === true) p.deliveryMode = 2;
  return p;
}

function stored(
  exchange: string,
  routingKey: string,
  content: Buffer,
  properties: MessageProperties,
): Stored {
  return {
    seq: 0,
    exchange,
    routingKey,
    content,
    properties,
    expiresAt: Infinity,
    returns: 0,
    redelivered: false,
  };
}
