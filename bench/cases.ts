/**
 * The benchmark cases. Each one sets up outside its timed window, measures one run and tears
 * down, and returns a {@link Sample}. Postage cases and their raw amqplib / peer counterparts
 * publish the same envelope bytes to the same kind of exchange and queue.
 */
import { randomUUID } from 'node:crypto';

import { connect, type Channel, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import { Connection as PeerConnection } from 'rabbitmq-client';

import {
  Fingerprint,
  GenericProducer,
  MessageProcessor,
  RpcCommand,
  MessageCommand,
  jsonEncoder,
  type ExchangeDefinition,
} from '../lib';
import { timed, uniqueName, type Sample } from './common';

/** Sizes of one run, smaller with --quick. */
export interface Sizes {
  /** Messages per publish run. */
  publish: number;
  /** Messages per consume run. */
  consume: number;
  /** Messages per in-process broker run. */
  memory: number;
  /** Timed window of an RPC run, in milliseconds. */
  rpcMs: number;
  /** Calls before an RPC run's window, for at least this long (milliseconds; and 200 calls). */
  rpcWarmMs: number;
}

/** What the cases share: the broker and the RPC responder's exchange. */
export interface Context {
  readonly url: string;
  readonly sizes: Sizes;
  readonly rpcExchange: ExchangeDefinition;
  readonly rpcKey: string;
}

export type CaseFn = (ctx: Context) => Promise<Sample>;

/** The producer the cases use: `message_bench(...)` and `rpc_bench(...)`. */
export class BenchProducer extends GenericProducer<{ bench: unknown }> {}

export const FINGERPRINT = new Fingerprint('bench', 'application');

/** A plain, non-durable direct exchange (what the responder declares too). */
export function benchExchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: false };
}

/** The parameters of every benchmark message: a small order (envelope ~330 B). */
export function payload(i: number): Record<string, unknown> {
  return { order: i, sku: 'A-1042', qty: 3, price: 19.9, tags: ['bench', 'postage'] };
}

/** The bytes postage sends for `message_bench(payload(0))`, for the raw cases to publish. */
export function envelopeBytes(rpc: boolean): Buffer {
  const message = rpc ? new RpcCommand('bench', payload(0)) : new MessageCommand('bench', payload(0));
  const producerFingerprint = new Fingerprint('bench', 'application').asDict();
  message.body.fingerprint = { ...producerFingerprint, pid: String(process.pid), host: 'bench' };
  return jsonEncoder.encode(message.body);
}

const QUEUE_FLAGS = { durable: false, exclusive: false, autoDelete: false } as const;
const BATCH = 1000;
/** The RPC timeout of postage's cases (seconds), and as the TTL raw requests carry (ms). */
export const RPC_TIMEOUT_S = 10;
const RPC_TIMEOUT_MS = String(RPC_TIMEOUT_S * 1000);

async function rawSetup(url: string): Promise<{ model: ChannelModel; channel: ConfirmChannel }> {
  const model = await connect(url, { noDelay: true });
  const channel = await model.createConfirmChannel();
  return { model, channel };
}

/** An exchange bound to a fresh queue, declared with raw amqplib exactly as postage declares them. */
async function declareRoute(
  channel: Channel,
  kind: string,
): Promise<{ exchange: ExchangeDefinition; queue: string }> {
  const exchange = benchExchange(uniqueName(`${kind}.x`));
  const queue = uniqueName(`${kind}.q`);
  await channel.assertExchange(exchange.name, 'direct', {
    durable: false,
    autoDelete: false,
    internal: false,
    arguments: {},
  });
  await channel.assertQueue(queue, QUEUE_FLAGS);
  await channel.bindQueue(queue, exchange.name, kind);
  return { exchange, queue };
}

async function dropRoute(
  channel: Channel,
  route: { exchange: ExchangeDefinition; queue: string },
): Promise<void> {
  await channel.deleteQueue(route.queue);
  await channel.deleteExchange(route.exchange.name);
}

// ---------------------------------------------------------------- publish

