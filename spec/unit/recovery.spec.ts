/**
 * Recovery on the in-process broker (no RabbitMQ, deterministic): status events, re-declared
 * queues and runtime bindings, re-consumed consumers except cancelled ones, the outage buffer
 * and its policies. spec/faults runs the same story against real RabbitMQ nodes.
 */
import {
  Connection,
  ErrorCode,
  GenericConsumer,
  GenericProducer,
  MemoryBroker,
  type ConnectionStatus,
  type ExchangeDefinition,
} from '../../lib';
import { Publisher } from '../../lib/connection/publisher';
import type { TransportMessage } from '../../lib/transport/types';

let n = 0;
const brokerName = (): string => `recovery-${process.pid}-${++n}`;
const ex: ExchangeDefinition = {
  name: 'rx',
  exchange_type: 'direct',
  passive: false,
  durable: true,
  auto_delete: false,
};

class P extends GenericProducer<{ a: number; b: number }> {
  static override eks = [[ex, 'a']] as const;
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!predicate()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('recovery (in-process broker)', () => {
  afterAll(() => MemoryBroker.resetAll());

  test('recovery - a lost connection reconnects: disconnected, reconnecting, connected {recovered: true}', async () => {
    const name = brokerName();
    const connection = new Connection({ url: `memory://${name}` });
    const statuses: ConnectionStatus[] = [];
    connection.on('status', (s) => statuses.push(s));
    await connection.open();
    MemoryBroker.named(name).closeAllConnections();
    await until(() => connection.isOpen);
    expect(statuses.map((s) => s.type)).toEqual(['connected', 'disconnected', 'reconnecting', 'connected']);
    expect(statuses[3]).toMatchObject({ type: 'connected', recovered: true });
    expect(statuses[2]).toMatchObject({ type: 'reconnecting', attempt: 1 });
    await connection.close();
  });

  test('recovery - gives up after reconnect.maxAttempts with status failed and RECONNECT_FAILED', async () => {
    const name = brokerName();
    const connection = new Connection({
      url: `memory://${name}`,
      connectTimeout: 200,
      reconnect: { maxAttempts: 2, initialDelay: 5, maxDelay: 10 },
    });
    const statuses: string[] = [];
    connection.on('status', (s) => statuses.push(s.type));
    connection.on('error', () => undefined);
    await connection.open();
    const broker = MemoryBroker.named(name);
    broker.unreachable = true;
    broker.closeAllConnections();
    await until(() => statuses.includes('failed'));
    await expect(connection.open()).rejects.toMatchObject({ code: ErrorCode.CONNECTION_FAILED });
    expect(statuses).toEqual(['connected', 'disconnected', 'reconnecting', 'reconnecting', 'failed']);
    await connection.close();
  });

  test('recovery - a consumer re-declares queues and runtime bindings and consumes again, except cancelled queues', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const url = `memory://${name}`;
    const consumer = new GenericConsumer({ url, eqk: [[ex, [['q1', 'a']]]] });
    const got: string[] = [];
    const events: string[] = [];
    consumer.on('interrupted', () => events.push('interrupted'));
    consumer.on('recovered', () => events.push('recovered'));
    consumer.on('lost', (e) => events.push(`lost ${e.code}`));
    await consumer.startConsuming((message: TransportMessage | null, queue) => {
      if (message === null) return;
      got.push(`${queue}:${message.content.toString()}`);
      consumer.ack(message);
    });
    await consumer.queueBind(ex, 'q2', 'b');
    await consumer.queueBind(ex, 'q3', 'a');
    await consumer.queueUnbind(ex, 'q3', 'a');
    await consumer.cancel('q1');
    // A restart drops non-durable queues and their bindings: recovery must make them again.
    broker.restart();
    await until(() => events.includes('recovered')).catch(() => {
      throw new Error(`not recovered: ${events.join(', ')}`);
    });
    expect(broker.queue('q2')).toMatchObject({ consumers: 1 });
    expect(broker.queue('q1')).toMatchObject({ consumers: 0 });
    const producer = P.create({ url });
    await producer.message_a(1);
    await producer.message_b(2, { _key: 'b' });
    await until(() => got.length >= 1);
    await broker.idle();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^q2:/);
    expect(broker.queue('q1')?.messages).toBe(1);
    expect(broker.queue('q3')?.messages ?? 0).toBe(0);
    expect(events).toEqual(['interrupted', 'recovered']);
    await producer.close();
    await consumer.close();
  });

