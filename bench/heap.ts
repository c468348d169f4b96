/**
 * Heap growth, in its own process started with --expose-gc:
 * `node --expose-gc heap.js rpc|messages <count>`. It runs on the in-process broker (memory://)
 * so both sides of postage (producer, publisher, RPC client, processor) are in this heap. The
 * start is measured after a warm-up of 2,000 operations (code, caches, channels), after GC; the
 * end after the last operation, again after GC, with producer and processor still open.
 * Prints one JSON line: {ops, ms, cpuUs, heapGrowthMb}.
 */
import { MessageProcessor } from '../lib';
import { timed } from './common';
import { BenchProducer, FINGERPRINT, benchExchange, payload } from './wire';

const BATCH_SIZE = 1000;

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  const count = Number(process.argv[3]);
  if ((kind !== 'rpc' && kind !== 'messages') || !(count > 0))
    throw new Error('usage: heap rpc|messages <count>');
  const url = `memory://bench-heap-${process.pid}`;
  const exchange = benchExchange('bench-heap');
  const processor = new MessageProcessor({
    url,
    prefetch: 1000,
    eqk: [[exchange, [['bench-heap-q', 'heap']]]],
    fingerprint: FINGERPRINT,
  });
  let handled = 0;
  let target = 0;
  let done: () => void = () => undefined;
  processor.registerHandler('command', 'bench', async () => {
    handled += 1;
    if (handled === target) done();
  });
  processor.registerHandler('command', 'bench', () => 'pong', { rpc: true });
  const producer = BenchProducer.create({
    url,
    eks: [[exchange, 'heap']],
    fingerprint: FINGERPRINT,
    rpcTimeout: 10,
    maxRetry: 0,
  });
  await processor.start();

  const messages = async (n: number): Promise<void> => {
    handled = 0;
    target = n;
    const all = new Promise<void>((resolve) => (done = resolve));
    for (let from = 0; from < n; from += BATCH_SIZE) {
      const batch: Promise<void>[] = [];
      for (let i = from; i < Math.min(n, from + BATCH_SIZE); i += 1)
        batch.push(producer.message_bench(payload(i)));
      await Promise.all(batch);
    }
    await all;
  };
  const calls = async (n: number): Promise<void> => {
    let next = 0;
    const loop = async (): Promise<void> => {
      while (next < n) {
        next += 1;
        const reply = await producer.rpc_bench(payload(next));
        if (!reply.ok) throw new Error(`rpc failed: ${reply.message}`);
      }
    };
    await Promise.all(Array.from({ length: 100 }, loop));
  };
  const work = kind === 'rpc' ? calls : messages;

  await work(2000);
  const before = heapAfterGc();
  const run = await timed(() => work(count));
  const after = heapAfterGc();
  await producer.close();
  await processor.close();
  process.stdout.write(
    `${JSON.stringify({ ops: count, ms: run.ms, cpuUs: run.cpuUs, heapGrowthMb: (after - before) / 1024 / 1024 })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`[heap] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