/** producer.message_bench() with confirms, awaited in batches of 1000. */
export const publishPostage: CaseFn = async ({ url, sizes }) => {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'publish');
  const producer = BenchProducer.create({
    url,
    eks: [[route.exchange, 'publish']],
    fingerprint: FINGERPRINT,
  });
  try {
    await producer.connect();
    const sendBatch = (from: number): Promise<unknown> => {
      const batch: Promise<void>[] = [];
      for (let i = from; i < from + BATCH; i += 1) batch.push(producer.message_bench(payload(i)));
      return Promise.all(batch);
    };
    await sendBatch(0); // warm-up: declares the exchange, opens the channel
    const run = await timed(async () => {
      for (let i = 0; i < sizes.publish; i += BATCH) await sendBatch(i);
    });
    return { ops: sizes.publish, ms: run.ms, cpuUs: run.cpuUs };
  } finally {
    await producer.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
};

/**
 * The properties raw amqplib publishes with, built per message as a user's own code would.
 * `same`: what postage sends for `message_bench()` (spec/broker/bench-parity.spec.ts checks it): its
 * content type, a fresh message id (what consumers deduplicate on), transient delivery,
 * mandatory and the message type. `bare`: the same without the message id, for reference only:
 * RabbitMQ 3.10 takes longer over a message whose properties are larger (a 36-character id
 * costs it ~10 % of its publish rate on this machine, in any property), which is the broker's
 * cost of the message, not the client's.
 */
export function rawPublishOptions(kind: 'same' | 'bare'): () => Options.Publish {
  return kind === 'same'
    ? () => ({
        contentType: 'application/json',
        messageId: randomUUID(),
        deliveryMode: 1,
        mandatory: true,
        type: 'command',
      })
    : () => ({ contentType: 'application/json', deliveryMode: 1, mandatory: true, type: 'command' });
}

/** Raw amqplib confirm channel publishing the same message, waitForConfirms every 1000. */
export function publishRaw(kind: 'same' | 'bare'): CaseFn {
  return async ({ url, sizes }) => {
    const admin = await rawSetup(url);
    const route = await declareRoute(admin.channel, 'publish');
    const { model, channel } = await rawSetup(url);
    const content = envelopeBytes(false);
    const options = rawPublishOptions(kind);
    try {
      const sendBatch = async (): Promise<void> => {
        for (let i = 0; i < BATCH; i += 1) {
          if (!channel.publish(route.exchange.name, 'publish', content, options())) {
            await new Promise((resolve) => channel.once('drain', resolve));
          }
        }
        await channel.waitForConfirms();
      };
      await sendBatch();
      const run = await timed(async () => {
        for (let i = 0; i < sizes.publish; i += BATCH) await sendBatch();
      });
      return { ops: sizes.publish, ms: run.ms, cpuUs: run.cpuUs };
    } finally {
      await model.close();
      await dropRoute(admin.channel, route);
      await admin.model.close();
    }
  };
}

// ---------------------------------------------------------------- consume

/** Fills a fresh queue with `count` postage envelopes (raw, outside the timed window). */
async function prefilled(
  url: string,
  count: number,
): Promise<{
  admin: { model: ChannelModel; channel: ConfirmChannel };
  route: { exchange: ExchangeDefinition; queue: string };
}> {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'consume');
  const content = envelopeBytes(false);
  for (let i = 0; i < count; i += 1) {
    if (
      !admin.channel.sendToQueue(route.queue, content, { contentType: 'application/json', type: 'command' })
    ) {
      await new Promise((resolve) => admin.channel.once('drain', resolve));
    }
    if (i % BATCH === BATCH - 1) await admin.channel.waitForConfirms();
  }
  await admin.channel.waitForConfirms();
  return { admin, route };
}

/** A MessageProcessor dispatching to an async handler (acked after it resolves). */
export function consumePostage(prefetch: number): CaseFn {
  return async ({ url, sizes }) => {
    const { admin, route } = await prefilled(url, sizes.consume);
    const processor = new MessageProcessor({
      url,
      prefetch,
      eqk: [[route.exchange, [[route.queue, 'consume']]]],
      fingerprint: FINGERPRINT,
    });
    let handled = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    processor.registerHandler('command', 'bench', async (content: { parameters: { order: number } }) => {
      handled += content.parameters.order >= 0 ? 1 : 0;
      if (handled === sizes.consume) done();
    });
    try {
      const run = await timed(async () => {
        await processor.start();
        await all;
      });
      return { ops: sizes.consume, ms: run.ms, cpuUs: run.cpuUs };
    } finally {
      await processor.close();
      await dropRoute(admin.channel, route);
      await admin.model.close();
    }
  };
}

