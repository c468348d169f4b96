/**
 * The curves of load: RPC calls in flight (calls/s, latency, heap per pending call) and message
 * size (MB/s), each point postage against the thin amqplib wrapper in the same round.
 */
import { randomUUID } from 'node:crypto';

import { connect } from 'amqplib';

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
  type Sample,
} from './common';
import { paired, perOp, type CurvePoint } from './curve-kit';
import {
  declareRoute,
  drained,
  dropRoute,
  heapAfterGc,
  rawSetup,
  settle,
  sleep,
  BATCH,
  type Context,
  type Route,
} from './harness';
import { requestAmqplib, rpcAmqplib } from './peers';
import { BenchProducer, FINGERPRINT, envelope, payload, rawPublishOptions, sizedPayload } from './wire';

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

export function inflightPoint(k: number): CurvePoint {
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

export function sizePoint(bytes: number, label: string): CurvePoint {
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
