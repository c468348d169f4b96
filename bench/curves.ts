/**
 * How postage's cost grows: RPC calls in flight, message size, queues per processor, producers
 * per connection. Each point of a curve is one function run once per round; it returns named
 * figures, and the curve's row is the median of each figure over the rounds. Where a point
 * compares postage with the thin-wrapper amqplib case, both run back to back in the round (which
 * first alternating) and the ratio is the median of the per-round ratios, as for the cases.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { connect, type Channel, type ConfirmChannel } from 'amqplib';

import { Connection, MessageProcessor } from '../lib';
import { rpcPostage } from './cases';
import {
  brokerCpuPerOp,
  cpuPerOp,
  median,
  quantile,
  rate,
  round,
  sampleOf,
  timed,
  uniqueName,
  type Sample,
} from './common';
import {
  BATCH,
  declareExchange,
  declareRoute,
  drained,
  dropRoute,
  heapAfterGc,
  rawSetup,
  settle,
  sleep,
  type Context,
  type Route,
} from './harness';
import { requestAmqplib, rpcAmqplib } from './peers';
import {
  BenchProducer,
  FINGERPRINT,
  benchExchange,
  envelope,
  payload,
  rawPublishOptions,
  sizedPayload,
} from './wire';

/** Sizes of the curves' runs. */
export interface CurveSizes {
  /** Rounds of every curve (fewer than the cases': each point is slower). */
  rounds: number;
  /** RPC window and warm-up per point, ms. */
  rpcMs: number;
  rpcWarmMs: number;
  /** Body bytes published per message-size run (at least 20 messages). */
  sizeBytes: number;
  /** At most this many messages per message-size run. */
  sizeMaxCount: number;
  /** Messages fed to the processor per queue-count run (spread over its queues). */
  queueMessages: number;
  /** Messages published per producer-count run (spread over the producers). */
  producerMessages: number;
}

/** The figures of one point in one round (null: not measured). */
export type Figures = Record<string, number | null>;

export interface CurveContext extends Context {
  readonly curve: CurveSizes;
}

export interface CurvePoint {
  /** Selectable with --only, e.g. `curve-rpc-inflight-100`. */
  readonly name: string;
  readonly run: (ctx: CurveContext, round: number) => Promise<Figures>;
}

export interface Curve {
  readonly name: string;
  /** One line saying what a row measures. */
  readonly title: string;
  readonly points: readonly CurvePoint[];
}

/** One row of a curve in results.json: the point and the median of each figure. */
export interface CurveRow {
  point: string;
  [figure: string]: number | string | null;
}

/** Runs `a` and `b` back to back, which first alternating by round, each after a settle. */
async function paired(
  r: number,
  a: () => Promise<Sample>,
  b: () => Promise<Sample>,
): Promise<[Sample, Sample]> {
  const first = r % 2 === 0 ? a : b;
  const second = r % 2 === 0 ? b : a;
  await settle();
  const one = await first();
  await settle();
  const two = await second();
  return r % 2 === 0 ? [one, two] : [two, one];
}

const perOp = (value: number | undefined): number | null => (value === undefined ? null : round(value, 1));

// ---------------------------------------------------------------- RPC calls in flight

/**
 * Heap per pending RPC call: calls to a queue nobody consumes stay pending; heap used after GC
 * with `k` more of them, over `k` (the caller's handled promise included). `issue(i)` starts a
 * call.
 */
async function pendingHeap(
  url: string,
  k: number,
  open: (route: Route) => Promise<{ issue: (i: number) => Promise<unknown>; close: () => Promise<void> }>,
): Promise<number> {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'sink');
  const client = await open(route);
  const calls: Promise<unknown>[] = [];
  const WARM = 10;
  const queued = async (n: number): Promise<void> => {
    while ((await admin.channel.checkQueue(route.queue)).messageCount < n) await sleep(5);
  };
  try {
    for (let i = 0; i < WARM; i += 1) calls.push(client.issue(i));
    await queued(WARM);
    // Three steps of k more calls, the median step: one step at k = 1 or 10 is within the noise
    // of a heap measurement (a few KB either way).
    const steps: number[] = [];
    let before = heapAfterGc();
    for (let step = 1; step <= 3; step += 1) {
      for (let i = 0; i < k; i += 1) calls.push(client.issue(calls.length));
      await queued(WARM + step * k);
      const after = heapAfterGc();
      steps.push((after - before) / k);
      before = after;
    }
    return median(steps);
  } finally {
    await client.close();
    await Promise.all(calls);
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
}

