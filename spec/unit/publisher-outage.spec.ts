/**
 * The outage buffer when the outage outlasts confirmTimeout (issue 12, point 1), on the
 * in-process broker: every buffered publish fails CONFIRM_TIMEOUT while the drain still waits
 * for a channel, so the drain finds the buffer empty when the broker comes back. The producer
 * (and the processor's dead-letter publisher, the same Publisher) must take that in its stride.
 * spec/faults/outage.spec.ts runs the same story against a RabbitMQ node killed with -9.
 */
import { Connection, ErrorCode, GenericProducer, MemoryBroker, type ExchangeDefinition } from '../../lib';
import { Publisher } from '../../lib/connection/publisher';

let n = 0;
const brokerName = (): string => `outage-${process.pid}-${++n}`;
const ex: ExchangeDefinition = {
  name: 'ox',
  exchange_type: 'direct',
  passive: false,
  durable: true,
  auto_delete: false,
};

class P extends GenericProducer<{ a: number }> {
  static override eks = [[ex, 'a']] as const;
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!predicate()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('publisher outage longer than confirmTimeout (in-process broker)', () => {
  afterAll(() => MemoryBroker.resetAll());

  test('publisher - buffered publishes fail CONFIRM_TIMEOUT, the drain survives the empty buffer, later publishes are confirmed', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const producer = P.create({
      url: `memory://${name}`,
      confirmTimeout: 300,
      reconnect: { initialDelay: 50, maxDelay: 100 },
    });
    const setup = await producer.connection.createChannel(false);
    await setup.assertExchange(ex.name, 'direct', { durable: true });
    await setup.assertQueue('oq', { durable: true });
    await setup.bindQueue('oq', ex.name, 'a');
    await producer.message_a(0);
    broker.unreachable = true;
    broker.closeAllConnections();
    await until(() => producer.connection.isRecovering);
    const buffered = Array.from({ length: 20 }, (_, i) =>
      producer.message_a(1 + i).then(
        () => 'confirmed',
        (err: { code?: string }) => err.code,
      ),
    );
    // Every buffered publish outlives its confirmTimeout while the drain waits for a channel.
    expect(new Set(await Promise.all(buffered))).toEqual(new Set([ErrorCode.CONFIRM_TIMEOUT]));
    const statuses: string[] = [];
    producer.connection.on('status', (s) => statuses.push(s.type));
    broker.unreachable = false;
    // The drain, waiting since the outage, gets its channel now (and, before the fix, read
    // buffer[0] of the empty buffer: an unhandled TypeError).
    await until(() => statuses.includes('connected'));
    await expect(producer.message_a(100)).resolves.toBeUndefined();
    await producer.close();
    const depth = MemoryBroker.named(name).queue('oq')?.messages;
    expect(depth).toBe(2);
  });

  test('publisher - the same with a publisher of its own on a shared connection (the processor dead-letter path)', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const connection = new Connection({
      url: `memory://${name}`,
      reconnect: { initialDelay: 50, maxDelay: 100 },
    });
    const setup = await connection.createChannel(false);
    await setup.assertQueue('dlq', { durable: true });
    const publisher = new Publisher(connection, { confirmTimeout: 300 });
    await publisher.publish('', 'dlq', Buffer.from('first'), {});
    broker.unreachable = true;
    broker.closeAllConnections();
    await until(() => connection.isRecovering);
    const outcome = await publisher
      .publish(ex, 'dlq', Buffer.from('buffered'), {})
      .catch((err: unknown) => err);
    expect(outcome).toMatchObject({ code: ErrorCode.CONFIRM_TIMEOUT });
    expect(publisher.pending).toEqual({ buffered: 0, bufferedBytes: 0, unconfirmed: 0 });
    broker.unreachable = false;
    // The drain, waiting since the outage, gets its channel (and, before the fix, read
    // buffer[0] of the empty buffer: an unhandled TypeError).
    await until(() => publisher.current !== undefined);
    await expect(publisher.publish('', 'dlq', Buffer.from('after'), {})).resolves.toBeUndefined();
    await publisher.close();
    await connection.close();
    expect(MemoryBroker.named(name).queue('dlq')?.messages).toBe(2);
  });
});
