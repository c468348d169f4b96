/**
 * The test client: drive a processor on the in-process broker from a test and assert what it
 * did (acked, requeued, rejected, dead-lettered, published, replied) with no RabbitMQ, no
 * sleeps and no timers. Each `send` resolves when the processor has settled that message.
 */
import { v4 as uuid } from 'uuid';

import { ErrorCode, PostageError } from '../errors';
import { jsonEncoder, type Encoder } from '../messages/encoder';
import type { ExchangeDefinition } from '../messages/exchange';
import { Message, resultFromBody, type RpcResult } from '../messages/message';
import { DELIVERIES_HEADER, ERROR_HEADER, QUEUE_HEADER, REASON_HEADER } from '../processor/poison';
import type { MessageProcessor } from '../processor/processor';
import { isEnvelope, type ReceivedBody, type ResultContent } from '../messages/schema';
import { MemoryBroker, memoryTransport } from '../transport/memory';
import type { ObservedDeath, ObservedMessage, ObservedPublish, ObservedSettle } from '../transport/memory';
import type {
  PublishOptions,
  TransportChannel,
  TransportConnection,
  TransportMessage,
} from '../transport/types';

/** Where a test message goes: by default straight into the processor's first queue. */
export interface SendTarget {
  /** Publish to this exchange (with `key`) instead of the processor's first queue. */
  exchange?: string | ExchangeDefinition;
  /** Routing key with `exchange`. @default '' */
  key?: string;
  /** Publish into this queue (through the default exchange). */
  queue?: string;
  /** Extra AMQP properties (headers, expiration...). */
  properties?: PublishOptions;
}

/** One message the broker saw, decoded when it is JSON. */
export interface Recorded {
  readonly exchange: string;
  readonly routingKey: string;
  /** The decoded body: a postage envelope, other JSON, or the raw bytes. */
  readonly body: unknown;
  /** The body as a postage Message when it is an envelope. */
  readonly message: Message<unknown> | undefined;
  readonly content: Buffer;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly messageId: string | undefined;
}

/**
 * How the processor settled a message. `deadLetter` is postage's own dead-lettering (published
 * to the processor's dead-letter exchange with its reason, then acked); `requeue` includes
 * postage's counted requeue on classic queues (republished, then acked).
 */
export interface Settled extends Recorded {
  readonly queue: string;
  readonly outcome: 'ack' | 'requeue' | 'reject' | 'deadLetter';
}

/**
 * A message that left a queue for its dead-letter exchange (or was dropped: no DLX): by the
 * broker (reason from x-death) or by postage (reason `rejected`, `postageReason` and `error`
 * from its x-postage-* headers).
 */
export interface DeadLettered extends Recorded {
  readonly queue: string;
  readonly reason: ObservedDeath['reason'];
  readonly deadLetterExchange: string | undefined;
  /** postage's reason (x-postage-reason), e.g. HANDLER_FAILED or DELIVERY_LIMIT. */
  readonly postageReason: string | undefined;
  /** The error postage recorded (x-postage-error). */
  readonly error: string | undefined;
}

/** A message the processor (or anything but this client) published. */
export interface Published extends Recorded {
  readonly queues: readonly string[];
}

/** Options of {@link TestClient.for}. */
export interface TestClientOptions {
  /** Encodes what `send` is given. @default the JSON encoder */
  encoder?: Encoder;
  /** Start the processor if it is not running. @default true */
  start?: boolean;
}

/**
 * Sends messages and RPC calls to a processor running on the in-process broker, and records
 * what happened to them.
 *
 * @example
 * ```ts
 * const processor = new EchoProcessor({ url: 'memory://echo-test' });
 * const client = await TestClient.for(processor);
 * const settled = await client.send(new MessageCommand('echo', { text: 'hi' }));
 * expect(settled.outcome).toBe('ack');
 * expect((await client.rpc(new RpcCommand('echo', 'hi'))).unwrap()).toBe('hi');
 * await client.close();
 * ```
 */
export class TestClient {
  /** Every settlement, in order. */
  readonly settled: Settled[] = [];
  /** Every dead letter (or drop for want of a DLX), in order. */
  readonly deadLettered: DeadLettered[] = [];
  /** What anything but this client published (replies excluded), in order. */
  readonly published: Published[] = [];
  /** Replies to this client's RPC calls, in order. */
  readonly replies: Message<unknown>[] = [];

  readonly #broker: MemoryBroker;
  readonly #processor: MessageProcessor;
  readonly #encoder: Encoder;
  readonly #connection: TransportConnection;
  readonly #channel: TransportChannel;
  readonly #waiting = new Map<string, (settled: Settled) => void>();
  readonly #calls = new Map<string, (reply: TransportMessage) => void>();
  readonly #stopObserving: () => void;
  /** Messages postage republished (dead letter or counted requeue) whose ack is pending: messageId -> outcome. */
  readonly #republished = new Map<string, 'deadLetter' | 'requeue'>();
  #closing: Promise<void> | undefined;

