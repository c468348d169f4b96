/**
 * A fake transport for unit specs of pure client-side logic (argument packing, routing choice,
 * confirm bookkeeping). It records what the toolkit asks of the broker; it does not route.
 * Broker behaviour is tested against RabbitMQ in spec/broker.
 */
import { EventEmitter } from 'node:events';

import type {
  ConfirmCallback,
  DeliveryCallback,
  PublishOptions,
  QueueInfo,
  Transport,
  TransportChannel,
  TransportConnection,
  TransportMessage,
} from '../../lib/transport/types';

export interface Published {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: PublishOptions;
  body: unknown;
}

export interface FakeCall {
  method: string;
  args: unknown[];
}

/** How confirms are given: at once (next tick), or held until `release()`. */
export type ConfirmMode = 'auto' | 'manual';

export class FakeChannel extends EventEmitter {
  readonly published: Published[] = [];
  private held: Array<{ callback: ConfirmCallback; item: Published }> = [];

  constructor(private readonly owner: FakeTransport) {
    super();
  }

  private record(method: string, ...args: unknown[]): void {
    this.owner.calls.push({ method, args });
  }

  async assertExchange(...args: unknown[]): Promise<unknown> {
    this.record('assertExchange', ...args);
    return {};
  }
  async checkExchange(...args: unknown[]): Promise<unknown> {
    this.record('checkExchange', ...args);
    return {};
  }
  async deleteExchange(...args: unknown[]): Promise<unknown> {
    this.record('deleteExchange', ...args);
    return {};
  }
  async assertQueue(queue: string, ...args: unknown[]): Promise<QueueInfo> {
    this.record('assertQueue', queue, ...args);
    return {
      queue: queue === '' ? `amq.gen-${this.owner.calls.length}` : queue,
      messageCount: 0,
      consumerCount: 0,
    };
  }
  async checkQueue(queue: string): Promise<QueueInfo> {
    this.record('checkQueue', queue);
    return { queue, messageCount: 0, consumerCount: 0 };
  }
  async deleteQueue(...args: unknown[]): Promise<{ messageCount: number }> {
    this.record('deleteQueue', ...args);
    return { messageCount: 0 };
  }
  async purgeQueue(...args: unknown[]): Promise<{ messageCount: number }> {
    this.record('purgeQueue', ...args);
    return { messageCount: 0 };
  }
  async bindQueue(...args: unknown[]): Promise<unknown> {
    this.record('bindQueue', ...args);
    return {};
  }
  async unbindQueue(...args: unknown[]): Promise<unknown> {
    this.record('unbindQueue', ...args);
    return {};
  }
  async bindExchange(...args: unknown[]): Promise<unknown> {
    this.record('bindExchange', ...args);
    return {};
  }
  async unbindExchange(...args: unknown[]): Promise<unknown> {
    this.record('unbindExchange', ...args);
    return {};
  }

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: PublishOptions = {},
    callback?: ConfirmCallback,
  ): boolean {
    let body: unknown;
    try {
      body = JSON.parse(content.toString('utf8'));
    } catch {
      body = undefined;
    }
    const item = { exchange, routingKey, content, options, body };
    this.published.push(item);
    this.owner.published.push(item);
    if (callback === undefined) return true;
    if (this.owner.confirmMode === 'manual') {
      this.held.push({ callback, item });
    } else {
      setImmediate(() => this.confirm(callback, item));
    }
    return true;
  }

  /** Gives the held confirms (in order). */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const { callback, item } of held) this.confirm(callback, item);
  }

  get heldCount(): number {
    return this.held.length;
  }

  private confirm(callback: ConfirmCallback, item: Published): void {
    if (item.options.mandatory === true && this.owner.unroutableKeys.has(item.routingKey)) {
      const returned: TransportMessage = {
        content: item.content,
        fields: {
          deliveryTag: 0,
          redelivered: false,
          exchange: item.exchange,
          routingKey: item.routingKey,
          replyCode: 312,
          replyText: 'NO_ROUTE',
        },
        properties: item.options,
      };
      this.emit('return', returned);
    }
    callback(null);
  }

  async consume(
    queue: string,
    onMessage: DeliveryCallback,
    ...args: unknown[]
  ): Promise<{ consumerTag: string }> {
    this.record('consume', queue, ...args);
    this.owner.consumers.set(queue, onMessage);
    return { consumerTag: `ctag-${queue}` };
  }
  async cancel(...args: unknown[]): Promise<unknown> {
    this.record('cancel', ...args);
    return {};
  }
  async get(): Promise<TransportMessage | false> {
    return false;
  }
  ack(message: TransportMessage): void {
    this.owner.acked.push(message);
  }
  nack(message: TransportMessage, _allUpTo?: boolean, requeue?: boolean): void {
    this.owner.rejected.push({ message, requeue: requeue ?? true });
  }
  reject(message: TransportMessage, requeue?: boolean): void {
    this.owner.rejected.push({ message, requeue: requeue ?? true });
  }
  async prefetch(...args: unknown[]): Promise<unknown> {
    this.record('prefetch', ...args);
    return {};
  }
  async close(): Promise<void> {
    this.emit('close');
  }
}

class FakeConnection extends EventEmitter {
  constructor(private readonly owner: FakeTransport) {
    super();
  }
  async createChannel(): Promise<TransportChannel> {
    const channel = new FakeChannel(this.owner);
    this.owner.channels.push(channel);
    return channel as unknown as TransportChannel;
  }
  async createConfirmChannel(): Promise<TransportChannel> {
    return this.createChannel();
  }
  async close(): Promise<void> {
    this.owner.closed = true;
    this.emit('close');
  }
}

/** Records every broker call; `published` lists publishes in order. */
export class FakeTransport implements Transport {
  readonly name = 'fake';
  readonly calls: FakeCall[] = [];
  readonly published: Published[] = [];
  readonly channels: FakeChannel[] = [];
  readonly consumers = new Map<string, DeliveryCallback>();
  readonly acked: TransportMessage[] = [];
  readonly rejected: Array<{ message: TransportMessage; requeue: boolean }> = [];
  readonly unroutableKeys = new Set<string>();
  confirmMode: ConfirmMode = 'auto';
  closed = false;
  connects = 0;

  async connect(): Promise<TransportConnection> {
    this.connects++;
    return new FakeConnection(this) as unknown as TransportConnection;
  }

  /** Names of the broker methods called, in order. */
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }

  /** Delivers a message to the consumer of `queue`. */
  deliver(
    queue: string,
    content: Buffer | object,
    properties: TransportMessage['properties'] = {},
  ): TransportMessage {
    const consumer = this.consumers.get(queue);
    if (consumer === undefined) throw new Error(`no consumer on ${queue}`);
    const message: TransportMessage = {
      content: Buffer.isBuffer(content) ? content : Buffer.from(JSON.stringify(content)),
      fields: {
        deliveryTag: this.acked.length + this.rejected.length + 1,
        redelivered: false,
        exchange: '',
        routingKey: queue,
      },
      properties,
    };
    consumer(message);
    return message;
  }
}
