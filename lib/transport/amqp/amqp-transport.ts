import { connect } from 'amqplib';

import { describeEndpoint, type Endpoint } from '../../connection/config';
import { ConnectionError, ErrorCode } from '../../errors';
import type {
  ConfirmCallback,
  PublishOptions,
  Transport,
  TransportChannel,
  TransportConnectOptions,
  TransportConnection,
} from '../types';
import { FRAME_OVERHEAD, encodePublish } from './publish-frames';

const PRODUCT = 'postage (TypeScript)';

/**
 * The amqplib transport for amqp:// and amqps://. amqplib's ChannelModel and channels already
 * have the shape of {@link TransportConnection} and {@link TransportChannel}: no wrapper sits on
 * the hot path. Their `publish` is replaced by one that encodes the frames itself (see
 * {@link installFastPublish}).
 */
export const amqpTransport: Transport = {
  name: 'amqp',

  async connect(endpoint: Endpoint, options: TransportConnectOptions): Promise<TransportConnection> {
    if (endpoint.protocol === 'memory') {
      throw new Error('the amqp transport cannot open memory:// endpoints');
    }
    const model = await connect(
      {
        protocol: endpoint.protocol,
        hostname: endpoint.host,
        port: endpoint.port,
        username: endpoint.user,
        password: endpoint.password,
        vhost: endpoint.vhost,
        heartbeat: options.heartbeat,
      },
      {
        // Without noDelay every RPC waits ~40 ms for Nagle + delayed ACK (reference/perf.md).
        noDelay: true,
        // amqplib applies it to the TCP connect and the AMQP handshake, then clears it.
        timeout: options.connectTimeout,
        clientProperties: { connection_name: options.connectionName, product: PRODUCT },
      },
    ).catch((err: unknown) => {
      throw refusal(err, endpoint) ?? err;
    });
    // An 'error' on amqplib's model with no listener would crash the process; the owner
    // (Connection) attaches its own listeners right after, this one only guarantees safety.
    model.on('error', noop);
    // amqplib's types use `any` for properties and events; the runtime shapes match ours.
    const connection = model as unknown as TransportConnection;
    batchSocketWrites(model);
    const openPlain = connection.createChannel.bind(connection);
    const openConfirm = connection.createConfirmChannel.bind(connection);
    connection.createChannel = async () => installFastPublish(await openPlain(), false);
    connection.createConfirmChannel = async () => installFastPublish(await openConfirm(), true);
    return connection;
  },
};

/**
 * The broker's refusal of a handshake as a typed error, or undefined for any other failure.
 * amqplib reports a refused login as "Handshake terminated by server: 403 (ACCESS-REFUSED) ..."
 * and a refused virtual host (RabbitMQ answers connection.open with connection.close 530) as
 * "Expected ConnectionOpenOk; got <ConnectionClose channel:0>", without the broker's text.
 * @internal
 */
export function refusal(err: unknown, endpoint: Endpoint): ConnectionError | undefined {
  if (!(err instanceof Error)) return undefined;
  const where = describeEndpoint(endpoint);
  const terminated = /^Handshake terminated by server: (\d+) \([^)]*\) with message "(.*)"$/s.exec(
    err.message,
  );
  if (terminated?.[1] === '403') {
    return new ConnectionError(
      ErrorCode.ACCESS_REFUSED,
      `connect to ${where}: the broker refused the login of user '${endpoint.user}' ` +
        `(wrong user name or password?): ${terminated[2] ?? ''}`,
      { cause: err },
    );
  }
  if (terminated?.[1] === '530' || /^Expected ConnectionOpenOk; got <ConnectionClose/.test(err.message)) {
    return new ConnectionError(
      ErrorCode.NOT_ALLOWED,
      `connect to ${where}: the broker refused to open virtual host '${endpoint.vhost}' for user ` +
        `'${endpoint.user}' (it does not exist, the user has no permission on it, or a connection ` +
        'limit is reached)',
      { cause: err },
    );
  }
  return undefined;
}

/** The part of amqplib 2's connection that writes frames to the socket (not in its public types). */
interface AmqplibMuxer {
  _readIncoming?: unknown;
  out?: { cork?: unknown; uncork?: unknown };
}

