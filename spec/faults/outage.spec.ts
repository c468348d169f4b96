/**
 * Outages that outlast the clients' timeouts (issue 12, points 1 and 6), counted the Jepsen
 * way against a RabbitMQ node killed with -9:
 * - publishing at ~1,000/s through a 12 s outage with confirmTimeout 8 s: the producer
 *   survives, what was buffered fails CONFIRM_TIMEOUT, what is published after the recovery is
 *   confirmed, no confirmed message is lost;
 * - RPC calls through a kill -9 with a processor serving them from a non-durable queue (gone
 *   after the restart until the processor declares it again): no call fails UNROUTABLE.
 */
import {
  ErrorCode,
  GenericProducer,
  MessageProcessor,
  MessageResult,
  RpcHandler,
  type ConnectionStatus,
  type ReplyFunction,
} from '../../lib';
import { RabbitNode, testBroker } from '../../scripts/rabbit-node';
import { uid, waitFor } from '../helpers/broker';
import { JepsenCounter } from '../helpers/jepsen';
import { countingProcessor, durableExchange, numbersProducer, publishAtRate } from '../helpers/stream';

const log = (line: string): void => void process.stdout.write(`[faults] ${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe(`faults - outages longer than the timeouts (one ${testBroker()} node, POSTAGE_TEST_BROKER)`, () => {
  let node: RabbitNode;

  beforeAll(async () => {
    await RabbitNode.ensureInstalled(log);
    node = await RabbitNode.start({ log });
  }, 120_000);

  afterAll(async () => {
    await node.stop().catch(() => undefined);
    await RabbitNode.shutdownEpmd();
  });

  /** Resolves once `statuses` shows a recovery after the index `from`. */
  function recovered(statuses: ConnectionStatus[], from = 0): () => boolean {
    return () => statuses.slice(from).some((s) => s.type === 'connected' && s.recovered);
  }

  test('faults - kill -9 for 12 s at ~1,000 publishes/s, confirmTimeout 8 s: the producer survives, buffered publishes fail CONFIRM_TIMEOUT, later ones are confirmed, none lost', async () => {
    const counter = new JepsenCounter();
    const exchange = durableExchange(uid('ox'));
    const processor = await countingProcessor(
      counter,
      exchange,
      uid('oq'),
      { durable: true },
      { url: node.url, prefetch: 100 },
    );
    const producer = numbersProducer(exchange, { url: node.url, confirmTimeout: 8000 });
    const statuses: ConnectionStatus[] = [];
    producer.connection.on('status', (s) => statuses.push(s));
    try {
      // 1 s with the broker up, then 2 s into the outage: those wait in the outage buffer.
      const load = publishAtRate(producer, counter, { ratePerSecond: 1000, durationMs: 3000 });
      await sleep(1000);
      const killedAt = Date.now();
      await node.kill();
      const firstInOutage = counter.produced;
      const beforeRecovery = await load;
      const inOutage = beforeRecovery.filter((n) => n >= firstInOutage);
      // Nothing is buffered any more: every buffered publish outlived confirmTimeout.
      await sleep(Math.max(0, 12_000 - (Date.now() - killedAt)));
      await node.restart();
      log(`outage of ${((Date.now() - killedAt) / 1000).toFixed(1)} s, ${inOutage.length} publishes in it`);
      // The drain, waiting for a channel since the kill, gets one now with an empty buffer
      // (before issue 12: an unhandled TypeError that ended the process).
      await waitFor(recovered(statuses), {
        timeoutMs: 60_000,
        intervalMs: 50,
        what: 'the producer recovered',
      });
      const afterRecovery = await publishAtRate(producer, counter, { ratePerSecond: 1000, durationMs: 2000 });
      const counts = await counter.settle(60_000);
      counter.report('kill -9 for 12 s at 1,000/s, confirmTimeout 8 s');
      expect(counts.lost).toBe(0);
      expect(counts.confirmed + counts.failed).toBe(counts.produced);
      expect(Object.keys(counts.failures)).toEqual([ErrorCode.CONFIRM_TIMEOUT]);
      expect(inOutage.length).toBeGreaterThan(0);
      expect(inOutage.filter((n) => counter.confirmed.has(n))).toEqual([]);
      expect(afterRecovery.filter((n) => !counter.confirmed.has(n))).toEqual([]);
    } finally {
      await producer.close();
      await processor.stop();
    }
  });

  test('faults - RPC through a kill -9, the server on a non-durable queue: no call fails UNROUTABLE, every call is answered', async () => {
    const exchange = durableExchange(uid('rpcx'));
    class Echo extends MessageProcessor {
      @RpcHandler('command', 'echo') echo(content: { parameters: unknown }, reply: ReplyFunction) {
        reply(new MessageResult(content.parameters));
      }
    }
    // Postage's default queue flags: not durable, so the restart deletes it. The server's
    // connection retries every 4 s, the caller's every 200 ms: the caller is back first and
    // calls before the queue exists again, as when the server's backoff (up to 5 s by
    // default) happens to land later than the caller's.
    const processor = new Echo({
      url: node.url,
      eqk: [[exchange, [[uid('rpcq'), 'echo']]]],
      reconnect: { initialDelay: 4000, maxDelay: 4000, jitter: 0 },
    });
    await processor.start();
    let serverBack = false;
    let serverBackAt = 0;
    processor.consumer.on('recovered', () => {
      serverBack = true;
      serverBackAt = Date.now();
    });
    class Caller extends GenericProducer<{ echo: number }> {
      static override eks = [[exchange, 'echo']] as const;
    }
    const producer = Caller.create({ url: node.url, reconnect: { initialDelay: 100, maxDelay: 200 } });
    const statuses: ConnectionStatus[] = [];
    producer.connection.on('status', (s) => statuses.push(s));
    const outcome = {
      calls: 0,
      succeeded: 0,
      wrong: 0,
      failed: 0,
      afterRecovery: 0,
      afterRecoverySucceeded: 0,
    };
    const failures: Record<string, number> = {};
    const calls: Promise<void>[] = [];
    const call = (n: number, afterRecovery: boolean): Promise<void> =>
      producer.rpc_echo(n, { _timeout: 5, _max_retry: 5 }).then((result) => {
        try {
          const value = result.unwrap();
          if (value !== n) outcome.wrong++;
          else {
            outcome.succeeded++;
            if (afterRecovery) outcome.afterRecoverySucceeded++;
          }
        } catch (err) {
          outcome.failed++;
          const code = String((err as { code?: unknown }).code);
          failures[code] = (failures[code] ?? 0) + 1;
        }
      });
    let fault: Promise<void> | undefined;
    let recoveredAt: number | undefined;
    const t0 = Date.now();
    try {
      // Calls every 20 ms: 1 s before the kill, through the outage, and 3 s after the recovery.
      while (recoveredAt === undefined || Date.now() - recoveredAt < 3000) {
        if (fault === undefined && Date.now() - t0 > 1000) {
          fault = (async () => {
            const killedAt = Date.now();
            await node.kill();
            await node.restart();
            log(`rpc: kill -9 and restart in ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
          })();
        }
        if (recoveredAt === undefined && fault !== undefined && recovered(statuses)())
          recoveredAt = Date.now();
        const afterRecovery = recoveredAt !== undefined;
        if (afterRecovery) outcome.afterRecovery++;
        calls.push(call(outcome.calls++, afterRecovery));
        await sleep(20);
      }
      await Promise.all(calls);
      await fault;
      const serverLagMs = serverBackAt - (recoveredAt ?? 0);
      log(`rpc through kill -9: ${JSON.stringify({ ...outcome, failures, serverBack, serverLagMs })}`);
      expect(serverBack).toBe(true);
      expect(outcome.succeeded + outcome.failed + outcome.wrong).toBe(outcome.calls);
      expect(outcome.wrong).toBe(0);
      expect(failures).toEqual({});
      expect(outcome.afterRecoverySucceeded).toBe(outcome.afterRecovery);
    } finally {
      await producer.close();
      await processor.stop();
    }
  });
});
