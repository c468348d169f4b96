import { EventEmitter } from 'node:events';

import type { TransportChannel, TransportConnection } from '../types';
import type { MemoryBroker } from './broker';
import { MemoryChannel } from './channel';
import type { AmqpException } from './errors';

/**
 * A client connection to a {@link MemoryBroker}. Closing it requeues its unacked messages and
 * deletes its exclusive queues, as closing a RabbitMQ connection does.
 * Not exported by the package (its declaration ships: the memory transport's declarations name it).
 */
export class MemoryConnection extends EventEmitter implements TransportConnection {
  readonly id: number;
  readonly channels = new Set<MemoryChannel>();
  closed = false;
  /** Set while a resource alarm blocks publishing; publishes wait in order. */
  blocked: string | undefined;
  private readonly held: (() => void)[] = [];

  constructor(readonly broker: MemoryBroker) {
    super();
    this.id = broker.connectionId();
    broker.connections.add(this);
    broker.refTimers();
    if (broker.alarm !== undefined) this.blocked = broker.alarm;
  }

  /** EventEmitter's, typed as the transport seam declares it. */
  override removeListener(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.removeListener(event, listener as (...args: unknown[]) => void);
  }

  createChannel(): Promise<TransportChannel> {
    return this.open(false);
  }

  createConfirmChannel(): Promise<TransportChannel> {
    return this.open(true);
  }

  async close(): Promise<void> {
    if (this.closed) throw new Error('Connection closed (by client)');
    this.shutdown();
    this.emit('close');
  }

  /** The broker closes the connection: 'error' then 'close' with the error, as amqplib emits them. */
  forceClose(exception: AmqpException): void {
    if (this.closed) return;
    this.shutdown();
    const error = exception.forConnection();
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.emit('close', error);
  }

  /** Publishes wait while blocked; the first publish after the block makes the broker say so. */
  block(reason: string): void {
    if (this.blocked !== undefined) return;
    this.blocked = reason;
    this.emit('blocked', reason);
  }

  unblock(): void {
    if (this.blocked === undefined) return;
    this.blocked = undefined;
    this.emit('unblocked');
    for (const publish of this.held.splice(0)) publish();
  }

  /**
   * @internal Publishes are still held (the alarm just cleared and they have not run yet): a new
   * publish, e.g. from an 'unblocked' listener, waits behind them so that a channel's publishes
   * are routed, and confirmed, in order.
   */
  get holding(): boolean {
    return this.held.length > 0;
  }

  /** @internal Holds a publish until the alarm clears. */
  hold(publish: () => void): void {
    this.held.push(publish);
  }

  private async open(confirm: boolean): Promise<TransportChannel> {
    if (this.closed) throw new Error('Connection closed');
    const channel = new MemoryChannel(this, confirm);
    this.channels.add(channel);
    return channel;
  }

  private shutdown(): void {
    this.closed = true;
    this.held.length = 0;
    for (const channel of [...this.channels]) channel.closeByConnection();
    this.broker.connections.delete(this);
    for (const queue of [...this.broker.queues.values()]) {
      if (queue.settings.owner === this.id) this.broker.removeQueue(queue);
    }
    this.broker.refTimers();
  }
}
