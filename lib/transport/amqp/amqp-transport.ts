import { connect } from 'amqplib';

import type { Endpoint } from '../../config';
import type { Transport, TransportConnectOptions, TransportConnection } from '../types';

const PRODUCT = 'postage (TypeScript)';

/**
 * The amqplib transport for amqp:// and amqps://. amqplib's ChannelModel and channels already
 * have the shape of {@link TransportConnection} and {@link TransportChannel}: no wrapper sits on
 * the hot path.
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
    );
    // An 'error' on amqplib's model with no listener would crash the process; the owner
    // (Connection) attaches its own listeners right after, this one only guarantees safety.
    model.on('error', noop);
    // amqplib's types use `any` for properties and events; the runtime shapes match ours.
    return model as unknown as TransportConnection;
  },
};

function noop(): void {}
