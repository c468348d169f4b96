/**
 * The benchmark compares postage with clients publishing "the same message": this holds the
 * bench to it. What a queue receives from `message_bench()` / `rpc_bench()` and from every other
 * case's publish (raw amqplib with pre-made bytes, and the thin wrappers on amqplib and
 * @cloudamqp/amqp-client that build the envelope per message) must carry the same body bytes and
 * the same properties (ids differ, being fresh per message), so that a ratio measures the
 * client's cost and not a difference in what the broker is given.
 */
import { AMQPClient } from '@cloudamqp/amqp-client';
import type { Channel, ChannelModel, Options } from 'amqplib';

import { requestAmqplib, requestCloudamqp, sendAmqplib, sendCloudamqp } from '../../bench/peers';
import {
  BenchProducer,
  FINGERPRINT,
  RPC_TIMEOUT_S,
  benchExchange,
  envelope,
  envelopeBytes,
  payload,
  rawPublishOptions,
  rawRequestOptions,
} from '../../bench/wire';
import { rawConnection, testUrl, uid } from '../helpers/broker';

type Properties = Record<string, unknown>;

/** What arrived in the queue: the body as text and the properties that were set. */
interface Arrival {
  body: string;
  properties: Properties;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ID = '7d3f0b7e-2a61-4c4e-9d8e-6a2b9e1c0f55';
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** The properties a message arrived with, those left unset dropped. */
function received(properties: object): Properties {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined));
}

/** Properties with their fresh ids (and the broker's per-channel reply address) made equal. */
function normalised(properties: Properties): Properties {
  const out: Properties = { ...properties, messageId: 'id' };
  if (out['correlationId'] !== undefined) out['correlationId'] = 'id';
  if (out['replyTo'] !== undefined) out['replyTo'] = 'reply-to';
  return out;
}

