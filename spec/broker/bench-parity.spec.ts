/**
 * The benchmark compares postage with raw amqplib publishing "the same message": this holds
 * the bench to it. What a queue receives from `message_bench()` / `rpc_bench()` and from the raw
 * cases' options must carry the same properties (ids differ, being fresh per message), so that
 * `vs raw` measures the client's cost and not a difference in what the broker is given.
 */
import type { Channel, ChannelModel, Options } from 'amqplib';

import {
  BenchProducer,
  FINGERPRINT,
  benchExchange,
  envelopeBytes,
  payload,
  rawPublishOptions,
  rawRequestOptions,
  RPC_TIMEOUT_S,
} from '../../bench/cases';
import { rawConnection, testUrl, uid } from '../helpers/broker';

type Properties = Record<string, unknown>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The properties a message arrived with, those left unset dropped. */
function received(properties: object): Properties {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined));
}

describe('benchmark parity (RabbitMQ)', () => {
  let model: ChannelModel;
  let channel: Channel;
  const exchange = benchExchange(uid('parity.x'));
  let queue: string;
  let arrivals: Properties[];
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
        arrivals.push(received(message.properties));
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

  /** Resolves once `count` messages have arrived in the queue. */
  async function arrivalsOf(count: number): Promise<Properties[]> {
    while (arrivals.length < count) await new Promise<void>((resolve) => (arrived = resolve));
    return arrivals;
  }

  /**
   * What postage publishes for one message_bench() or one rpc_bench(); the call is abandoned
   * (closing the producer settles it) once its request has arrived.
   */
  async function postageSends(rpc: boolean): Promise<Properties> {
    const producer = BenchProducer.create({
      url: testUrl(),
      eks: [[exchange, 'bench']],
      fingerprint: FINGERPRINT,
      rpcTimeout: RPC_TIMEOUT_S,
      maxRetry: 0,
    });
    await producer.connect();
    const sent = rpc ? producer.rpc_bench(payload(1)) : producer.message_bench(payload(0));
    try {
      return (await arrivalsOf(1))[0] as Properties;
    } finally {
      await producer.close();
      await sent.catch(() => undefined);
    }
  }

  /** What the raw case publishes with `options` (consuming direct reply-to first if it asks it). */
  async function rawSends(options: Options.Publish): Promise<Properties> {
    const raw = await model.createChannel();
    try {
      if (options.replyTo !== undefined) await raw.consume(options.replyTo, () => undefined, { noAck: true });
      raw.publish(exchange.name, 'bench', envelopeBytes(options.replyTo !== undefined), options);
      return (await arrivalsOf(1))[0] as Properties;
    } finally {
      await raw.close();
    }
  }

  it('message_bench() and the raw publish case send the same properties, ids fresh per message', async () => {
    const postage = await postageSends(false);
    arrivals = [];
    const raw = await rawSends(rawPublishOptions('same')());
    expect(postage['messageId']).toMatch(UUID);
    expect(raw['messageId']).toMatch(UUID);
    expect(raw['messageId']).not.toBe(postage['messageId']);
    expect({ ...raw, messageId: 'id' }).toEqual({ ...postage, messageId: 'id' });
  });

  it('rpc_bench() and the raw RPC case send the same request properties', async () => {
    const postage = await postageSends(true);
    arrivals = [];
    const raw = await rawSends(rawRequestOptions('same')('7d3f0b7e-2a61-4c4e-9d8e-6a2b9e1c0f55'));
    for (const request of [postage, raw]) {
      expect(request['messageId']).toMatch(UUID);
      expect(request['correlationId']).toBe(request['messageId']);
      // The broker rewrites direct reply-to into a per-channel address.
      expect(request['replyTo']).toMatch(/^amq\.rabbitmq\.reply-to\./);
    }
    const same = { messageId: 'id', correlationId: 'id', replyTo: 'reply-to' };
    expect({ ...raw, ...same }).toEqual({ ...postage, ...same });
  });

  it('the bare reference leaves out the message id and nothing else of the publish case', () => {
    const { messageId, ...rest } = rawPublishOptions('same')();
    expect(messageId).toMatch(UUID);
    expect(rawPublishOptions('bare')()).toEqual(rest);
  });
});
