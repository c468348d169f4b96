import type { DeliveryCallback, MessageProperties } from '../types';
import { Deque } from './deque';

/**
 * The RabbitMQ releases the in-process broker can follow where their behaviour differs (see
 * {@link MemoryBrokerOptions.rabbitmqVersion}).
 */
export type RabbitmqVersion = '3.10' | '4.0';

/** RabbitMQ 4.0's delivery limit of a quorum queue declared without `x-delivery-limit`. */
export const DEFAULT_QUORUM_DELIVERY_LIMIT_4_0 = 20;

/**
 * The dead-letter history a broker keeps with a message since 3.13 (4.0 here): x-death is built
 * from it, and an x-death header a client publishes is not part of it.
 */
export interface DeathHistory {
  readonly entries: readonly Record<string, unknown>[];
  readonly first: { readonly reason: string; readonly queue: string; readonly exchange: string };
}

/** A message as a queue holds it. Several queues may share the content and properties. */
export interface Stored {
  /** Enqueue order in its queue; requeued messages go back to their place. */
  seq: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly properties: MessageProperties;
  /** Epoch milliseconds; Infinity when the message never expires. */
  expiresAt: number;
  /** Times the message went back to its queue (nack/reject with requeue, channel closed). */
  returns: number;
  redelivered: boolean;
  /** The broker's own dead-letter history (4.0); undefined for a message a client published. */
  deaths?: DeathHistory | undefined;
}

/** Why a message leaves a queue for its dead-letter exchange (RabbitMQ's x-death reasons). */
export type DeathReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

/** What a queue needs from the channel that holds a consumer. */
export interface ConsumerHost {
  /** Whether the channel's prefetch allows one more delivery to this consumer. */
  hasRoom(consumer: Consumer): boolean;
  deliver(consumer: Consumer, message: Stored, queue: MemoryQueue): void;
  /** The broker cancelled the consumer (its queue was deleted). */
  cancelledByBroker(consumer: Consumer): void;
}

/** One basic.consume. */
export interface Consumer {
  readonly tag: string;
  readonly queue: MemoryQueue;
  readonly host: ConsumerHost;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  /** Per-consumer prefetch; 0 is unlimited. */
  readonly limit: number;
  unacked: number;
  readonly callback: DeliveryCallback;
}

/** What a queue needs from its broker. */
export interface QueueHost {
  /** The RabbitMQ release whose rules differ for quorum queues (requeue placement, delivery limit). */
  readonly rabbitmqVersion: RabbitmqVersion;
  deadLetter(queue: MemoryQueue, message: Stored, reason: DeathReason): void;
  schedule(queue: MemoryQueue): void;
  timer(callback: () => void, ms: number): NodeJS.Timeout;
  removeQueue(queue: MemoryQueue): void;
}

/** Declared settings of a queue, normalised from amqplib's options and x-arguments. */
export interface QueueSettings {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  /** Id of the owning connection, for exclusive queues. */
  readonly owner: number | undefined;
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly type: 'classic' | 'quorum';
  readonly messageTtl: number | undefined;
  readonly expires: number | undefined;
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
  readonly maxLength: number | undefined;
  readonly maxLengthBytes: number | undefined;
  readonly overflow: 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
  readonly deliveryLimit: number | undefined;
}

/** Outcome of offering a message to a queue. */
export type EnqueueResult = 'queued' | 'refused';

/** Why a delivered message goes back to its queue: a nack/reject with requeue, or its channel closed. */
export type ReturnCause = 'settled' | 'lost';

/**
 * A queue with RabbitMQ's rules: FIFO with requeue to the original position, round-robin among
 * consumers that have prefetch room, TTL expiry at the head, length limits with drop-head or
 * reject-publish, dead-lettering, quorum delivery limits, auto-delete and x-expires.
 * Not exported by the package (its declaration ships: the memory transport's declarations name it).
 */