  test('recovery - publishes during an outage wait in the buffer and are confirmed after the reconnection', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const url = `memory://${name}`;
    const consumer = new GenericConsumer({
      url,
      eqk: [[{ ...ex }, [[{ name: 'bq', flags: { durable: true } }, 'a']]]],
    });
    await consumer.startConsuming(() => undefined);
    const producer = P.create({ url, reconnect: { initialDelay: 200, maxDelay: 200 } });
    await producer.message_a(0);
    // The broker stays away while they are published: a client that only reconnects on demand
    // (postage before recovery) fails them; the buffer holds them until the reconnection.
    broker.unreachable = true;
    broker.closeAllConnections();
    let settled = 0;
    const during = Array.from({ length: 10 }, (_, i) => producer.message_a(i + 1).finally(() => settled++));
    await new Promise((r) => setTimeout(r, 500));
    expect(settled).toBe(0);
    broker.unreachable = false;
    await expect(Promise.all(during)).resolves.toHaveLength(10);
    await broker.idle();
    // The recovered consumer may already hold some of them (unacked): count both.
    const bq = broker.queue('bq');
    expect((bq?.messages ?? 0) + (bq?.unacked ?? 0)).toBe(11);
    await producer.close();
    await consumer.close();
  });

  test('recovery - fail-fast rejects with DISCONNECTED while reconnecting; a full buffer with BUFFER_FULL', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const url = `memory://${name}`;
    const consumer = new GenericConsumer({ url, eqk: [[ex, [['fq', 'a']]]] });
    await consumer.startConsuming(() => undefined);
    const fast = P.create({
      url,
      publishBuffer: { policy: 'fail-fast' },
      reconnect: { initialDelay: 500, maxDelay: 500 },
    });
    const small = P.create({
      url,
      publishBuffer: { maxMessages: 2 },
      reconnect: { initialDelay: 500, maxDelay: 500 },
    });
    await fast.message_a(0);
    await small.message_a(0);
    broker.closeAllConnections();
    await expect(fast.message_a(1)).rejects.toMatchObject({ code: ErrorCode.DISCONNECTED });
    const buffered = [small.message_a(1), small.message_a(2)];
    await expect(small.message_a(3)).rejects.toMatchObject({ code: ErrorCode.BUFFER_FULL });
    await expect(Promise.all(buffered)).resolves.toHaveLength(2);
    await fast.close();
    await small.close();
    await consumer.close();
  });

  test('recovery - a publish held by a broker alarm rejects with CONFIRM_TIMEOUT after confirmTimeout', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const url = `memory://${name}`;
    const consumer = new GenericConsumer({ url, eqk: [[ex, [['tq', 'a']]]] });
    await consumer.startConsuming(() => undefined);
    const producer = P.create({ url, confirmTimeout: 200 });
    await producer.message_a(0);
    broker.setAlarm('memory');
    await expect(producer.message_a(1)).rejects.toMatchObject({ code: ErrorCode.CONFIRM_TIMEOUT });
    broker.setAlarm(undefined);
    await expect(producer.message_a(2)).resolves.toBeUndefined();
    await producer.close();
    await consumer.close();
  });

  test('recovery - close() waits closeTimeout for a broker that stays down, then rejects what is buffered with CLOSED', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const url = `memory://${name}`;
    const producer = P.create({ url, closeTimeout: 200 });
    await producer.message_a(0).catch(() => undefined);
    broker.unreachable = true;
    broker.closeAllConnections();
    const pending = producer.message_a(1);
    await producer.close();
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  test('recovery - a publish buffered when close() is called goes out if the broker comes back within closeTimeout', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const url = `memory://${name}`;
    const consumer = new GenericConsumer({ url, eqk: [[ex, [['closing-q', 'a']]]] });
    const got: number[] = [];
    await consumer.startConsuming((m) => {
      if (m === null) return;
      got.push((JSON.parse(m.content.toString()) as { content: { parameters: number } }).content.parameters);
      consumer.ack(m);
    });
    const producer = P.create({ url, reconnect: { initialDelay: 20, maxDelay: 20 } });
    await producer.message_a(0);
    broker.unreachable = true;
    broker.closeAllConnections();
    const pending = producer.message_a(1);
    const closing = producer.close();
    await expect(producer.message_a(2)).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    broker.unreachable = false;
    await closing;
    await expect(pending).resolves.toBeUndefined();
    await until(() => got.includes(1));
    await consumer.close();
    expect(got.filter((n) => n === 2)).toEqual([]);
  });

  test('recovery - after a NACKED publish the next publishes go on a new channel; the nacked one closes', async () => {
    const name = brokerName();
    const connection = new Connection({ url: `memory://${name}` });
    const setup = await connection.createChannel(true);
    await setup.assertQueue('full', { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    await setup.assertQueue('open', {});
    const publisher = new Publisher(connection);
    await publisher.publish('', 'full', Buffer.from('a'), {});
    const first = publisher.current;
    const closed: string[] = [];
    first?.on('close', () => closed.push('first'));
    await expect(publisher.publish('', 'full', Buffer.from('b'), {})).rejects.toMatchObject({
      code: ErrorCode.NACKED,
    });
    await expect(publisher.publish('', 'open', Buffer.from('c'), {})).resolves.toBeUndefined();
    expect(publisher.current).toBeDefined();
    expect(publisher.current).not.toBe(first);
    await until(() => closed.length === 1);
    expect(MemoryBroker.named(name).queue('open')?.messages).toBe(1);
    await publisher.close();
    await connection.close();
  });

  test('recovery - a consumer closed while its broker is unreachable closes at once', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const consumer = new GenericConsumer({ url: `memory://${name}`, eqk: [[ex, [['cq', 'a']]]] });
    const events: string[] = [];
    consumer.on('interrupted', () => events.push('interrupted'));
    await consumer.startConsuming(() => undefined);
    broker.unreachable = true;
    broker.closeAllConnections();
    await until(() => events.includes('interrupted'));
    await expect(consumer.close()).resolves.toBeUndefined();
    expect(consumer.connection.isClosed).toBe(true);
  });
});

