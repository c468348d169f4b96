/**
 * The curves of scale: one processor consuming many queues, many producers on one connection.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { connect, type Channel, type ConfirmChannel } from 'amqplib';

import { Connection, MessageProcessor } from '../lib';
import { brokerCpuPerOp, cpuPerOp, rate, round, sampleOf, timed, uniqueName, type Sample } from './common';
import { paired, perOp, type CurvePoint } from './curve-kit';
import { BATCH, declareExchange, declareRoute, drained, dropRoute, heapAfterGc, rawSetup } from './harness';
import { BenchProducer, FINGERPRINT, benchExchange, envelope, payload, rawPublishOptions } from './wire';

const sameOptions = rawPublishOptions('same');

// ---------------------------------------------------------------- queues per processor

/** Starts bench/feeder.js (feeder `k` of `of`) and waits until it is connected. */
async function startFeeder(
  url: string,
  exchange: string,
  keys: number,
  count: number,
  k: number,
  of: number,
): Promise<{ go: () => void; done: Promise<number> }> {
  const args = [url, exchange, String(keys), String(count), String(k), String(of)];
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(
    process.execPath,
    [join(__dirname, 'feeder.js'), ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  while (!out.includes('ready')) {
    const code = await Promise.race([
      once(child.stdout, 'data').then(() => undefined),
      exited.then(([c]) => c),
    ]);
    if (code !== undefined) throw new Error(`the feeder exited with ${String(code)} before it was ready`);
  }
  const done = exited.then(([code]) => {
    if (code !== 0) throw new Error(`the feeder exited with ${String(code)}`);
    const line = out.split('\n').find((l) => l.startsWith('{'));
    return (JSON.parse(line ?? '{}') as { ms?: number }).ms ?? Number.NaN;
  });
  done.catch(() => undefined); // awaited by the caller; this only keeps an early failure handled
  return { go: () => child.stdin.end('go\n'), done };
}

/**
 * Publishers in child processes: two, so that together they publish faster than one
 * processor consumes (one raw amqplib publisher is about as fast as postage's consumer here).
 */
const FEEDERS = 2;

async function deleteQueues(channel: Channel, queues: readonly string[]): Promise<void> {
  for (const queue of queues) await channel.deleteQueue(queue);
}

export function queuesPoint(n: number): CurvePoint {
  return {
    name: `curve-queues-${n}`,
    // Declaring, consuming and deleting 1,000 queues takes 5-8 s alone: not in --quick.
    fullOnly: n >= 1000,
    run: async (ctx) => {
      const total = Math.max(FEEDERS * n, Math.round(ctx.curve.queueMessages / (FEEDERS * n)) * FEEDERS * n);
      const admin = await rawSetup(ctx.url);
      const exchange = benchExchange(uniqueName('queues.x'));
      await declareExchange(admin.channel, exchange);
      const queues = Array.from({ length: n }, () => uniqueName('queues.q'));
      const processor = new MessageProcessor({
        url: ctx.url,
        prefetch: 1000,
        eqk: [[exchange, queues.map((queue, j): [string, string] => [queue, `q${j}`])]],
        fingerprint: FINGERPRINT,
      });
      let handled = 0;
      let done!: () => void;
      const all = new Promise<void>((resolve) => (done = resolve));
      processor.registerHandler('command', 'bench', async (content: { parameters: { order: number } }) => {
        handled += content.parameters.order >= 0 ? 1 : 0;
        if (handled === total) done();
      });
      try {
        const heap0 = heapAfterGc();
        const rss0 = process.memoryUsage().rss;
        const t0 = performance.now();
        await processor.start(); // declares, binds and consumes every queue
        const startMs = performance.now() - t0;
        const heap1 = heapAfterGc();
        const rss1 = process.memoryUsage().rss;
        const share = total / FEEDERS;
        const feeders = await Promise.all(
          Array.from({ length: FEEDERS }, (_, k) =>
            startFeeder(ctx.url, exchange.name, n, share, k, FEEDERS),
          ),
        );
        const run = await timed(async () => {
          for (const feeder of feeders) feeder.go();
          await all;
        });
        const feederMs = Math.max(...(await Promise.all(feeders.map((f) => f.done))));
        const sample = sampleOf(total, run);
        return {
          queues: n,
          start_ms: round(startMs, 1),
          start_ms_per_queue: round(startMs / n, 2),
          heap_mb: round((heap1 - heap0) / 1e6, 2),
          heap_kb_per_queue: round((heap1 - heap0) / 1e3 / n, 2),
          rss_mb: round((rss1 - rss0) / 1e6, 1),
          msg_per_s: round(rate(sample)),
          feeder_msg_per_s: round((total * 1000) / feederMs),
          cpu_us_per_op: round(cpuPerOp(sample), 1),
          broker_cpu_us_per_op: perOp(brokerCpuPerOp(sample)),
        };
      } finally {
        await processor.close();
        await deleteQueues(admin.channel, queues);
        await admin.channel.deleteExchange(exchange.name);
        await admin.model.close();
      }
    },
  };
}

// ---------------------------------------------------------------- producers per connection

/** `n` postage producers sharing one Connection (ProducerOptions.connection), each its own channel. */
async function producersPostage(
  url: string,
  n: number,
  total: number,
): Promise<Sample & { connectMs: number; heap: number }> {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'producers');
  const connection = new Connection({ url });
  const heap0 = heapAfterGc();
  const t0 = performance.now();
  const producers = Array.from({ length: n }, () =>
    BenchProducer.create({ connection, eks: [[route.exchange, 'producers']], fingerprint: FINGERPRINT }),
  );
  const share = Math.max(1, Math.floor(BATCH / n));
  const step = async (from: number): Promise<void> => {
    const sent: Promise<void>[] = [];
    producers.forEach((producer, j) => {
      for (let i = 0; i < share; i += 1) sent.push(producer.message_bench(payload(from + j * share + i)));
    });
    await Promise.all(sent);
  };
  try {
    await Promise.all(producers.map((p) => p.connect()));
    const connectMs = performance.now() - t0;
    const heap = heapAfterGc() - heap0;
    await step(0);
    const steps = Math.ceil(total / (share * n));
    const run = await timed(async () => {
      for (let s = 0; s < steps; s += 1) await step(s * share * n);
    });
    return { ...sampleOf(steps * share * n, run), connectMs, heap };
  } finally {
    await Promise.all(producers.map((p) => p.close()));
    await connection.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
}

/** The thin amqplib wrapper: `n` confirm channels on one connection. */
async function producersAmqplib(url: string, n: number, total: number): Promise<Sample> {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'producers');
  const model = await connect(url, { noDelay: true });
  const channels: ConfirmChannel[] = [];
  for (let j = 0; j < n; j += 1) channels.push(await model.createConfirmChannel());
  const share = Math.max(1, Math.floor(BATCH / n));
  const exchange = route.exchange.name;
  const step = async (from: number): Promise<void> => {
    await Promise.all(
      channels.map(async (channel, j) => {
        for (let i = 0; i < share; i += 1) {
          const body = envelope('message', payload(from + j * share + i));
          if (!channel.publish(exchange, 'producers', body, sameOptions())) await drained(channel);
        }
        await channel.waitForConfirms();
      }),
    );
  };
  try {
    await step(0);
    const steps = Math.ceil(total / (share * n));
    const run = await timed(async () => {
      for (let s = 0; s < steps; s += 1) await step(s * share * n);
    });
    return sampleOf(steps * share * n, run);
  } finally {
    await model.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
}

export function producersPoint(n: number): CurvePoint {
  return {
    name: `curve-producers-${n}`,
    run: async (ctx, r) => {
      let connectMs = 0;
      let heap = 0;
      const [own, raw] = await paired(
        r,
        async () => {
          const s = await producersPostage(ctx.url, n, ctx.curve.producerMessages);
          connectMs = s.connectMs;
          heap = s.heap;
          return s;
        },
        () => producersAmqplib(ctx.url, n, ctx.curve.producerMessages),
      );
      return {
        producers: n,
        connect_ms: round(connectMs, 1),
        heap_kb_per_producer: round(heap / 1e3 / n, 1),
        msg_per_s: round(rate(own)),
        amqplib_msg_per_s: round(rate(raw)),
        ratio_vs_amqplib: round(rate(own) / rate(raw), 3),
        cpu_us_per_op: round(cpuPerOp(own), 1),
        amqplib_cpu_us_per_op: round(cpuPerOp(raw), 1),
        broker_cpu_us_per_op: perOp(brokerCpuPerOp(own)),
      };
    },
  };
}
