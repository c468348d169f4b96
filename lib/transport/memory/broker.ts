import { randomBytes } from 'node:crypto';

import type { MessageProperties } from '../types';
import { AmqpException } from './errors';
import { MemoryExchange, type Binding } from './exchange';
import type { ReplyConsumer } from './channel';
import type { MemoryConnection } from './connection';
import {
  MemoryQueue,
  type DeathHistory,
  type DeathReason,
  type QueueSettings,
  type RabbitmqVersion,
  type Stored,
} from './queue';

/** Settings of an in-process broker. */
export interface MemoryBrokerOptions {
  /**
   * Largest message body accepted, in bytes; a larger publish closes the channel with 406 as
   * RabbitMQ's `max_message_size` does.
   * @default 134_217_728 (RabbitMQ's default, 128 MiB)
   */
  maxMessageSize?: number;
  /**
   * The RabbitMQ release to follow where releases differ (the contract suite checks both):
   * - quorum queues: a message nacked or rejected with requeue goes to the back on `'3.10'`, to
   *   the head on `'4.0'` (in the order they come back); one whose channel closed goes back in
   *   its place on both;
   * - quorum queues without `x-delivery-limit`: no limit on `'3.10'`, 20 on `'4.0'` (a negative
   *   limit: none on `'4.0'`, dead-lettered at the first return on `'3.10'`);
   * - `x-delivery-count` on a quorum queue's first delivery: 0 on `'3.10'`, absent on `'4.0'`;
   * - dead-lettering: `'3.10'` continues an `x-death` header a client published, `'4.0'` (as
   *   since 3.13) ignores it and writes the broker's own history, plus `x-last-death-reason`,
   *   `x-last-death-queue` and `x-last-death-exchange`.
   * @default '4.0'
   */
  rabbitmqVersion?: RabbitmqVersion;
}

/** What an observer of the broker sees (the test client uses it; no cost when nobody observes). */
export interface BrokerObserver {
  /** A message was published; `queues` are the queues it reached (reply-to: none). */
  published?(event: ObservedPublish): void;
  /** A delivered message was acked, requeued or rejected without requeue. */
  settled?(event: ObservedSettle): void;
  /** A message left a queue for its dead-letter exchange. */
  deadLettered?(event: ObservedDeath): void;
}

/** A message as observers see it. */
export interface ObservedMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly properties: MessageProperties;
}

export interface ObservedPublish extends ObservedMessage {
  /** The publishing connection, to tell clients apart. */
  readonly connectionId: number;
  readonly queues: readonly string[];
}

export interface ObservedSettle extends ObservedMessage {
  readonly queue: string;
  readonly outcome: 'ack' | 'requeue' | 'reject';
}

export interface ObservedDeath extends ObservedMessage {
  readonly queue: string;
  readonly reason: DeathReason;
  /** The dead-letter exchange; undefined when the queue has none (the message is dropped). */
  readonly deadLetterExchange: string | undefined;
}

/** A snapshot of one queue, for tests and tooling. */
export interface QueueSnapshot {
  readonly name: string;
  readonly messages: number;
  readonly unacked: number;
  readonly consumers: number;
  readonly durable: boolean;
  readonly type: 'classic' | 'quorum';
}

const brokers = new Map<string, MemoryBroker>();

/** @internal */
export function observed(message: {
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: MessageProperties;
}): ObservedMessage {
  return {
    exchange: message.exchange,
    routingKey: message.routingKey,
    content: message.content,
    properties: message.properties,
  };
}

/**
 * An AMQP 0-9-1 broker that lives in this process and follows RabbitMQ's rules for everything
 * postage uses: exchanges of every built-in type, queues with TTL, length limits, dead-lettering
 * and delivery limits, prefetch, acks, confirms, returns and direct reply-to. Connections to
 * `memory://<name>` reach the broker of that name, created on first use.
 *
 * It also lets tests cause faults that RabbitMQ users meet: closing every connection, a
 * restart that keeps only durable state, a resource alarm, an unreachable broker.
 *
 * @example
 * ```ts
 * const connection = new Connection({ url: 'memory://' });
 * // ... producers and processors as over RabbitMQ
 * MemoryBroker.named('default').inspect();
 * ```
 */
