/**
 * What a user would write instead of postage: a thin wrapper on an AMQP client that builds the
 * postage envelope per message (one `JSON.stringify`, a fresh `randomUUID` as message id, the
 * properties postage sends), parses every delivery and checks every RPC reply. On raw amqplib,
 * on @cloudamqp/amqp-client (the fastest Node client) and, for RPC, on rabbitmq-client's
 * `RPCClient`. The `send*` / `request*` functions are what the cases publish with, exported so
 * that spec/broker/bench-parity.spec.ts can hold them to what postage puts on the wire.
 */
import { randomUUID } from 'node:crypto';

import { AMQPClient, type AMQPChannel, type AMQPProperties } from '@cloudamqp/amqp-client';
import { connect, type Channel } from 'amqplib';
import { Connection as RmqConnection } from 'rabbitmq-client';

import { sampleOf, timed } from './common';
import {
  BATCH,
  declareRoute,
  drained,
  dropRoute,
  prefilled,
  rawSetup,
  rpcWindow,
  type CaseFn,
} from './harness';
import {
  RPC_TIMEOUT_MS,
  RPC_TIMEOUT_S,
  checkReply,
  checkResult,
  envelope,
  envelopeJson,
  payload,
  rawPublishOptions,
  rawRequestOptions,
} from './wire';

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

// ---------------------------------------------------------------- raw amqplib

const amqplibPublishOptions = rawPublishOptions('same');
const amqplibRequestOptions = rawRequestOptions('same');

/** One thin-wrapper publish on amqplib: the envelope of `payload(i)`, a fresh message id. */
export function sendAmqplib(channel: Channel, exchange: string, key: string, i: number): boolean {
  return channel.publish(exchange, key, envelope('message', payload(i)), amqplibPublishOptions());
}

/** One thin-wrapper RPC request on amqplib, `id` as message and correlation id. */
export function requestAmqplib(
  channel: Channel,
  exchange: string,
  key: string,
  i: number,
  id: string,
): boolean {
  return channel.publish(exchange, key, envelope('rpc', payload(i)), amqplibRequestOptions(id));
}

/** amqplib's confirm channel, the envelope built per message, waitForConfirms every 1000. */
export const publishAmqplib: CaseFn = async ({ url, sizes }) => {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'publish');
  const { model, channel } = await rawSetup(url);
  const exchange = route.exchange.name;
  const sendBatch = async (from: number): Promise<void> => {
    for (let i = from; i < from + BATCH; i += 1) {
      if (!sendAmqplib(channel, exchange, 'publish', i)) await drained(channel);
    }
    await channel.waitForConfirms();
  };
  try {
    await sendBatch(0);
    const run = await timed(async () => {
      for (let i = 0; i < sizes.publish; i += BATCH) await sendBatch(i);
    });
    return sampleOf(sizes.publish, run);
  } finally {
    await model.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
};

/** amqplib consume, JSON.parse of every delivery, ack. */
export function consumeAmqplib(prefetch: number): CaseFn {
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
      return sampleOf(sizes.consume, run);
    } finally {
      await model.close();
      await dropRoute(admin.channel, route);
      await admin.model.close();
    }
  };
}

/** An RPC call's settlement, kept by correlation id until its reply arrives. */
interface Waiting {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Settles the call waiting for `id` with the checked reply `text`. */
function settleReply(pending: Map<string, Waiting>, id: string | undefined, text: string): void {
  if (id === undefined) return;
  const waiting = pending.get(id);
  if (waiting === undefined) return;
  pending.delete(id);
  try {
    waiting.resolve(checkReply(text));
  } catch (err) {
    waiting.reject(err);
  }
}

/**
 * amqplib with direct reply-to on a plain channel: per call a fresh id, the envelope built, the
 * reply parsed and checked.
 */
export function rpcAmqplib(concurrency: number): CaseFn {
  return async ({ url, sizes, rpcExchange, rpcKey }) => {
    const model = await connect(url, { noDelay: true });
    const channel = await model.createChannel();
    const pending = new Map<string, Waiting>();
    await channel.consume(
      DIRECT_REPLY_TO,
      (message) => {
        if (message === null) return;
        const id = (message.properties as { correlationId?: string }).correlationId;
        settleReply(pending, id, message.content.toString('utf8'));
      },
      { noAck: true },
    );
    let n = 0;
    try {
      return await rpcWindow(
        () =>
          new Promise((resolve, reject) => {
            const id = randomUUID();
            pending.set(id, { resolve, reject });
            n += 1;
            requestAmqplib(channel, rpcExchange.name, rpcKey, n, id);
          }),
        concurrency,
        sizes,
      );
    } finally {
      await model.close();
    }
  };
}

// ---------------------------------------------------------------- @cloudamqp/amqp-client

/** A connection of @cloudamqp/amqp-client's low-level API, with Nagle off as every other client's. */
export async function cloudamqpConnect(url: string): Promise<AMQPClient> {
  const client = new AMQPClient(url);
  await client.connect();
  client.socket?.setNoDelay(true);
  return client;
}

/**
 * The publish properties postage sends (mandatory is basicPublish's argument in this client).
 * An empty headers table too: postage (as amqplib) always sends one, and a content header's
 * size is what the broker's cost follows (PROPOSALS.md, round 4).
 */
function cloudamqpPublishProperties(): AMQPProperties {
  return {
    contentType: 'application/json',
    headers: {},
    messageId: randomUUID(),
    deliveryMode: 1,
    type: 'command',
  };
}

/** The RPC request properties postage sends, `id` as message and correlation id. */
function cloudamqpRequestProperties(id: string): AMQPProperties {
  return {
    contentType: 'application/json',
    headers: {},
    messageId: id,
    deliveryMode: 1,
    type: 'command',
    replyTo: DIRECT_REPLY_TO,
    correlationId: id,
    expiration: RPC_TIMEOUT_MS,
  };
}

/** One thin-wrapper publish on @cloudamqp/amqp-client; resolves once confirmed (confirm mode). */
export function sendCloudamqp(
  channel: AMQPChannel,
  exchange: string,
  key: string,
  i: number,
): Promise<number> {
  return channel.basicPublish(
    exchange,
    key,
    envelopeJson('message', payload(i)),
    cloudamqpPublishProperties(),
    true,
  );
}

/** One thin-wrapper RPC request on @cloudamqp/amqp-client. */
export function requestCloudamqp(
  channel: AMQPChannel,
  exchange: string,
  key: string,
  i: number,
  id: string,
): Promise<number> {
  return channel.basicPublish(
    exchange,
    key,
    envelopeJson('rpc', payload(i)),
    cloudamqpRequestProperties(id),
    true,
  );
}

/** @cloudamqp/amqp-client in confirm mode, the envelope built per message, confirms awaited per 1000. */
export const publishCloudamqp: CaseFn = async ({ url, sizes }) => {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'publish');
  const client = await cloudamqpConnect(url);
  const exchange = route.exchange.name;
  try {
    const channel = await client.channel();
    await channel.confirmSelect();
    const sendBatch = async (from: number): Promise<void> => {
      const batch: Promise<number>[] = [];
      for (let i = from; i < from + BATCH; i += 1) batch.push(sendCloudamqp(channel, exchange, 'publish', i));
      await Promise.all(batch);
    };
    await sendBatch(0);
    const run = await timed(async () => {
      for (let i = 0; i < sizes.publish; i += BATCH) await sendBatch(i);
    });
    return sampleOf(sizes.publish, run);
  } finally {
    await client.close();
    await dropRoute(admin.channel, route);
    await admin.model.close();
  }
};