describe('benchmark parity (RabbitMQ)', () => {
  let model: ChannelModel;
  let channel: Channel;
  const exchange = benchExchange(uid('parity.x'));
  let queue: string;
  let arrivals: Arrival[];
  let arrived: (() => void) | undefined;

  beforeAll(async () => {
    model = await rawConnection();
    channel = await model.createChannel();
    await channel.assertExchange(exchange.name, 'direct', { durable: false, autoDelete: false });
    queue = (await channel.assertQueue('', { exclusive: true })).queue;
    await channel.bindQueue(queue, exchange.name, 'bench');
    await channel.consume(
      queue,
      (message) => {
        if (message === null) return;
        arrivals.push({ body: message.content.toString('utf8'), properties: received(message.properties) });
        arrived?.();
      },
      { noAck: true },
    );
  });

  afterAll(async () => {
    await channel.deleteExchange(exchange.name);
    await model.close();
  });

  beforeEach(() => {
    arrivals = [];
  });

  /** Resolves with the first arrival once one has arrived in the queue, and clears the list. */
  async function nextArrival(): Promise<Arrival> {
    while (arrivals.length < 1) await new Promise<void>((resolve) => (arrived = resolve));
    const [first] = arrivals;
    arrivals = [];
    return first as Arrival;
  }

  /**
   * What postage publishes for one message_bench(payload(i)) or one rpc_bench(payload(i)); the
   * call is abandoned (closing the producer settles it) once its request has arrived.
   */
  async function postageSends(rpc: boolean, i: number): Promise<Arrival> {
    const producer = BenchProducer.create({
      url: testUrl(),
      eks: [[exchange, 'bench']],
      fingerprint: FINGERPRINT,
      rpcTimeout: RPC_TIMEOUT_S,
      maxRetry: 0,
    });
    await producer.connect();
    const sent = rpc ? producer.rpc_bench(payload(i)) : producer.message_bench(payload(i));
    try {
      return await nextArrival();
    } finally {
      await producer.close();
      await sent.catch(() => undefined);
    }
  }

  /** What a raw amqplib channel sends with `publish` (consuming direct reply-to first if `rpc`). */
  async function amqplibSends(rpc: boolean, publish: (raw: Channel) => void): Promise<Arrival> {
    const raw = await model.createChannel();
    try {
      if (rpc) await raw.consume(DIRECT_REPLY_TO, () => undefined, { noAck: true });
      publish(raw);
      return await nextArrival();
    } finally {
      await raw.close();
    }
  }

  /** The pre-made bytes of the reference rows, published with `options`. */
  function rawSends(options: Options.Publish): Promise<Arrival> {
    const rpc = options.replyTo !== undefined;
    return amqplibSends(rpc, (raw) => raw.publish(exchange.name, 'bench', envelopeBytes(rpc), options));
  }

  /** What @cloudamqp/amqp-client sends with `publish` (consuming direct reply-to first if `rpc`). */
  async function cloudamqpSends(
    rpc: boolean,
    publish: (ch: Awaited<ReturnType<AMQPClient['channel']>>) => Promise<unknown>,
  ): Promise<Arrival> {
    const client = new AMQPClient(testUrl());
    await client.connect();
    try {
      const ch = await client.channel();
      if (rpc) await ch.basicConsume(DIRECT_REPLY_TO, { noAck: true }, () => undefined);
      await publish(ch);
      return await nextArrival();
    } finally {
      await client.close();
    }
  }

  it('message_bench() sends the envelope the thin wrappers build, and the pre-made bytes are its payload(0)', async () => {
    const postage = await postageSends(false, 7);
    expect(postage.body).toBe(envelope('message', payload(7)).toString('utf8'));
    expect(JSON.parse(postage.body)).toMatchObject({ fingerprint: FINGERPRINT.asDict() });
    const zero = await postageSends(false, 0);
    expect(zero.body).toBe(envelopeBytes(false).toString('utf8'));
  });

  it('rpc_bench() sends the envelope the thin wrappers build', async () => {
    const postage = await postageSends(true, 3);
    expect(postage.body).toBe(envelope('rpc', payload(3)).toString('utf8'));
    const zero = await postageSends(true, 0);
    expect(zero.body).toBe(envelopeBytes(true).toString('utf8'));
  });

  it('every publish case sends what message_bench() sends: body and properties, ids fresh per message', async () => {
    const postage = await postageSends(false, 5);
    const peers: Record<string, Arrival> = {
      raw: await rawSends(rawPublishOptions('same')()),
      amqplib: await amqplibSends(false, (raw) => sendAmqplib(raw, exchange.name, 'bench', 5)),
      cloudamqp: await cloudamqpSends(false, (ch) => sendCloudamqp(ch, exchange.name, 'bench', 5)),
    };
    expect(postage.properties['messageId']).toMatch(UUID);
    for (const [name, peer] of Object.entries(peers)) {
      expect([name, peer.properties['messageId']]).toEqual([name, expect.stringMatching(UUID)]);
      expect(peer.properties['messageId']).not.toBe(postage.properties['messageId']);
      expect([name, normalised(peer.properties)]).toEqual([name, normalised(postage.properties)]);
    }
    expect(peers['amqplib']?.body).toBe(postage.body);
    expect(peers['cloudamqp']?.body).toBe(postage.body);
  });

  it('every RPC case sends the request rpc_bench() sends: body and properties', async () => {
    const postage = await postageSends(true, 4);
    const peers: Record<string, Arrival> = {
      raw: await rawSends(rawRequestOptions('same')(ID)),
      amqplib: await amqplibSends(true, (raw) => requestAmqplib(raw, exchange.name, 'bench', 4, ID)),
      cloudamqp: await cloudamqpSends(true, (ch) => requestCloudamqp(ch, exchange.name, 'bench', 4, ID)),
    };
    for (const request of [postage, ...Object.values(peers)]) {
      expect(request.properties['messageId']).toMatch(UUID);
      expect(request.properties['correlationId']).toBe(request.properties['messageId']);
      // The broker rewrites direct reply-to into a per-channel address.
      expect(request.properties['replyTo']).toMatch(/^amq\.rabbitmq\.reply-to\./);
    }
    for (const [name, peer] of Object.entries(peers)) {
      expect([name, normalised(peer.properties)]).toEqual([name, normalised(postage.properties)]);
    }
    expect(peers['amqplib']?.body).toBe(postage.body);
    expect(peers['cloudamqp']?.body).toBe(postage.body);
  });

  it('the bare reference leaves out the message id and nothing else of the publish case', () => {
    const { messageId, ...rest } = rawPublishOptions('same')();
    expect(messageId).toMatch(UUID);
    expect(rawPublishOptions('bare')()).toEqual(rest);
  });
});