  private constructor(
    broker: MemoryBroker,
    processor: MessageProcessor,
    connection: TransportConnection,
    channel: TransportChannel,
    encoder: Encoder,
    connectionId: number,
  ) {
    this.#broker = broker;
    this.#processor = processor;
    this.#connection = connection;
    this.#channel = channel;
    this.#encoder = encoder;
    this.#stopObserving = broker.observe({
      settled: (event) => this.#onSettled(event),
      deadLettered: (event) => this.#onDead(event),
      published: (event) => this.#onPublished(event, connectionId),
    });
  }

  /** Connects to the processor's in-process broker and starts the processor. */
  static async for(processor: MessageProcessor, options: TestClientOptions = {}): Promise<TestClient> {
    const endpoint = processor.connection.config.endpoints[0];
    if (endpoint?.protocol !== 'memory') {
      throw new PostageError(
        ErrorCode.INVALID_ARGUMENT,
        "the test client needs a processor on the in-process broker (url: 'memory://<name>')",
      );
    }
    const broker = MemoryBroker.named(endpoint.host);
    const connection = await memoryTransport.connect(endpoint, {
      heartbeat: 0,
      connectTimeout: 0,
      connectionName: 'postage test client',
    });
    const channel = await connection.createConfirmChannel();
    const connectionId = (connection as unknown as { id: number }).id;
    const client = new TestClient(
      broker,
      processor,
      connection,
      channel,
      options.encoder ?? jsonEncoder,
      connectionId,
    );
    await channel.consume('amq.rabbitmq.reply-to', (reply) => reply !== null && client.#onReply(reply), {
      noAck: true,
    });
    if (options.start !== false) await processor.start();
    return client;
  }

  /** The broker the processor runs on (for queue snapshots). */
  get broker(): MemoryBroker {
    return this.#broker;
  }

  /** Settlements with outcome ack. */
  get acked(): Settled[] {
    return this.settled.filter((s) => s.outcome === 'ack');
  }

  /** Settlements with outcome deadLetter (postage's own dead-lettering, with its reason). */
  get deadLetteredByPostage(): Settled[] {
    return this.settled.filter((s) => s.outcome === 'deadLetter');
  }

  /** Settlements with outcome reject (without requeue). */
  get rejected(): Settled[] {
    return this.settled.filter((s) => s.outcome === 'reject');
  }

  /** Settlements with outcome requeue. */
  get requeued(): Settled[] {
    return this.settled.filter((s) => s.outcome === 'requeue');
  }

  /**
   * Sends a message (a postage Message, any JSON value, or raw bytes) and resolves with its first
   * settlement by the processor. Rejects with UNROUTABLE when it reaches no queue.
   */
  async send(message: Message<unknown> | Buffer | unknown, target: SendTarget = {}): Promise<Settled> {
    const messageId = uuid();
    const settled = new Promise<Settled>((resolve) => this.#waiting.set(messageId, resolve));
    try {
      await this.#publish(message, target, { messageId });
    } catch (err) {
      this.#waiting.delete(messageId);
      throw err;
    }
    const result = await settled;
    await this.#broker.idle();
    return result;
  }

  /**
   * Publishes a message without waiting for the processor (e.g. to fill a queue before
   * `runOnce`, or while the processor is stopped). Resolves once the broker confirmed it.
   */
  async publish(message: Message<unknown> | Buffer | unknown, target: SendTarget = {}): Promise<void> {
    await this.#publish(message, target, { messageId: uuid() });
  }

  /** Sends an RPC request and resolves with the processor's reply as a result message. */
  async rpc(message: Message<unknown> | unknown, target: SendTarget = {}): Promise<RpcResult> {
    const correlationId = uuid();
    const reply = new Promise<TransportMessage>((resolve) => this.#calls.set(correlationId, resolve));
    try {
      await this.#publish(message, target, {
        messageId: correlationId,
        correlationId,
        replyTo: 'amq.rabbitmq.reply-to',
      });
    } catch (err) {
      this.#calls.delete(correlationId);
      throw err;
    }
    const received = await reply;
    const body: unknown = this.#encoder.decode(received.content);
    if (!isEnvelope(body) || body.type !== 'result') {
      throw new PostageError(
        ErrorCode.RPC_MALFORMED_REPLY,
        'the processor replied with something that is not a result',
      );
    }
    return resultFromBody(body as ReceivedBody & { content: ResultContent });
  }

  /** Forgets what was recorded so far. */
  clear(): void {
    this.settled.length = 0;
    this.deadLettered.length = 0;
    this.#republished.clear();
    this.published.length = 0;
    this.replies.length = 0;
  }

  /**
   * Stops the processor and closes the client's connection. Idempotent and safe to call
   * concurrently: every call returns the same promise, which never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    this.#stopObserving();
    await this.#processor.stop().catch(() => undefined);
    await this.#connection.close().catch(() => undefined);
  }

  async #publish(message: unknown, target: SendTarget, extra: PublishOptions): Promise<void> {
    const content =
      message instanceof Message
        ? this.#encoder.encode(message.body)
        : Buffer.isBuffer(message)
          ? message
          : this.#encoder.encode(message);
    let exchange = '';
    let key = target.queue;
    if (target.exchange !== undefined) {
      exchange = typeof target.exchange === 'string' ? target.exchange : target.exchange.name;
      key = target.key ?? '';
    }
    if (key === undefined) {
      key = this.#processor.consumer.queueNames[0];
      if (key === undefined)
        throw new PostageError(ErrorCode.INVALID_ARGUMENT, 'the processor consumes no queue');
    }
    const options: PublishOptions = {
      contentType: this.#encoder.contentType,
      ...target.properties,
      ...extra,
      mandatory: true,
    };
    let returned = false;
    const onReturn = (m: TransportMessage): void => {
      if (m.properties.messageId === extra.messageId) returned = true;
    };
    this.#channel.on('return', onReturn);
    try {
      await new Promise<void>((resolve, reject) =>
        this.#channel.publish(exchange, key, content, options, (err) =>
          err === null || err === undefined ? resolve() : reject(err as Error),
        ),
      );
    } finally {
      this.#channel.removeListener('return', onReturn);
    }
    if (returned) {
      throw new PostageError(ErrorCode.UNROUTABLE, `no queue is bound to '${exchange}' with key '${key}'`);
    }
  }

  #onSettled(event: ObservedSettle): void {
    const id = event.properties.messageId;
    let outcome: Settled['outcome'] = event.outcome;
    const republished = id === undefined ? undefined : this.#republished.get(id);
    if (republished !== undefined && id !== undefined && outcome === 'ack') {
      this.#republished.delete(id);
      outcome = republished;
    }
    const settled: Settled = { ...this.#record(event), queue: event.queue, outcome };
    this.settled.push(settled);
    if (id === undefined) return;
    const waiter = this.#waiting.get(id);
    if (waiter !== undefined) {
      this.#waiting.delete(id);
      waiter(settled);
    }
  }

  #onDead(event: ObservedDeath): void {
    this.deadLettered.push({
      ...this.#record(event),
      queue: event.queue,
      reason: event.reason,
      deadLetterExchange: event.deadLetterExchange,
      postageReason: undefined,
      error: undefined,
    });
  }

  #onPublished(event: ObservedPublish, own: number): void {
    if (event.connectionId === own) return;
    if (event.exchange === '' && event.routingKey.startsWith('amq.rabbitmq.reply-to.')) return;
    const headers = event.properties.headers ?? {};
    const id = event.properties.messageId;
    const reason = headers[REASON_HEADER];
    if (typeof reason === 'string') {
      const error = headers[ERROR_HEADER];
      const queue = headers[QUEUE_HEADER];
      this.deadLettered.push({
        ...this.#record(event),
        queue: typeof queue === 'string' ? queue : '',
        reason: 'rejected',
        deadLetterExchange: event.exchange,
        postageReason: reason,
        error: typeof error === 'string' ? error : undefined,
      });
      if (id !== undefined) this.#republished.set(id, 'deadLetter');
      return;
    }
    if (event.exchange === '' && typeof headers[DELIVERIES_HEADER] === 'number') {
      // postage's counted requeue on a classic queue: not a publish of the application.
      if (id !== undefined) this.#republished.set(id, 'requeue');
      return;
    }
    this.published.push({ ...this.#record(event), queues: event.queues });
  }

  #onReply(reply: TransportMessage): void {
    const record = this.#record({ ...reply.fields, content: reply.content, properties: reply.properties });
    if (record.message !== undefined) this.replies.push(record.message);
    const id = reply.properties.correlationId;
    const call = id === undefined ? undefined : this.#calls.get(id);
    if (call !== undefined && id !== undefined) {
      this.#calls.delete(id);
      call(reply);
    }
  }

  #record(event: ObservedMessage): Recorded {
    let body: unknown = event.content;
    try {
      body = this.#encoder.decode(event.content);
    } catch {
      // Not decodable: keep the bytes.
    }
    return {
      exchange: event.exchange,
      routingKey: event.routingKey,
      body,
      message: isEnvelope(body) ? Message.fromBody(body) : undefined,
      content: event.content,
      headers: event.properties.headers ?? {},
      messageId: event.properties.messageId,
    };
  }
}
