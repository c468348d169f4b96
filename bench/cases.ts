/**
 * postage's cases, the raw amqplib references that publish pre-made bytes (the rows of earlier
 * rounds) and the in-process broker. Each case sets up outside its timed window, measures one
 * run and tears down, and returns a {@link Sample}. The thin wrappers a user would write instead
 * (amqplib, @cloudamqp/amqp-client, rabbitmq-client) are in peers.ts.
 */
import { randomUUID } from 'node:crypto';

import { connect } from 'amqplib';

import { MessageProcessor } from '../lib';
import { sampleOf, timed, uniqueName } from './common';
import {
  BATCH,
  declareRoute,
  dropRoute,
  prefilled,
  drained,
  rawSetup,
  rpcWindow,
  type CaseFn,
} from './harness';
import {
  BenchProducer,
  FINGERPRINT,
  RPC_TIMEOUT_S,
  benchExchange,
  envelopeBytes,
  payload,
  rawPublishOptions,
  rawRequestOptions,
} from './wire';

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
    return sampleOf(sizes.publish, run);
  } finally {
    await producer.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
};

/**
 * Raw amqplib confirm channel publishing pre-made bytes of the same message (the reference of
 * earlier rounds; the thin wrapper is peers.ts's publishAmqplib), waitForConfirms every 1000.
 */
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
          if (!channel.publish(route.exchange.name, 'publish', content, options())) await drained(channel);
        }
        await channel.waitForConfirms();
      };
      await sendBatch();
      const run = await timed(async () => {
        for (let i = 0; i < sizes.publish; i += BATCH) await sendBatch();
      });
      return sampleOf(sizes.publish, run);
    } finally {
      await model.close();
      await dropRoute(admin.channel, route);
      await admin.model.close();
    }
  };
}

// ---------------------------------------------------------------- consume

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
      return sampleOf(sizes.consume, run);
    } finally {
      await processor.close();
      await dropRoute(admin.channel, route);
      await admin.model.close();
    }
  };
}

// ---------------------------------------------------------------- RPC

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
    let n = 0;
    try {
      await producer.connect();
      return await rpcWindow(
        async () => {
          n += 1;
          const reply = await producer.rpc_bench(payload(n));
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
 * Raw amqplib with direct reply-to on a plain channel, correlation ids in a Map, sending pre-made
 * bytes (the reference of earlier rounds; the thin wrapper is peers.ts's rpcAmqplib).
 */
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
    return sampleOf(sizes.memory, run);
  } finally {
    await producer.close();
    await processor.close();
  }
};
