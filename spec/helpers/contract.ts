/**
 * The contract suite runs every spec in spec/contract twice: against the RabbitMQ that `npm test`
 * starts, and against the in-process broker. Specs talk to the broker through the transport seam
 * (the same interface amqplib fills), so a difference in behaviour fails one of the two runs.
 */
import { resolveConnectionConfig } from '../../lib/connection/config';
import { amqpTransport } from '../../lib/transport/amqp/amqp-transport';
import { MemoryBroker, memoryTransport, type RabbitmqVersion } from '../../lib/transport/memory';
import type { TransportChannel, TransportConnection, TransportMessage } from '../../lib/transport/types';
import { rawConnection, testUrl } from './broker';

/** Which broker this run of the contract suite talks to. */
export const target: 'rabbitmq' | 'memory' =
  process.env['POSTAGE_CONTRACT_BROKER'] === 'memory' ? 'memory' : 'rabbitmq';

/** The release the in-process broker follows in this run (its jest project sets it). */
const memoryVersion: RabbitmqVersion = process.env['POSTAGE_CONTRACT_VERSION'] === '3.10' ? '3.10' : '4.0';
if (target === 'memory') MemoryBroker.named('contract', { rabbitmqVersion: memoryVersion });

/** The label of the broker under test in spec names, e.g. `rabbitmq` or `memory 3.10`. */
export const label = target === 'memory' ? `memory ${memoryVersion}` : 'rabbitmq';

let serverVersion: Promise<string> | undefined;

/** The version RabbitMQ reports in its server properties (e.g. `4.0.5`); for the in-process broker, its release. */
export function reportedVersion(): Promise<string> {
  if (target === 'memory') return Promise.resolve(memoryVersion);
  serverVersion ??= rawConnection().then(async (connection) => {
    const version = String(connection.connection.serverProperties['version']);
    await connection.close();
    return version;
  });
  return serverVersion;
}

/**
 * The release whose behaviour the specs expect where 3.10 and 4.0 differ: RabbitMQ's own
 * (x.y of its reported version), or the in-process broker's. A release the specs have no
 * expectations for fails the spec that asks, naming it.
 */
export async function brokerVersion(): Promise<RabbitmqVersion> {
  const reported = await reportedVersion();
  const [major, minor] = reported.split('.');
  const release = `${major}.${minor}`;
  if (release === '3.10' || release === '4.0') return release;
  throw new Error(
    `the contract specs state expectations for RabbitMQ 3.10 and 4.0; the broker is ${reported}`,
  );
}

/** `expected({ '3.10': a, '4.0': b })`: what the broker under test should do. */
export async function expected<T>(by: Record<RabbitmqVersion, T>): Promise<T> {
  return by[await brokerVersion()];
}

/** The URL for high-level components (Connection, producers, processors). */
export function contractUrl(): string {
  return target === 'memory' ? 'memory://contract' : testUrl();
}

const opened: TransportConnection[] = [];

/** A transport connection to the broker under test; closed after the spec file. */
export async function connect(): Promise<TransportConnection> {
  const endpoint = resolveConnectionConfig({ url: contractUrl() }).endpoints[0];
  if (endpoint === undefined) throw new Error('no endpoint');
  const transport = target === 'memory' ? memoryTransport : amqpTransport;
  const connection = await transport.connect(endpoint, {
    heartbeat: 0,
    connectTimeout: 10_000,
    connectionName: 'postage contract',
  });
  connection.on('error', () => undefined);
  opened.push(connection);
  return connection;
}

/** A channel (a confirm channel when asked) whose 'error' events are recorded, not thrown. */
export async function channel(
  connection?: TransportConnection,
  confirm = false,
): Promise<TransportChannel & { errors: Error[]; whenClosed: Promise<void> }> {
  const conn = connection ?? (await connect());
  const ch = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
  const errors: Error[] = [];
  ch.on('error', (err: Error) => errors.push(err));
  const whenClosed = new Promise<void>((resolve) => ch.on('close', () => resolve()));
  return Object.assign(ch, { errors, whenClosed });
}

/** Publishes on a confirm channel and waits for the confirm; resolves to null or the error. */
export function publishConfirmed(
  ch: TransportChannel,
  exchange: string,
  key: string,
  body: string,
  options: Parameters<TransportChannel['publish']>[3] = {},
): Promise<Error | null> {
  return new Promise((resolve) => {
    ch.publish(exchange, key, Buffer.from(body), options, (err) =>
      resolve(err === null || err === undefined ? null : (err as Error)),
    );
  });
}

/** Collects deliveries of a consumer; `next(n)` waits for the n-th. */
export class Collector {
  readonly messages: TransportMessage[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  readonly onMessage = (message: TransportMessage | null): void => {
    if (message === null) return;
    this.messages.push(message);
    this.waiters = this.waiters.filter((w) => {
      if (this.messages.length >= w.count) w.resolve();
      return this.messages.length < w.count;
    });
  };

  /** Waits until `count` messages arrived (fails the test after `timeoutMs`). */
  async waitFor(count: number, timeoutMs = 5000): Promise<TransportMessage[]> {
    if (this.messages.length < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`got ${this.messages.length} of ${count} messages`)),
          timeoutMs,
        );
        this.waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
    return this.messages;
  }

  bodies(): string[] {
    return this.messages.map((m) => m.content.toString());
  }
}

/** Gets up to `max` messages with basic.get (acked), waiting up to `timeoutMs` for the first. */
export async function drain(
  ch: TransportChannel,
  queue: string,
  max = 100,
  timeoutMs = 2000,
): Promise<TransportMessage[]> {
  const out: TransportMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < max) {
    const message = await ch.get(queue, { noAck: true });
    if (message === false) {
      if (out.length > 0 || Date.now() > deadline) break;
      await sleep(10);
      continue;
    }
    out.push(message);
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

afterAll(async () => {
  for (const connection of opened.splice(0)) await connection.close().catch(() => undefined);
  if (target === 'memory') MemoryBroker.resetAll();
});
