/**
 * The one seam between postage and a broker. It is the subset of amqplib's promise API that
 * postage uses, so an amqplib connection fits it as it is, and the in-process broker
 * implements the same interface with RabbitMQ's semantics.
 */
import type { Endpoint } from '../connection/config';

/** AMQP basic properties. */
export interface MessageProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: Record<string, unknown>;
  /** 1 transient, 2 persistent. */
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  /** Per-message TTL in milliseconds, as a string. */
  expiration?: string;
  messageId?: string;
  /** Seconds since the epoch. */
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
}

/** Options of a publish: the properties plus the publish flags. */
export interface PublishOptions extends MessageProperties {
  /** Return the message (basic.return) when it routes to no queue. */
  mandatory?: boolean;
  /** Shorthand for deliveryMode 2. */
  persistent?: boolean;
}

/** Delivery information of a received or returned message. */
export interface MessageFields {
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
  consumerTag?: string;
  messageCount?: number;
  /** Only on returned messages. */
  replyCode?: number;
  /** Only on returned messages. */
  replyText?: string;
}

/** A message as a broker hands it over (delivery, get or return). */
export interface TransportMessage {
  content: Buffer;
  fields: MessageFields;
  /** Absent properties are undefined. */
  properties: MessageProperties;
}

/** Queue declaration options (amqplib's names). */
export interface QueueOptions {
  exclusive?: boolean;
  durable?: boolean;
  autoDelete?: boolean;
  arguments?: Record<string, unknown>;
  messageTtl?: number;
  expires?: number;
  deadLetterExchange?: string;
  deadLetterRoutingKey?: string;
  maxLength?: number;
  maxPriority?: number;
  overflow?: string;
}

/** Exchange declaration options (amqplib's names). */
export interface ExchangeOptions {
  durable?: boolean;
  internal?: boolean;
  autoDelete?: boolean;
  alternateExchange?: string;
  arguments?: Record<string, unknown>;
}

/** Consume options. */
export interface ConsumeOptions {
  consumerTag?: string;
  noAck?: boolean;
  exclusive?: boolean;
  priority?: number;
  arguments?: Record<string, unknown>;
}

/** The reply to a queue declaration. */
export interface QueueInfo {
  queue: string;
  messageCount: number;
  consumerCount: number;
}

/** Called once per delivery; `null` means the broker cancelled the consumer (e.g. its queue was deleted). */
export type DeliveryCallback = (message: TransportMessage | null) => void;

/** Called when the broker confirms (err null) or refuses / loses (err set) a publish. */
export type ConfirmCallback = (err: unknown) => void;

/** A channel. Created as a confirm channel, `publish` takes a confirm callback. */
export interface TransportChannel {
  assertExchange(exchange: string, type: string, options?: ExchangeOptions): Promise<unknown>;
  checkExchange(exchange: string): Promise<unknown>;
  deleteExchange(exchange: string, options?: { ifUnused?: boolean }): Promise<unknown>;
  assertQueue(queue: string, options?: QueueOptions): Promise<QueueInfo>;
  checkQueue(queue: string): Promise<QueueInfo>;
  deleteQueue(
    queue: string,
    options?: { ifUnused?: boolean; ifEmpty?: boolean },
  ): Promise<{ messageCount: number }>;
  purgeQueue(queue: string): Promise<{ messageCount: number }>;
  bindQueue(queue: string, source: string, pattern: string, args?: Record<string, unknown>): Promise<unknown>;
  unbindQueue(
    queue: string,
    source: string,
    pattern: string,
    args?: Record<string, unknown>,
  ): Promise<unknown>;
  bindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: Record<string, unknown>,
  ): Promise<unknown>;
  unbindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: Record<string, unknown>,
  ): Promise<unknown>;
  /** Returns false when the channel's write buffer is full (a hint to wait for 'drain'). */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: PublishOptions,
    callback?: ConfirmCallback,
  ): boolean;
  consume(
    queue: string,
    onMessage: DeliveryCallback,
    options?: ConsumeOptions,
  ): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  get(queue: string, options?: { noAck?: boolean }): Promise<TransportMessage | false>;
  ack(message: TransportMessage, allUpTo?: boolean): void;
  nack(message: TransportMessage, allUpTo?: boolean, requeue?: boolean): void;
  reject(message: TransportMessage, requeue?: boolean): void;
  prefetch(count: number, global?: boolean): Promise<unknown>;
  close(): Promise<void>;

  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'return', listener: (message: TransportMessage) => void): this;
  on(event: 'drain', listener: () => void): this;
  on(event: 'handler-error', listener: (err: Error, eventName: string) => void): this;
  removeListener(event: string, listener: (...args: never[]) => void): this;
}

/** A connection to one broker. */
export interface TransportConnection {
  createChannel(): Promise<TransportChannel>;
  createConfirmChannel(): Promise<TransportChannel>;
  close(): Promise<void>;

  on(event: 'close', listener: (err?: Error) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'blocked', listener: (reason: string) => void): this;
  on(event: 'unblocked', listener: () => void): this;
  removeListener(event: string, listener: (...args: never[]) => void): this;
}

/** Settings a transport needs to open a connection. */
export interface TransportConnectOptions {
  /** Seconds; 0 disables. */
  heartbeat: number;
  /** Milliseconds. */
  connectTimeout: number;
  /** Shown in the broker's management UI. Never holds credentials. */
  connectionName: string;
}

/** Opens connections: amqplib for amqp:// and amqps://, the in-process broker for memory://. */
export interface Transport {
  readonly name: string;
  connect(endpoint: Endpoint, options: TransportConnectOptions): Promise<TransportConnection>;
}