/** Raw amqplib consume + JSON.parse + ack. */
export function consumeRaw(prefetch: number): CaseFn {
  return async ({ url, sizes }) => {
    const { admin, route } = await prefilled(url, sizes.consume);
    const model = await connect(url, { noDelay: true });
    const channel = await model.createChannel();
    await channel.prefetch(prefetch);
    let handled = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    try {
      const run = await timed(async () => {
        await channel.consume(route.queue, (message) => {
          if (message === null) return;
          const body = JSON.parse(message.content.toString('utf8')) as {
            content: { parameters: { order: number } };
          };
          handled += body.content.parameters.order >= 0 ? 1 : 0;
          channel.ack(message);
          if (handled === sizes.consume) done();
        });
        await all;
      });
      return { ops: sizes.consume, ms: run.ms, cpuUs: run.cpuUs };
    } finally {
      await model.close();
      await dropRoute(admin.channel, route);
      await admin.model.close();
    }
  };
}

// ---------------------------------------------------------------- RPC

type Call = () => Promise<unknown>;

/**
 * Calls `call` from `concurrency` loops until the window closes; latencies when sequential.
 * Before the window the same loops run for `sizes.rpcWarmMs` (and at least 200 calls): each run
 * opens a fresh client, and a fresh postage producer called one call at a time takes 1,500 to
 * 2,000 calls before its per-call cost settles (raw amqplib, whose code every case shares, a
 * few hundred), so a short warm-up measured the JIT's tier-up rather than the steady state.
 */
async function rpcWindow(call: Call, concurrency: number, sizes: Sizes): Promise<Sample> {
  const warmUntil = performance.now() + sizes.rpcWarmMs;
  let warmCalls = 0;
  const warm = async (): Promise<void> => {
    while (warmCalls < 200 || performance.now() < warmUntil) {
      warmCalls += 1;
      await call();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, warm));
  const windowMs = sizes.rpcMs;
  const latencies: number[] = [];
  let calls = 0;
  const run = await timed(async () => {
    const deadline = performance.now() + windowMs;
    const loop = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await call();
        latencies.push(performance.now() - t0);
        calls += 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  });
  return { ops: calls, ms: run.ms, cpuUs: run.cpuUs, latencies };
}

/** producer.rpc_bench() over direct reply-to. */
export function rpcPostage(concurrency: number): CaseFn {
  return async ({ url, sizes, rpcExchange, rpcKey }) => {
    const producer = BenchProducer.create({
      url,
      eks: [[rpcExchange, rpcKey]],
      fingerprint: FINGERPRINT,
      rpcTimeout: RPC_TIMEOUT_S,
      maxRetry: 0,
    });
    try {
      await producer.connect();
      return await rpcWindow(
        async () => {
          const reply = await producer.rpc_bench(payload(1));
          if (!reply.ok) throw new Error(`rpc failed: ${reply.message}`);
        },
        concurrency,
        sizes,
      );
    } finally {
      await producer.close();
    }
  };
}

/**
 * The properties of a raw RPC request, per call. `same`: what postage sends for `rpc_bench()`
 * with a 10 s timeout: content type, one fresh id as message and correlation id, transient,
 * mandatory (an unroutable request comes back at once), the type, direct reply-to and the
 * timeout as per-message TTL (a request nobody took in time is not served late). `bare`: only
 * content type, reply-to and correlation id, for reference.
 */
export function rawRequestOptions(kind: 'same' | 'bare'): (id: string) => Options.Publish {
  return kind === 'same'
    ? (id) => ({
        contentType: 'application/json',
        messageId: id,
        deliveryMode: 1,
        mandatory: true,
        type: 'command',
        replyTo: 'amq.rabbitmq.reply-to',
        correlationId: id,
        expiration: RPC_TIMEOUT_MS,
      })
    : (id) => ({ contentType: 'application/json', replyTo: 'amq.rabbitmq.reply-to', correlationId: id });
}

