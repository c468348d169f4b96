import type { Endpoint } from '../../connection/config';
import type { Transport, TransportConnectOptions, TransportConnection } from '../types';
import { MemoryBroker } from './broker';
import { MemoryConnection } from './connection';

export {
  MemoryBroker,
  type BrokerObserver,
  type MemoryBrokerOptions,
  type ObservedDeath,
  type ObservedMessage,
  type ObservedPublish,
  type ObservedSettle,
  type QueueSnapshot,
} from './broker';
export { DEFAULT_QUORUM_DELIVERY_LIMIT_4_0, type RabbitmqVersion } from './queue';

/**
 * The transport for `memory://<name>`: a connection to the in-process {@link MemoryBroker} of
 * that name (`memory://` alone is the broker named `default`).
 */
export const memoryTransport: Transport = {
  name: 'memory',

  async connect(endpoint: Endpoint, _options: TransportConnectOptions): Promise<TransportConnection> {
    const broker = MemoryBroker.named(endpoint.host);
    if (broker.unreachable) {
      throw Object.assign(new Error(`connect ECONNREFUSED memory://${endpoint.host}`), {
        code: 'ECONNREFUSED',
      });
    }
    return new MemoryConnection(broker);
  },
};