export class MemoryQueue {
  readonly ready = new Deque<Stored>();
  readyBytes = 0;
  readonly consumers: Consumer[] = [];
  /** Messages delivered and not yet settled, over all channels. */
  unacked = 0;
  deleted = false;
  private nextSeq = 1;
  /** Keys of quorum returns placed at the head (4.0): below every enqueued message, in return order. */
  private nextReturnSeq = -Number.MAX_SAFE_INTEGER;
  private roundRobin = 0;
  private hadConsumer = false;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt = Infinity;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    readonly settings: QueueSettings,
    private readonly host: QueueHost,
  ) {
    this.touch();
  }

  get exclusiveConsumer(): Consumer | undefined {
    return this.consumers.find((c) => c.exclusive);
  }

  /** Offers a new message; `refused` when the queue is full and rejects publishes. */
  enqueue(message: Stored, now: number): EnqueueResult {
    const { maxLength, maxLengthBytes, overflow, messageTtl } = this.settings;
    if (overflow !== 'drop-head' && this.isFullFor(message.content.length, maxLength, maxLengthBytes)) {
      if (overflow === 'reject-publish-dlx') this.host.deadLetter(this, message, 'maxlen');
      return 'refused';
    }
    const perMessage = parseExpiration(message.properties.expiration);
    const ttl = perMessage === undefined ? messageTtl : Math.min(perMessage, messageTtl ?? perMessage);
    if (ttl !== undefined) {
      // TTL 0: delivered only if a consumer can take it right now, otherwise expired at once.
      if (ttl === 0 && !this.hasConsumerWithRoom()) {
        this.host.deadLetter(this, message, 'expired');
        return 'queued';
      }
      message.expiresAt = ttl === 0 ? Infinity : now + ttl;
    }
    message.seq = this.nextSeq++;
    this.ready.push(message);
    this.readyBytes += message.content.length;
    if (overflow === 'drop-head') this.dropHeadWhileOver(maxLength, maxLengthBytes);
    this.host.schedule(this);
    return 'queued';
  }

  /**
   * Puts a delivered message back, or dead-letters it past a quorum queue's delivery limit.
   * Classic queues put it in its place. Quorum queues put one whose channel closed back in its
   * place, and a nacked one (reject or nack with requeue) at the back on 3.10, at the head (in
   * the order they come back) on 4.0.
   */
  requeue(message: Stored, cause: ReturnCause = 'settled'): void {
    if (this.deleted) return;
    message.returns++;
    const limit = this.deliveryLimit();
    if (limit !== undefined && message.returns > limit) {
      this.host.deadLetter(this, message, 'delivery_limit');
      return;
    }
    message.redelivered = true;
    const placement =
      this.settings.type === 'classic' ? 'place' : QUORUM_RETURNS[this.host.rabbitmqVersion][cause];
    switch (placement) {
      case 'place':
        this.ready.insertSorted(message, (m) => m.seq);
        break;
      case 'back':
        message.seq = this.nextSeq++;
        this.ready.push(message);
        break;
      case 'head':
        message.seq = this.nextReturnSeq++;
        this.ready.insertSorted(message, (m) => m.seq);
        break;
    }
    this.readyBytes += message.content.length;
    this.host.schedule(this);
  }

  /**
   * The returns after which a quorum queue dead-letters a message (undefined: no limit). 3.10
   * has none unless declared (a negative one acts as 0); 4.0 defaults to 20 and a negative
   * limit disables it.
   */
  deliveryLimit(): number | undefined {
    if (this.settings.type !== 'quorum') return undefined;
    const declared = this.settings.deliveryLimit;
    if (this.host.rabbitmqVersion === '3.10')
      return declared === undefined ? undefined : Math.max(0, declared);
    if (declared === undefined) return DEFAULT_QUORUM_DELIVERY_LIMIT_4_0;
    return declared < 0 ? undefined : declared;
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.hadConsumer = true;
    this.touch();
    this.host.schedule(this);
  }

  /** Removes a consumer; an auto-delete queue goes with its last consumer. */
  removeConsumer(consumer: Consumer): void {
    const at = this.consumers.indexOf(consumer);
    if (at < 0) return;
    this.consumers.splice(at, 1);
    if (this.consumers.length === 0) {
      if (this.settings.autoDelete && this.hadConsumer) this.host.removeQueue(this);
      else this.touch();
    }
  }

  /** Delivers ready messages to consumers with room, expiring those at the head first. */
  pump(now: number): void {
    if (this.deleted) return;
    const consumers = this.consumers;
    while (this.ready.length > 0) {
      const head = this.ready.peek() as Stored;
      if (head.expiresAt <= now) {
        this.takeHead();
        this.host.deadLetter(this, head, 'expired');
        continue;
      }
      const consumer = this.nextConsumer(consumers);
      if (consumer === undefined) break;
      this.takeHead();
      consumer.host.deliver(consumer, head, this);
    }
    this.armExpiry(now);
  }

  /** basic.get: the head message (expired ones dead-lettered first), or undefined. */
  take(now: number): Stored | undefined {
    this.touch();
    while (this.ready.length > 0) {
      const head = this.takeHead() as Stored;
      if (head.expiresAt <= now) {
        this.host.deadLetter(this, head, 'expired');
        continue;
      }
      return head;
    }
    return undefined;
  }

  /** Removes every ready message; returns how many. */
  purge(): number {
    const count = this.ready.length;
    this.ready.drain();
    this.readyBytes = 0;
    return count;
  }

  /** Called when the queue is deleted: consumers are cancelled, messages dropped. */
  destroy(): Stored[] {
    this.deleted = true;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    for (const consumer of this.consumers.splice(0)) consumer.host.cancelledByBroker(consumer);
    this.readyBytes = 0;
    return this.ready.drain();
  }

  /** Restarts the x-expires countdown (a declare, a get, a consumer leaving). */
  touch(): void {
    const expires = this.settings.expires;
    if (expires === undefined || this.deleted) return;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.consumers.length > 0) return;
    this.idleTimer = this.host.timer(() => {
      if (this.consumers.length === 0) this.host.removeQueue(this);
    }, expires);
  }

  /** Timers this queue holds, so the broker can ref or unref them. */
  timers(): NodeJS.Timeout[] {
    const out: NodeJS.Timeout[] = [];
    if (this.expiryTimer !== undefined) out.push(this.expiryTimer);
    if (this.idleTimer !== undefined) out.push(this.idleTimer);
    return out;
  }

  private takeHead(): Stored | undefined {
    const head = this.ready.shift();
    if (head !== undefined) this.readyBytes -= head.content.length;
    return head;
  }

  private nextConsumer(consumers: Consumer[]): Consumer | undefined {
    const count = consumers.length;
    if (count === 1) {
      const only = consumers[0] as Consumer;
      return only.host.hasRoom(only) ? only : undefined;
    }
    for (let i = 0; i < count; i++) {
      const at = (this.roundRobin + i) % count;
      const consumer = consumers[at] as Consumer;
      if (consumer.host.hasRoom(consumer)) {
        this.roundRobin = at + 1;
        return consumer;
      }
    }
    return undefined;
  }

  private hasConsumerWithRoom(): boolean {
    return this.consumers.some((c) => c.host.hasRoom(c));
  }

  private isFullFor(size: number, maxLength?: number, maxLengthBytes?: number): boolean {
    if (maxLength !== undefined && this.ready.length + 1 > maxLength) return true;
    return maxLengthBytes !== undefined && this.readyBytes + size > maxLengthBytes;
  }

  private dropHeadWhileOver(maxLength?: number, maxLengthBytes?: number): void {
    while (
      (maxLength !== undefined && this.ready.length > maxLength) ||
      (maxLengthBytes !== undefined && this.readyBytes > maxLengthBytes && this.ready.length > 0)
    ) {
      const head = this.takeHead() as Stored;
      this.host.deadLetter(this, head, 'maxlen');
    }
  }

  /** Arms one timer for the head message's expiry (RabbitMQ expires at the head). */
  private armExpiry(now: number): void {
    const head = this.ready.peek();
    const at = head?.expiresAt ?? Infinity;
    if (at === this.expiryAt) return;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryAt = at;
    if (at === Infinity) return;
    this.expiryTimer = this.host.timer(
      () => {
        this.expiryTimer = undefined;
        this.expiryAt = Infinity;
        this.host.schedule(this);
      },
      Math.max(0, at - now) + 1,
    );
  }
}

/** Where a quorum queue puts a returned message, by release and cause (observed on 3.10.8 and 4.0.5). */
const QUORUM_RETURNS: Record<RabbitmqVersion, Record<ReturnCause, 'place' | 'back' | 'head'>> = {
  '3.10': { settled: 'back', lost: 'place' },
  '4.0': { settled: 'head', lost: 'place' },
};

/** The expiration property: milliseconds as a decimal string. */
export function parseExpiration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Number(value);
  return Number.isInteger(ms) && ms >= 0 ? ms : undefined;
}