/** Raw amqplib with direct reply-to on a plain channel, correlation ids in a Map. */
export function rpcRaw(concurrency: number, kind: 'same' | 'bare'): CaseFn {
  return async ({ url, sizes, rpcExchange, rpcKey }) => {
    const model = await connect(url, { noDelay: true });
    const channel = await model.createChannel();
    const pending = new Map<string, (body: unknown) => void>();
    await channel.consume(
      'amq.rabbitmq.reply-to',
      (message) => {
        if (message === null) return;
        const id = (message.properties as { correlationId?: string }).correlationId ?? '';
        const settle = pending.get(id);
        pending.delete(id);
        settle?.(JSON.parse(message.content.toString('utf8')));
      },
      { noAck: true },
    );
    const content = envelopeBytes(true);
    const options = rawRequestOptions(kind);
    try {
      return await rpcWindow(
        () =>
          new Promise((resolve) => {
            const id = randomUUID();
            pending.set(id, resolve);
            channel.publish(rpcExchange.name, rpcKey, content, options(id));
          }),
        concurrency,
        sizes,
      );
    } finally {
      await model.close();
    }
  };
}

/** rabbitmq-client's RPCClient (the peer a user would pick instead). */
export function rpcPeer(concurrency: number): CaseFn {
  return async ({ url, sizes, rpcExchange, rpcKey }) => {
    const connection = new PeerConnection({ url, noDelay: true });
    connection.on('error', () => undefined);
    const client = connection.createRPCClient({ confirm: false });
    const body = JSON.parse(envelopeBytes(true).toString('utf8')) as unknown;
    try {
      return await rpcWindow(
        () =>
          client.send(
            { exchange: rpcExchange.name, routingKey: rpcKey, contentType: 'application/json' },
            body,
          ),
        concurrency,
        sizes,
      );
    } finally {
      await client.close();
      await connection.close();
    }
  };
}

/** Python postage's way: a private reply queue declared, consumed and cancelled per call. */
export const rpcPerCallQueue: CaseFn = async ({ url, sizes, rpcExchange, rpcKey }) => {
  const model = await connect(url, { noDelay: true });
  const channel = await model.createChannel();
  const content = envelopeBytes(true);
  const call = async (): Promise<unknown> => {
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    let resolveReply!: (body: unknown) => void;
    const reply = new Promise<unknown>((resolve) => (resolveReply = resolve));
    const { consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (message !== null) resolveReply(JSON.parse(message.content.toString('utf8')));
      },
      { noAck: true },
    );
    channel.publish(rpcExchange.name, rpcKey, content, { contentType: 'application/json', replyTo: queue });
    const body = await reply;
    await channel.cancel(consumerTag);
    return body;
  };
  try {
    return await rpcWindow(call, 1, sizes);
  } finally {
    await model.close();
  }
};

// ---------------------------------------------------------------- in-process broker

/** Producer to processor on memory://, confirms awaited in batches of 1000. */
export const memoryBroker: CaseFn = async ({ sizes }) => {
  const url = `memory://${uniqueName('memory').replace(/\./g, '-')}`;
  const exchange = benchExchange('bench-memory');
  const processor = new MessageProcessor({
    url,
    prefetch: 1000,
    eqk: [[exchange, [['bench-memory-q', 'memory']]]],
    fingerprint: FINGERPRINT,
  });
  let handled = 0;
  let target = BATCH;
  let done!: () => void;
  let batchDone = new Promise<void>((resolve) => (done = resolve));
  processor.registerHandler('command', 'bench', async () => {
    handled += 1;
    if (handled === target) done();
  });
  const producer = BenchProducer.create({ url, eks: [[exchange, 'memory']], fingerprint: FINGERPRINT });
  const sendBatch = (from: number): Promise<unknown> => {
    const batch: Promise<void>[] = [];
    for (let i = from; i < from + BATCH; i += 1) batch.push(producer.message_bench(payload(i)));
    return Promise.all(batch);
  };
  try {
    await processor.start();
    await sendBatch(0);
    await batchDone;
    handled = 0;
    target = sizes.memory;
    batchDone = new Promise<void>((resolve) => (done = resolve));
    const run = await timed(async () => {
      for (let i = 0; i < sizes.memory; i += BATCH) await sendBatch(i);
      await batchDone;
    });
    return { ops: sizes.memory, ms: run.ms, cpuUs: run.cpuUs };
  } finally {
    await producer.close();
    await processor.close();
  }
};
