/**
 * Network faults: the broker closes every connection, the TCP connection stalls (only the
 * heartbeat notices) or is reset, the broker is not there yet when the client starts.
 */
import { ErrorCode, GenericProducer, type ConnectionStatus } from '../../lib';
import { RabbitNode, freePort, testBroker } from '../../scripts/rabbit-node';
import { uid, waitFor } from '../helpers/broker';
import { FaultProxy } from '../helpers/fault-proxy';
import { JepsenCounter, type JepsenCounts } from '../helpers/jepsen';
import { countingProcessor, durableExchange, numbersProducer, publishThrough } from '../helpers/stream';

const log = (line: string): void => void process.stdout.write(`[faults] ${line}\n`);

describe(`faults - network (one ${testBroker()} node, POSTAGE_TEST_BROKER)`, () => {
  let node: RabbitNode;

  beforeAll(async () => {
    await RabbitNode.ensureInstalled(log);
    node = await RabbitNode.start({ log });
  }, 120_000);

  afterAll(async () => {
    await node.stop().catch(() => undefined);
    await RabbitNode.shutdownEpmd();
  });

  async function streamThrough(
    label: string,
    url: string,
    fault: () => Promise<void>,
    heartbeat?: number,
  ): Promise<{ counts: JepsenCounts; statuses: ConnectionStatus[] }> {
    const counter = new JepsenCounter();
    const exchange = durableExchange(uid('nx'));
    const options = heartbeat === undefined ? { url } : { url, heartbeat };
    const processor = await countingProcessor(
      counter,
      exchange,
      uid('nq'),
      { durable: true },
      { ...options, prefetch: 50 },
    );
    const producer = numbersProducer(exchange, options);
    const statuses: ConnectionStatus[] = [];
    producer.connection.on('status', (s) => statuses.push(s));
    let firstAfterFault = Infinity;
    try {
      ({ firstAfterFault } = await publishThrough(producer, counter, {
        durationMs: 4000,
        faultAfterMs: 1000,
        fault,
      }));
      // rabbitmqctl may end the fault after the load: wait for the reconnection.
      await waitFor(() => statuses.some((s) => s.type === 'connected' && s.recovered), {
        timeoutMs: 60_000,
        intervalMs: 50,
        what: 'reconnection',
      });
      await counter.settle(60_000);
    } finally {
      await producer.close();
      await processor.stop();
    }
    const counts = counter.report(label);
    // The load went on after the fault ended: those publishes were confirmed, the client works.
    const afterFault = [...counter.confirmed].filter((n) => n >= firstAfterFault).length;
    log(
      `${label}: ${afterFault} confirmed of ${counts.produced - firstAfterFault} published after the fault`,
    );
    expect(afterFault).toBeGreaterThan(0);
    return { counts, statuses };
  }

  test('faults - rabbitmqctl close_all_connections mid-stream: clients reconnect, no confirmed message lost', async () => {
    const { counts, statuses } = await streamThrough('close_all_connections', node.url, async () => {
      await node.ctl('close_all_connections', 'fault test');
    });
    expect(statuses.map((s) => s.type)).toEqual(expect.arrayContaining(['disconnected', 'reconnecting']));
    expect(statuses.filter((s) => s.type === 'connected' && s.recovered).length).toBeGreaterThanOrEqual(1);
    expect(counts.lost).toBe(0);
    expect(counts.confirmed + counts.failed).toBe(counts.produced);
    expect(counts.failed).toBe(0);
  });

  test('faults - a TCP stall through the fault proxy is detected by the heartbeat; no confirmed message lost', async () => {
    const proxy = await FaultProxy.start(node.port);
    try {
      const { counts, statuses } = await streamThrough(
        'TCP stall (heartbeat 1 s)',
        proxy.url,
        async () => proxy.stall(),
        1,
      );
      const lost = statuses.find((s) => s.type === 'disconnected');
      expect(lost).toBeDefined();
      expect(statuses.filter((s) => s.type === 'connected' && s.recovered).length).toBeGreaterThanOrEqual(1);
      expect(counts.lost).toBe(0);
      expect(counts.confirmed + counts.failed).toBe(counts.produced);
      expect(counts.failed).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  test('faults - a TCP reset through the fault proxy: clients reconnect, no confirmed message lost', async () => {
    const proxy = await FaultProxy.start(node.port);
    try {
      const { counts, statuses } = await streamThrough('TCP reset', proxy.url, async () => proxy.reset());
      expect(statuses.map((s) => s.type)).toContain('disconnected');
      expect(counts.lost).toBe(0);
      expect(counts.confirmed + counts.failed).toBe(counts.produced);
      expect(counts.failed).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  test('faults - broker unreachable at start: a publish waits, then is confirmed when the node comes up', async () => {
    const port = await freePort();
    const exchange = durableExchange(uid('late'));
    class P extends GenericProducer<{ x: number }> {
      static override eks = [[exchange, 'x']] as const;
    }
    const producer = P.create({ url: `amqp://guest:guest@127.0.0.1:${port}`, connectTimeout: 60_000 });
    let settled = false;
    // The outcome is taken at once (the broker may answer while the node is still starting up):
    // a rejection with no handler yet would fail the run.
    const outcome = producer.message_x(1).then(
      () => ({ ok: true as const }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    void outcome.finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1500));
    expect(settled).toBe(false);
    const late = await RabbitNode.start({ port, log });
    try {
      // Mandatory and unbound: the broker answers, so it was reached.
      expect(await outcome).toMatchObject({ ok: false, error: { code: ErrorCode.UNROUTABLE } });
    } finally {
      await producer.close();
      await late.stop();
    }
  });

  test('faults - broker unreachable at start: the first connection fails typed after connectTimeout', async () => {
    const port = await freePort();
    const exchange = durableExchange(uid('never'));
    class P extends GenericProducer<{ x: number }> {
      static override eks = [[exchange, 'x']] as const;
    }
    const producer = P.create({ url: `amqp://guest:guest@127.0.0.1:${port}`, connectTimeout: 1000 });
    await expect(producer.message_x(1)).rejects.toMatchObject({ code: ErrorCode.CONNECTION_FAILED });
    await producer.close();
  });
});