/**
 * Makes amqplib write what its channels queued in one turn with one system call. amqplib's
 * muxer moves each queued chunk (a publish, an ack) to the socket with its own `write`, and
 * the socket, idle at that moment, makes each one a system call of its own: 1,000 publishes
 * were 1,000 writes (~6 us of CPU each here). Corking the socket while the muxer runs hands
 * them to the kernel together (one `writev` per 16 KiB, the socket's high-water mark), in the
 * same order and in the same turn. Left as it is when amqplib's internals differ.
 * @internal
 */
export function batchSocketWrites(model: unknown): boolean {
  const muxer = (model as { connection?: { muxer?: AmqplibMuxer } }).connection?.muxer;
  const flush = muxer?._readIncoming;
  const out = muxer?.out;
  if (
    muxer === undefined ||
    typeof flush !== 'function' ||
    typeof out?.cork !== 'function' ||
    typeof out.uncork !== 'function'
  ) {
    return false;
  }
  const socket = out as { cork(): void; uncork(): void };
  muxer._readIncoming = function (this: unknown): void {
    socket.cork();
    try {
      flush.call(this);
    } finally {
      socket.uncork();
    }
  };
  return true;
}

/** Marks a channel whose publish is the fast one (for specs). @internal */
export const FAST_PUBLISH = Symbol('postage.fastPublish');

/** The parts of an amqplib 2 channel the fast publish uses (not in its public types). */
interface AmqplibChannel {
  ch?: unknown;
  sendMessage?: unknown;
  pushConfirmCallback?: (callback: ConfirmCallback | undefined) => void;
  connection?: {
    channels?: unknown;
    frameMax?: unknown;
    sentSinceLastCheck?: boolean;
  };
}

type ChannelSlot = { buffer: { write(chunk: Buffer): boolean } } | null | undefined;
type Publish = TransportChannel['publish'];

/**
 * Replaces the channel's `publish` with one that encodes the whole publish into one pooled
 * buffer ({@link encodePublish}) and writes it where amqplib would, then registers the confirm
 * callback as amqplib's ConfirmChannel does. What the encoder does not cover, and a channel
 * that is closing or closed, go through amqplib's own `publish` (which raises its own errors).
 * When the amqplib in use lacks any of the internals this relies on, the channel is left as it
 * is: slower, never wrong (spec/broker/fast-publish.spec.ts fails if that happens).
 * @internal
 */
export function installFastPublish(channel: TransportChannel, confirm: boolean): TransportChannel {
  const internals = channel as unknown as AmqplibChannel;
  const open = internals.sendMessage;
  const connection = internals.connection;
  if (
    typeof internals.ch !== 'number' ||
    typeof open !== 'function' ||
    Object.hasOwn(internals, 'sendMessage') ||
    connection === undefined ||
    !Array.isArray(connection.channels) ||
    typeof connection.frameMax !== 'number' ||
    typeof connection.sentSinceLastCheck !== 'boolean' ||
    typeof (connection.channels[internals.ch] as ChannelSlot)?.buffer?.write !== 'function' ||
    (confirm && typeof internals.pushConfirmCallback !== 'function')
  ) {
    return channel;
  }
  const number = internals.ch;
  const slots = connection.channels as ChannelSlot[];
  const maxBody = connection.frameMax - FRAME_OVERHEAD;
  const amqplibPublish = channel.publish;
  const publish: Publish = function (
    this: TransportChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: PublishOptions,
    callback?: ConfirmCallback,
  ): boolean {
    // amqplib swaps in a throwing sendMessage when the channel starts closing.
    const slot = internals.sendMessage === open ? slots[number] : undefined;
    const frames =
      slot == null ? undefined : encodePublish(number, exchange, routingKey, content, options, maxBody);
    if (slot == null || frames === undefined) {
      return amqplibPublish.call(this, exchange, routingKey, content, options, callback);
    }
    const writable = slot.buffer.write(frames);
    connection.sentSinceLastCheck = true;
    if (confirm) internals.pushConfirmCallback?.(callback);
    return writable;
  };
  Object.defineProperty(channel, 'publish', { value: publish, writable: true, configurable: true });
  Object.defineProperty(channel, FAST_PUBLISH, { value: true });
  return channel;
}

function noop(): void {}