export class MemoryBroker {
  // Not `implements QueueHost`: the methods a queue calls are @internal, so the shipped
  // declarations would not satisfy the clause; `new MemoryQueue(..., this)` checks it instead.
  /** @internal */ readonly exchanges = new Map<string, MemoryExchange>();
  /** @internal */ readonly queues = new Map<string, MemoryQueue>();
  /** @internal */ readonly connections = new Set<MemoryConnection>();
  /** @internal */ readonly replyConsumers = new Map<string, ReplyConsumer>();
  /** @internal */ readonly maxMessageSize: number;
  /** The RabbitMQ release this broker follows where releases differ. */
  readonly rabbitmqVersion: RabbitmqVersion;
  /** @internal */ alarm: string | undefined;
  /** @internal Observers (the test client); empty on the hot path. */
  readonly observers = new Set<BrokerObserver>();
  /** Refuse new connections (a broker that is down or unreachable). */
  unreachable = false;
  private nextConnectionId = 1;
  private readonly dirtyQueues = new Set<MemoryQueue>();
  private readonly dirtyChannels = new Set<{ flushOutbox(): void }>();
  private scheduled = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly name = 'default',
    options: MemoryBrokerOptions = {},
  ) {
    this.maxMessageSize = options.maxMessageSize ?? 134_217_728;
    this.rabbitmqVersion = options.rabbitmqVersion ?? '4.0';
    this.declareDefaults();
  }

  /** The broker that `memory://<name>` reaches, created on first use (`options` apply only then). */
  static named(name = 'default', options?: MemoryBrokerOptions): MemoryBroker {
    let broker = brokers.get(name);
    if (broker === undefined) {
      broker = new MemoryBroker(name, options);
      brokers.set(name, broker);
    }
    return broker;
  }

  /** Closes every connection and forgets every broker (between tests). */
  static resetAll(): void {
    for (const broker of brokers.values()) broker.reset();
    brokers.clear();
  }

  /** Queues by name, with their counts. */
  inspect(): QueueSnapshot[] {
    return [...this.queues.values()].map((q) => ({
      name: q.name,
      messages: q.ready.length,
      unacked: q.unacked,
      consumers: q.consumers.length,
      durable: q.settings.durable,
      type: q.settings.type,
    }));
  }

  /** One queue's snapshot, or undefined when it does not exist. */
  queue(name: string): QueueSnapshot | undefined {
    return this.inspect().find((q) => q.name === name);
  }

  /** Bodies and properties of the ready messages of a queue, without consuming them. */
  peek(queue: string): { content: Buffer; properties: MessageProperties; routingKey: string }[] {
    const q = this.queues.get(queue);
    if (q === undefined) return [];
    return [...q.ready].map((m) => ({
      content: m.content,
      properties: m.properties,
      routingKey: m.routingKey,
    }));
  }

  /** Closes every client connection with 320 CONNECTION_FORCED, as `rabbitmqctl close_all_connections`. */
  closeAllConnections(reason = 'Closed via management plugin'): void {
    const error = new AmqpException(320, `CONNECTION_FORCED - ${reason}`, 'BasicPublish');
    for (const connection of [...this.connections]) connection.forceClose(error);
  }

  /**
   * A broker restart: every connection is closed, non-durable exchanges and queues vanish and
   * durable queues keep only their persistent messages (unacked ones come back redelivered).
   */
  restart(): void {
    this.closeAllConnections("broker forced connection closure with reason 'shutdown'");
    for (const exchange of [...this.exchanges.values()]) {
      if (!exchange.durable) this.removeExchange(exchange);
    }
    for (const queue of [...this.queues.values()]) {
      if (!queue.settings.durable) {
        this.removeQueue(queue);
        continue;
      }
      const kept = queue.ready.drain().filter((m) => m.properties.deliveryMode === 2);
      queue.readyBytes = 0;
      for (const m of kept) {
        queue.ready.push(m);
        queue.readyBytes += m.content.length;
      }
    }
    this.alarm = undefined;
  }

  /** Raises or clears a resource alarm: publishing connections are blocked until it clears. */
  setAlarm(reason: string | undefined): void {
    const was = this.alarm;
    this.alarm = reason;
    if (was === reason) return;
    for (const connection of this.connections) {
      if (reason !== undefined) connection.block(reason);
      else connection.unblock();
    }
  }

  /** Closes every connection and deletes everything but the predeclared exchanges. */
  reset(): void {
    for (const connection of [...this.connections])
      connection.forceClose(new AmqpException(320, 'CONNECTION_FORCED - broker reset', 'BasicPublish'));
    for (const queue of [...this.queues.values()]) this.removeQueue(queue);
    this.exchanges.clear();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.alarm = undefined;
    this.unreachable = false;
    this.declareDefaults();
  }

  /** Adds an observer of publishes, settlements and dead letters; returns its removal. */
  observe(observer: BrokerObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /**
   * Resolves once the broker has nothing left to do: every routed message delivered as far as
   * prefetch allows, every confirm, return and reply handed over. Handlers that are still
   * running may publish or settle later; a test waits for those through their own outcome.
   */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!this.scheduled && this.dirtyChannels.size === 0 && this.dirtyQueues.size === 0) resolve();
        else setImmediate(check);
      };
      setImmediate(check);
    });
  }

  /** @internal */
  connectionId(): number {
    return this.nextConnectionId++;
  }

  /** @internal Called when a connection opens or closes: timers keep the process alive only while clients are connected. */
  refTimers(): void {
    const ref = this.connections.size > 0;
    for (const timer of this.timers) {
      if (ref) timer.ref();
      else timer.unref();
    }
  }

  /** @internal */
  timer(callback: () => void, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      callback();
    }, ms);
    if (this.connections.size === 0) timer.unref();
    this.timers.add(timer);
    return timer;
  }

  /** @internal Queues a pump of this queue on the next broker turn. */
  schedule(queue: MemoryQueue): void {
    this.dirtyQueues.add(queue);
    this.wake();
  }

  /** @internal Queues a channel's confirms and returns on the next broker turn. */
  scheduleChannel(channel: { flushOutbox(): void }): void {
    this.dirtyChannels.add(channel);
    this.wake();
  }

  /** @internal A new server-named queue name. */
  generatedName(): string {
    return `amq.gen-${randomBytes(16).toString('base64url').slice(0, 22)}`;
  }

  /**
   * @internal Routes a message from an exchange, following exchange-to-exchange bindings and
   * alternate exchanges; each queue appears once.
   */
  route(
    exchange: MemoryExchange,
    routingKey: string,
    headers: Record<string, unknown> | undefined,
  ): readonly MemoryQueue[] {
    if (exchange.name === '') {
      const queue = this.queues.get(routingKey);
      return queue === undefined ? [] : [queue];
    }
    const bindings = exchange.route(routingKey, headers);
    if (bindings.length === 1) {
      // The common case (one binding to one queue): no array per message.
      const only = bindings[0] as Binding;
      if (only.destination instanceof MemoryQueue) return (only.alone ??= [only.destination]);
    }
    const out: MemoryQueue[] = [];
    this.collect(exchange, routingKey, headers, out, undefined, bindings);
    return out;
  }

  /**
   * @internal Dead-letters a message that left a queue, as RabbitMQ does (x-death, first-death
   * headers; on 4.0 also last-death headers, from the broker's own history only).
   */
  deadLetter(queue: MemoryQueue, message: Stored, reason: DeathReason): void {
    const dlxName = queue.settings.deadLetterExchange;
    if (this.observers.size > 0) {
      const event: ObservedDeath = {
        ...observed(message),
        queue: queue.name,
        reason,
        deadLetterExchange: dlxName,
      };
      for (const observer of this.observers) observer.deadLettered?.(event);
    }
    if (dlxName === undefined) return;
    const dlx = this.exchanges.get(dlxName);
    if (dlx === undefined) return;
    const headers: Record<string, unknown> = { ...(message.properties.headers ?? {}) };
    const own = this.rabbitmqVersion !== '3.10';
    // 3.10 continues the x-death header, whoever wrote it; since 3.13 the broker keeps its own
    // history with the message and a client's x-death is not part of it.
    const previous = own ? message.deaths?.entries : headers['x-death'];
    const deaths = Array.isArray(previous) ? [...(previous as Record<string, unknown>[])] : [];
    const entry = deathEntry(deaths, queue.name, reason, message);
    deaths.unshift(entry);
    headers['x-death'] = deaths;
    let history: DeathHistory | undefined;
    if (own) {
      history = {
        entries: deaths,
        first: message.deaths?.first ?? { reason, queue: queue.name, exchange: message.exchange },
      };
      headers['x-first-death-reason'] = history.first.reason;
      headers['x-first-death-queue'] = history.first.queue;
      headers['x-first-death-exchange'] = history.first.exchange;
      headers['x-last-death-reason'] = reason;
      headers['x-last-death-queue'] = queue.name;
      headers['x-last-death-exchange'] = message.exchange;
    } else if (headers['x-first-death-reason'] === undefined) {
      headers['x-first-death-reason'] = reason;
      headers['x-first-death-queue'] = queue.name;
      headers['x-first-death-exchange'] = message.exchange;
    }
    const { expiration: _dropped, ...rest } = message.properties;
    const properties: MessageProperties = { ...rest, headers };
    const routingKey = queue.settings.deadLetterRoutingKey ?? message.routingKey;
    const now_ms = Date.now();
    // A cycle with no rejection in it would loop forever: RabbitMQ drops the message instead.
    const rejectedOnce = deaths.some((d) => d['reason'] === 'rejected');
    for (const target of this.route(dlx, routingKey, headers)) {
      if (!rejectedOnce && deaths.some((d) => d['queue'] === target.name)) continue;
      target.enqueue(
        {
          seq: 0,
          exchange: dlxName,
          routingKey,
          content: message.content,
          properties,
          expiresAt: Infinity,
          returns: 0,
          redelivered: false,
          deaths: history,
        },
        now_ms,
      );
    }
  }

  /** @internal Deletes a queue: consumers cancelled, bindings removed, messages dropped. */
  removeQueue(queue: MemoryQueue): number {
    if (this.queues.get(queue.name) !== queue) return 0;
    this.queues.delete(queue.name);
    const dropped = queue.destroy().length;
    for (const exchange of [...this.exchanges.values()]) {
      if (exchange.unbindAll(queue)) this.removeExchange(exchange);
    }
    return dropped;
  }

  /** @internal Deletes an exchange and the bindings to and from it. */
  removeExchange(exchange: MemoryExchange): void {
    if (this.exchanges.get(exchange.name) !== exchange) return;
    this.exchanges.delete(exchange.name);
    for (const other of [...this.exchanges.values()]) {
      if (other.unbindAll(exchange)) this.removeExchange(other);
    }
  }

  /** @internal Creates a queue. */
  createQueue(name: string, settings: QueueSettings): MemoryQueue {
    const queue = new MemoryQueue(name, settings, this);
    this.queues.set(name, queue);
    return queue;
  }

  private collect(
    exchange: MemoryExchange,
    routingKey: string,
    headers: Record<string, unknown> | undefined,
    out: MemoryQueue[],
    seen: Set<MemoryExchange> | undefined,
    bindings: readonly Binding[] = exchange.route(routingKey, headers),
  ): void {
    const before = out.length;
    for (let i = 0; i < bindings.length; i++) {
      const destination = (bindings[i] as (typeof bindings)[number]).destination;
      if (destination instanceof MemoryQueue) {
        if (!out.includes(destination)) out.push(destination);
      } else {
        const visited = seen ?? new Set([exchange]);
        if (visited.has(destination)) continue;
        visited.add(destination);
        this.collect(destination, routingKey, headers, out, visited);
      }
    }
    const alternate = exchange.alternate;
    if (out.length === before && alternate !== undefined) {
      const target = this.exchanges.get(alternate);
      const visited = seen ?? new Set([exchange]);
      if (target !== undefined && !visited.has(target)) {
        visited.add(target);
        this.collect(target, routingKey, headers, out, visited);
      }
    }
  }

  private wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** One broker turn: confirms and returns first (in publish order), then deliveries. */
  private readonly flush = (): void => {
    this.scheduled = false;
    for (let round = 0; round < 64 && (this.dirtyChannels.size > 0 || this.dirtyQueues.size > 0); round++) {
      if (this.dirtyChannels.size > 0) {
        const channels = [...this.dirtyChannels];
        this.dirtyChannels.clear();
        for (const channel of channels) channel.flushOutbox();
      }
      if (this.dirtyQueues.size > 0) {
        const queues = [...this.dirtyQueues];
        this.dirtyQueues.clear();
        const now = Date.now();
        for (const queue of queues) queue.pump(now);
      }
    }
    if (this.dirtyChannels.size > 0 || this.dirtyQueues.size > 0) this.wake();
  };

  private declareDefaults(): void {
    const add = (name: string, type: 'direct' | 'fanout' | 'topic' | 'headers'): void => {
      this.exchanges.set(name, new MemoryExchange(name, type, true, false, false, {}));
    };
    add('', 'direct');
    add('amq.direct', 'direct');
    add('amq.fanout', 'fanout');
    add('amq.topic', 'topic');
    add('amq.headers', 'headers');
    add('amq.match', 'headers');
  }
}

/**
 * The x-death entry of this death: the entry of the same queue and reason taken out of `deaths`
 * with its count raised, or a new one.
 */
function deathEntry(
  deaths: Record<string, unknown>[],
  queue: string,
  reason: DeathReason,
  message: Stored,
): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const at = deaths.findIndex((d) => d['queue'] === queue && d['reason'] === reason);
  if (at >= 0) {
    const previous = deaths.splice(at, 1)[0] as Record<string, unknown>;
    return { ...previous, count: Number(previous['count'] ?? 0) + 1, time: now };
  }
  const entry: Record<string, unknown> = {
    count: 1,
    reason,
    queue,
    time: now,
    exchange: message.exchange,
    'routing-keys': [message.routingKey],
  };
  if (message.properties.expiration !== undefined)
    entry['original-expiration'] = message.properties.expiration;
  return entry;
}
