/**
 * The broker dies (kill -9) or restarts under load; clients recover. Counted the Jepsen way:
 * no confirmed message may be lost, every publish settles. RPC calls through a kill -9, and an
 * outage longer than confirmTimeout, are in outage.spec.ts.
 */
import { RabbitNode, testBroker } from '../../scripts/rabbit-node';
import { uid, waitFor } from '../helpers/broker';
import { JepsenCounter } from '../helpers/jepsen';
import { countingProcessor, durableExchange, numbersProducer, publishThrough } from '../helpers/stream';

const log = (line: string): void => void process.stdout.write(`[faults] ${line}\n`);

describe(`faults - broker restarts (one ${testBroker()} node, POSTAGE_TEST_BROKER)`, () => {
  let node: RabbitNode;

  beforeAll(async () => {
    await RabbitNode.ensureInstalled(log);
    node = await RabbitNode.start({ log });
  }, 120_000);

  afterAll(async () => {
    await node.stop().catch(() => undefined);
    await RabbitNode.shutdownEpmd();
  });

  async function killAndRestart(): Promise<void> {
    const t0 = Date.now();
    await node.kill();
    await node.restart();
    log(`kill -9 and restart in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  async function gracefulRestart(): Promise<void> {
    const t0 = Date.now();
    await node.stopKeepingData();
    await node.restart();
    log(`graceful restart in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  async function streamThrough(
    label: string,
    fault: () => Promise<void>,
    queueArguments: Record<string, unknown> = {},
  ): Promise<ReturnType<JepsenCounter['counts']>> {
    const counter = new JepsenCounter();
    const exchange = durableExchange(uid('fx'));
    const queue = uid('fq');
    const flags = { durable: true, arguments: queueArguments };
    const processor = await countingProcessor(counter, exchange, queue, flags, {
      url: node.url,
      prefetch: 50,
    });
    const statuses: string[] = [];
    processor.connection.on('status', (s) => statuses.push(s.type));
    const producer = numbersProducer(exchange, { url: node.url });
    let firstAfterFault = Infinity;
    const t0 = Date.now();
    // Where the time went, so a slow stage is named even when the test's own timeout ends it.
    const stage = (what: string): void =>
      log(`${label}: ${what} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    try {
      ({ firstAfterFault } = await publishThrough(producer, counter, {
        durationMs: 4000,
        faultAfterMs: 1000,
        fault,
      }));
      stage('load settled');
      // rabbitmqctl may end the fault after the load: wait for the processor to reconnect.
      await waitFor(() => statuses.includes('connected'), {
        timeoutMs: 60_000,
        intervalMs: 50,
        what: 'reconnection',
      });
      stage('processor reconnected');
      // A quorum queue on a restarted single node (RabbitMQ 3.10) may refuse publishes for a while
      // after the node is back, longer than the load lasts: then the client must still get a
      // publish through within 60 s (each probe is counted like the load).
      await waitFor(
        async () => {
          if ([...counter.confirmed].some((n) => n >= firstAfterFault)) return true;
          const n = counter.produce();
          await producer.message_n(n).then(
            () => counter.confirm(n),
            (err: unknown) => counter.fail(err),
          );
          return counter.confirmed.has(n);
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'a confirmed publish after the fault' },
      );
      stage('a publish after the fault confirmed');
      await counter.settle(60_000);
      stage('every confirmed message received');
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
    expect(statuses).toEqual(expect.arrayContaining(['disconnected', 'reconnecting', 'connected']));
    return counts;
  }

  test('faults - kill -9 and restart mid-stream, classic durable queue: no confirmed message lost', async () => {
    const counts = await streamThrough('kill -9, classic durable queue', killAndRestart);
    expect(counts.lost).toBe(0);
    // Every publish settled (publishThrough awaited them all); most were confirmed after recovery.
    expect(counts.confirmed + counts.failed).toBe(counts.produced);
    expect(counts.confirmed).toBeGreaterThan(counts.produced / 2);
  });

  test('faults - graceful broker restart mid-stream: no confirmed message lost', async () => {
    const counts = await streamThrough('graceful restart, classic durable queue', gracefulRestart);
    expect(counts.lost).toBe(0);
    expect(counts.confirmed + counts.failed).toBe(counts.produced);
    expect(counts.confirmed).toBeGreaterThan(counts.produced / 2);
  });

  // Its waits are bounded (60 s each, named when they fail): the test's own timeout leaves room
  // for all of them. Once, under CI load on RabbitMQ 4.0, it ran past 120 s (not reproduced since:
  // the stage lines say where the time goes).
  test('faults - kill -9 and restart mid-stream, quorum queue: no confirmed message lost', async () => {
    const counts = await streamThrough('kill -9, quorum queue', killAndRestart, { 'x-queue-type': 'quorum' });
    expect(counts.lost).toBe(0);
    expect(counts.confirmed + counts.failed).toBe(counts.produced);
  }, 240_000);
});