function postagePending(url: string): (route: Route) => Promise<{
  issue: (i: number) => Promise<unknown>;
  close: () => Promise<void>;
}> {
  return async (route) => {
    const producer = BenchProducer.create({
      url,
      eks: [[route.exchange, 'sink']],
      fingerprint: FINGERPRINT,
      rpcTimeout: 120,
      maxRetry: 0,
    });
    await producer.connect();
    return {
      issue: (i) => producer.rpc_bench(payload(i)).catch(() => undefined),
      close: () => producer.close(),
    };
  };
}

function amqplibPending(url: string): (route: Route) => Promise<{
  issue: (i: number) => Promise<unknown>;
  close: () => Promise<void>;
}> {
  return async (route) => {
    const model = await connect(url, { noDelay: true });
    const channel = await model.createChannel();
    const pending = new Map<string, { resolve: (v: unknown) => void; reject: (err: unknown) => void }>();
    await channel.consume('amq.rabbitmq.reply-to', () => undefined, { noAck: true });
    return {
      issue: (i) =>
        new Promise((resolve, reject) => {
          const id = randomUUID();
          pending.set(id, { resolve, reject });
          requestAmqplib(channel, route.exchange.name, 'sink', i, id);
        }).catch(() => undefined),
      close: async () => {
        for (const waiting of pending.values()) waiting.reject(new Error('closed'));
        await model.close();
      },
    };
  };
}

function inflightPoint(k: number): CurvePoint {
  return {
    name: `curve-rpc-inflight-${k}`,
    run: async (ctx, r) => {
      const rpcCtx: Context = {
        ...ctx,
        sizes: { ...ctx.sizes, rpcMs: ctx.curve.rpcMs, rpcWarmMs: ctx.curve.rpcWarmMs },
      };
      const [own, raw] = await paired(
        r,
        () => rpcPostage(k)(rpcCtx),
        () => rpcAmqplib(k)(rpcCtx),
      );
      await settle();
      const heap = await pendingHeap(ctx.url, k, postagePending(ctx.url));
      const rawHeap = await pendingHeap(ctx.url, k, amqplibPending(ctx.url));
      return {
        in_flight: k,
        calls_per_s: round(rate(own)),
        amqplib_calls_per_s: round(rate(raw)),
        ratio_vs_amqplib: round(rate(own) / rate(raw), 3),
        p50_ms: round(quantile(own.latencies ?? [], 0.5), 3),
        p99_ms: round(quantile(own.latencies ?? [], 0.99), 3),
        amqplib_p50_ms: round(quantile(raw.latencies ?? [], 0.5), 3),
        cpu_us_per_op: round(cpuPerOp(own), 1),
        amqplib_cpu_us_per_op: round(cpuPerOp(raw), 1),
        broker_cpu_us_per_op: perOp(brokerCpuPerOp(own)),
        heap_bytes_per_pending: round(heap),
        amqplib_heap_bytes_per_pending: round(rawHeap),
      };
    },
  };
}

// ---------------------------------------------------------------- message size

/** postage publishing `count` messages carrying `blob`, `batch` confirms awaited at a time. */
async function publishSizedPostage(url: string, blob: string, count: number, batch: number): Promise<Sample> {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'size');
  const producer = BenchProducer.create({ url, eks: [[route.exchange, 'size']], fingerprint: FINGERPRINT });
  const sendBatch = (from: number): Promise<unknown> => {
    const sent: Promise<void>[] = [];
    for (let i = from; i < from + batch; i += 1) sent.push(producer.message_bench(sizedPayload(i, blob)));
    return Promise.all(sent);
  };
  try {
    await producer.connect();
    await sendBatch(0);
    const run = await timed(async () => {
      for (let i = 0; i < count; i += batch) await sendBatch(i);
    });
    return sampleOf(count, run);
  } finally {
    await producer.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
}

const sameOptions = rawPublishOptions('same');

/** The thin amqplib wrapper publishing the same messages. */
async function publishSizedAmqplib(url: string, blob: string, count: number, batch: number): Promise<Sample> {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'size');
  const { model, channel } = await rawSetup(url);
  const exchange = route.exchange.name;
  const sendBatch = async (from: number): Promise<void> => {
    for (let i = from; i < from + batch; i += 1) {
      if (!channel.publish(exchange, 'size', envelope('message', sizedPayload(i, blob)), sameOptions())) {
        await drained(channel);
      }
    }
    await channel.waitForConfirms();
  };
  try {
    await sendBatch(0);
    const run = await timed(async () => {
      for (let i = 0; i < count; i += batch) await sendBatch(i);
    });
    return sampleOf(count, run);
  } finally {
    await model.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
}