/**
 * The reconnect schedule with the defaults (100 ms doubling to 5 s, +-20 %), observed through
 * the `reconnecting` statuses while the broker stays unreachable. Math.random is replaced so the
 * jitter is known, and the clock is jest's fake one: each sleep is checked to last `delayMs`.
 */
describe('recovery - reconnect backoff (fake timers, fixed random)', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  async function schedule(
    randoms: number[],
    reconnect: { maxAttempts: number } & Record<string, number>,
  ): Promise<{ delays: number[]; statuses: string[] }> {
    let i = 0;
    jest.spyOn(Math, 'random').mockImplementation(() => randoms[i++ % randoms.length] as number);
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const name = brokerName();
    const connection = new Connection({ url: `memory://${name}`, connectTimeout: 1000, reconnect });
    const statuses: ConnectionStatus[] = [];
    connection.on('status', (s) => statuses.push(s));
    connection.on('error', () => undefined);
    await connection.open();
    const broker = MemoryBroker.named(name);
    broker.unreachable = true;
    broker.closeAllConnections();
    await jest.advanceTimersByTimeAsync(0);
    for (;;) {
      const last = statuses[statuses.length - 1];
      if (last?.type !== 'reconnecting') break;
      const seen = statuses.length;
      // One ms short of the delay, the attempt has not been made: no new status.
      await jest.advanceTimersByTimeAsync(last.delayMs - 1);
      expect(statuses).toHaveLength(seen);
      await jest.advanceTimersByTimeAsync(1);
      expect(statuses.length).toBeGreaterThan(seen);
    }
    broker.unreachable = false;
    await connection.close();
    return {
      delays: statuses.flatMap((s) => (s.type === 'reconnecting' ? [s.delayMs] : [])),
      statuses: statuses.map((s) => s.type),
    };
  }

  test('recovery - backoff doubles from 100 ms and stays at 5 s (no jitter when random is 0.5)', async () => {
    const { delays, statuses } = await schedule([0.5], { maxAttempts: 9 });
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    expect(statuses.slice(0, 2)).toEqual(['connected', 'disconnected']);
    expect(statuses.slice(-3)).toEqual(['reconnecting', 'failed', 'closed']);
  });

  test('recovery - backoff jitter is -20 % at random 0 and +20 % at random ~1', async () => {
    const low = await schedule([0], { maxAttempts: 7 });
    expect(low.delays).toEqual([80, 160, 320, 640, 1280, 2560, 4000]);
    const high = await schedule([0.999_999], { maxAttempts: 7 });
    expect(high.delays).toEqual([120, 240, 480, 960, 1920, 3840, 6000]);
  });

  test('recovery - backoff jitter stays within +-20 % of the base for any random', async () => {
    const randoms = [0.13, 0.87, 0.42, 0.01, 0.99, 0.5, 0.66, 0.25];
    const { delays } = await schedule(randoms, { maxAttempts: 8 });
    const base = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
    expect(delays).toEqual(base.map((b, k) => Math.round(b * (1 + 0.2 * (2 * (randoms[k] as number) - 1)))));
  });

  test('recovery - maxAttempts bounds the attempts: exactly that many reconnecting, then failed', async () => {
    for (const maxAttempts of [1, 3]) {
      const { statuses } = await schedule([0.5], { maxAttempts });
      expect(statuses).toEqual([
        'connected',
        'disconnected',
        ...Array<string>(maxAttempts).fill('reconnecting'),
        'failed',
        'closed',
      ]);
    }
  });

  test('recovery - custom initialDelay, maxDelay and jitter shape the schedule', async () => {
    const { delays } = await schedule([1 - 1e-9], {
      maxAttempts: 5,
      initialDelay: 50,
      maxDelay: 300,
      jitter: 0.5,
    });
    expect(delays).toEqual([75, 150, 300, 450, 450]);
  });
});
