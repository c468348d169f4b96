/**
 * Publishing with confirms. Every publish returns a promise that settles exactly once: on the
 * broker's ack, or with a typed error (nacked, unroutable, channel closed). Confirms are
 * pipelined: publishes go out back to back and each promise settles when its own confirm comes.
 */
import type { Connection } from './connection';
import { ChannelError, ErrorCode, PostageError, PublishError, toPostageError } from './errors';
import type { PublishOptions, TransportChannel, TransportMessage } from './transport/types';

interface Pending {
  readonly channel: TransportChannel;
  readonly resolve: () => void;
  readonly reject: (error: PostageError) => void;
  readonly exchange: string;
  readonly routingKey: string;
  returned: TransportMessage | undefined;
}

/**
 * Owns one confirm channel on a {@link Connection} and publishes on it.
 * @internal
 */
export class Publisher {
  private channel: TransportChannel | undefined;
  private opening: Promise<TransportChannel> | undefined;
  /** Mandatory publishes awaiting their confirm, by message id, to match basic.return. */
  private readonly returnable = new Map<string, Pending | Pending[]>();
  /** Set while the channel's write buffer is full; publishes wait for 'drain'. */
  private draining: Promise<void> | undefined;
  private closed = false;
  /**
   * Why a channel closed (e.g. 404 no exchange), for its unconfirmed publishes' errors. Set on
   * 'error', which amqplib emits before it fails the confirm callbacks.
   */
  private readonly closeReasons = new WeakMap<TransportChannel, PostageError>();

  constructor(private readonly connection: Connection) {}

  /** The open channel, if any (a synchronous fast path). */
  get current(): TransportChannel | undefined {
    return this.channel;
  }

  /** Returns the open confirm channel, opening one if needed. */
  getChannel(): Promise<TransportChannel> {
    if (this.closed) return Promise.reject(new PostageError(ErrorCode.CLOSED, 'the producer is closed'));
    if (this.channel !== undefined) return Promise.resolve(this.channel);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /**
   * Publishes on the current channel (opening it if needed).
   * @returns a promise settled by the broker's confirm
   */
  publish(exchange: string, routingKey: string, content: Buffer, options: PublishOptions): Promise<void> {
    const channel = this.channel;
    if (channel === undefined || this.draining !== undefined) {
      const ready = channel === undefined ? this.getChannel() : (this.draining as Promise<void>);
      return ready.then(() => this.publish(exchange, routingKey, content, options));
    }
    return this.publishOn(channel, exchange, routingKey, content, options);
  }

  /** Publishes on a given channel (RPC: the channel that holds the reply consumer). */
  publishOn(
    channel: TransportChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: PublishOptions,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = { channel, resolve, reject, exchange, routingKey, returned: undefined };
      const id = options.mandatory === true ? options.messageId : undefined;
      if (id !== undefined) this.track(id, pending);
      let writable: boolean;
      try {
        writable = channel.publish(exchange, routingKey, content, options, (err: unknown) =>
          this.settle(pending, id, err),
        );
      } catch (err) {
        // amqplib throws synchronously on a closed channel or an oversized header table.
        if (id !== undefined) this.untrack(id, pending);
        reject(toPostageError(err, ErrorCode.CHANNEL_CLOSED, `publish to '${exchange}'`));
        return;
      }
      if (!writable && this.draining === undefined && channel === this.channel) {
        this.draining = new Promise<void>((done) => {
          const release = (): void => {
            channel.removeListener('drain', release);
            channel.removeListener('close', release);
            this.draining = undefined;
            done();
          };
          channel.on('drain', release);
          channel.on('close', release);
        });
      }
    });
  }

  /** Closes the channel; unconfirmed publishes reject with CHANNEL_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    const channel = this.channel ?? (await this.opening?.catch(() => undefined));
    this.channel = undefined;
    if (channel !== undefined) {
      await channel.close().catch(() => undefined);
    }
  }

  private async open(): Promise<TransportChannel> {
    const channel = await this.connection.createChannel(true);
    channel.on('error', (err: Error) => {
      const reason = toPostageError(err, ErrorCode.CHANNEL_CLOSED, 'publishing channel');
      this.closeReasons.set(channel, reason);
      // "no exchange 'x'": the exchange was deleted; declare it again on next use.
      if (reason.code === ErrorCode.NOT_FOUND) this.connection.forgetExchanges();
    });
    channel.on('return', (message: TransportMessage) => this.onReturn(message));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    if (this.closed) {
      await channel.close().catch(() => undefined);
      throw new PostageError(ErrorCode.CLOSED, 'the producer is closed');
    }
    this.channel = channel;
    return channel;
  }

  private settle(pending: Pending, id: string | undefined, err: unknown): void {
    if (id !== undefined) this.untrack(id, pending);
    if (err !== null && err !== undefined) {
      pending.reject(this.confirmError(pending, err));
    } else if (pending.returned !== undefined) {
      const { replyCode, replyText } = pending.returned.fields;
      pending.reject(
        new PublishError(
          ErrorCode.UNROUTABLE,
          `no queue is bound to exchange '${pending.exchange}' with routing key '${pending.routingKey}' ` +
            `(${replyCode ?? 312} ${replyText ?? 'NO_ROUTE'})`,
        ),
      );
    } else {
      pending.resolve();
    }
  }

  private confirmError(pending: Pending, err: unknown): PostageError {
    const text = err instanceof Error ? err.message : String(err);
    const where = `publish to exchange '${pending.exchange}' with key '${pending.routingKey}'`;
    if (/nack/i.test(text))
      return new PublishError(ErrorCode.NACKED, `${where}: the broker refused the message`);
    const reason = this.closeReasons.get(pending.channel);
    if (reason !== undefined) {
      return reason instanceof ChannelError && reason.code !== ErrorCode.CHANNEL_CLOSED
        ? new ChannelError(reason.code, `${where}: ${reason.message}`, {
            cause: reason,
            replyCode: reason.replyCode ?? 0,
          })
        : new ChannelError(ErrorCode.CHANNEL_CLOSED, `${where}: ${reason.message}`, { cause: reason });
    }
    return toPostageError(err, ErrorCode.CHANNEL_CLOSED, where);
  }

  private onReturn(message: TransportMessage): void {
    const id = message.properties.messageId;
    if (id === undefined) return;
    const entry = this.returnable.get(id);
    if (entry === undefined) return;
    const pending = Array.isArray(entry)
      ? entry.find(
          (p) =>
            p.returned === undefined &&
            p.exchange === message.fields.exchange &&
            p.routingKey === message.fields.routingKey,
        )
      : entry;
    if (pending !== undefined) pending.returned = message;
  }

  private track(id: string, pending: Pending): void {
    const entry = this.returnable.get(id);
    if (entry === undefined) this.returnable.set(id, pending);
    else if (Array.isArray(entry)) entry.push(pending);
    else this.returnable.set(id, [entry, pending]);
  }

  private untrack(id: string, pending: Pending): void {
    const entry = this.returnable.get(id);
    if (entry === pending) {
      this.returnable.delete(id);
    } else if (Array.isArray(entry)) {
      const rest = entry.filter((p) => p !== pending);
      if (rest.length === 0) this.returnable.delete(id);
      else this.returnable.set(id, rest.length === 1 ? (rest[0] as Pending) : rest);
    }
  }
}