function sizePoint(bytes: number, label: string): CurvePoint {
  return {
    name: `curve-size-${label}`,
    run: async (ctx, r) => {
      const blob = 'x'.repeat(bytes);
      const body = envelope('message', sizedPayload(0, blob)).length;
      // In flight at once: up to 1,000 messages or 8 MiB; the run a multiple of that.
      const batch = Math.max(1, Math.min(BATCH, Math.floor((8 * 2 ** 20) / body)));
      const wanted = Math.min(ctx.curve.sizeMaxCount, Math.max(20, Math.round(ctx.curve.sizeBytes / body)));
      const count = Math.ceil(wanted / batch) * batch;
      const [own, raw] = await paired(
        r,
        () => publishSizedPostage(ctx.url, blob, count, batch),
        () => publishSizedAmqplib(ctx.url, blob, count, batch),
      );
      const mbps = (s: Sample): number => (s.ops * body) / s.ms / 1000;
      return {
        payload_bytes: bytes,
        body_bytes: body,
        messages: count,
        mb_per_s: round(mbps(own), 2),
        amqplib_mb_per_s: round(mbps(raw), 2),
        ratio_vs_amqplib: round(rate(own) / rate(raw), 3),
        cpu_us_per_op: round(cpuPerOp(own), 1),
        amqplib_cpu_us_per_op: round(cpuPerOp(raw), 1),
        broker_cpu_us_per_op: perOp(brokerCpuPerOp(own)),
      };
    },
  };
}

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

function queuesPoint(n: number): CurvePoint {
  return {
    name: `curve-queues-${n}`,
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

function producersPoint(n: number): CurvePoint {
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

// ---------------------------------------------------------------- the curves

export const CURVES: readonly Curve[] = [
  {
    name: 'rpc-inflight',
    title: 'RPC calls in flight (postage, and the thin amqplib wrapper beside it)',
    points: [1, 10, 100, 1000].map(inflightPoint),
  },
  {
    name: 'size',
    title: 'message size: publish with confirms, parameters of 100 B .. 1 MiB (MB = 10^6 bytes of body)',
    points: [
      [100, '100B'],
      [4096, '4KiB'],
      [65_536, '64KiB'],
      [1_048_576, '1MiB'],
    ].map(([bytes, label]) => sizePoint(bytes as number, label as string)),
  },
  {
    name: 'queues',
    title:
      'one processor consuming N queues (prefetch 1,000 each), fed by two raw amqplib publishers in child processes',
    points: [1, 100, 1000].map(queuesPoint),
  },
  {
    name: 'producers',
    title: 'N producers in one process sharing one connection, 1,000 publishes in flight in all',
    points: [1, 10, 100].map(producersPoint),
  },
];

/** Runs the selected points of every curve for the rounds; the medians per point. */
export async function runCurves(
  ctx: CurveContext,
  wanted: (name: string) => boolean,
  log: (line: string) => void,
): Promise<Record<string, CurveRow[]>> {
  const out: Record<string, CurveRow[]> = {};
  for (const curve of CURVES) {
    const points = curve.points.filter((p) => wanted(p.name));
    if (points.length === 0) continue;
    const figures = new Map<string, Figures[]>(points.map((p) => [p.name, []]));
    for (let r = 0; r < ctx.curve.rounds; r += 1) {
      for (const point of points) {
        await settle();
        const f = await point.run(ctx, r);
        figures.get(point.name)?.push(f);
        log(`${point.name} round ${r + 1}/${ctx.curve.rounds}: ${JSON.stringify(f)}`);
      }
    }
    out[curve.name] = points.map((p) => ({ point: p.name, ...medians(figures.get(p.name) ?? []) }));
  }
  return out;
}

function medians(rounds: readonly Figures[]): Figures {
  const keys = [...new Set(rounds.flatMap((f) => Object.keys(f)))];
  const out: Figures = {};
  for (const key of keys) {
    const values = rounds.map((f) => f[key]).filter((v): v is number => typeof v === 'number');
    out[key] = values.length === 0 ? null : median(values);
  }
  return out;
}

/** The title of a curve, for the printed tables. */
export function curveTitle(name: string): string {
  return CURVES.find((c) => c.name === name)?.title ?? name;
}