/** @cloudamqp/amqp-client consume, JSON.parse of every delivery, ack. */
export function consumeCloudamqp(prefetch: number): CaseFn {
  return async ({ url, sizes }) => {
    const { admin, route } = await prefilled(url, sizes.consume);
    const client = await cloudamqpConnect(url);
    let handled = 0;
    let done!: () => void;
    let failed!: (err: unknown) => void;
    const all = new Promise<void>((resolve, reject) => {
      done = resolve;
      failed = reject;
    });
    try {
      const channel = await client.channel();
      await channel.prefetch(prefetch);
      const run = await timed(async () => {
        await channel.basicConsume(route.queue, { noAck: false }, (message) => {
          const body = JSON.parse(message.bodyString() ?? '') as {
            content: { parameters: { order: number } };
          };
          handled += body.content.parameters.order >= 0 ? 1 : 0;
          message.ack().catch(failed);
          if (handled === sizes.consume) done();
        });
        await all;
      });
      return sampleOf(sizes.consume, run);
    } finally {
      await client.close();
      await dropRoute(admin.channel, route);
      await admin.model.close();
    }
  };
}

/** @cloudamqp/amqp-client with direct reply-to on a plain channel, as rpcAmqplib. */
export function rpcCloudamqp(concurrency: number): CaseFn {
  return async ({ url, sizes, rpcExchange, rpcKey }) => {
    const client = await cloudamqpConnect(url);
    const pending = new Map<string, Waiting>();
    let n = 0;
    try {
      const channel = await client.channel();
      await channel.basicConsume(DIRECT_REPLY_TO, { noAck: true }, (message) => {
        settleReply(pending, message.properties.correlationId, message.bodyString() ?? '');
      });
      return await rpcWindow(
        () =>
          new Promise((resolve, reject) => {
            const id = randomUUID();
            pending.set(id, { resolve, reject });
            n += 1;
            requestCloudamqp(channel, rpcExchange.name, rpcKey, n, id).catch(reject);
          }),
        concurrency,
        sizes,
      );
    } finally {
      await client.close();
    }
  };
}

// ---------------------------------------------------------------- rabbitmq-client

/**
 * rabbitmq-client's `RPCClient`, given postage's properties (its own correlation id and the
 * timeout as TTL, which it sets itself); it serialises nothing here: the body is the envelope's
 * JSON, the reply parsed by the client (JSON content type) and checked.
 */
export function rpcRabbitmqClient(concurrency: number): CaseFn {
  return async ({ url, sizes, rpcExchange, rpcKey }) => {
    const connection = new RmqConnection({ url, noDelay: true });
    connection.on('error', () => undefined);
    const client = connection.createRPCClient({ confirm: false, timeout: RPC_TIMEOUT_S * 1000 });
    let n = 0;
    try {
      return await rpcWindow(
        async () => {
          n += 1;
          const reply = await client.send(
            {
              exchange: rpcExchange.name,
              routingKey: rpcKey,
              contentType: 'application/json',
              messageId: randomUUID(),
              type: 'command',
              mandatory: true,
              durable: false,
            },
            envelopeJson('rpc', payload(n)),
          );
          return checkResult(reply.body);
        },
        concurrency,
        sizes,
      );
    } finally {
      await client.close();
      await connection.close();
    }
  };
}
