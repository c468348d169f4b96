/**
 * The amqp transport's own publish encoding and its batched socket writes, against RabbitMQ:
 * what a consumer receives is what was published, confirms, returns, back-pressure and a closed
 * channel behave as amqplib's, and a burst of publishes leaves in a few system calls.
 */
import { once } from 'node:events';

import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';

import { Connection } from '../../lib/connection/connection';
import { FAST_PUBLISH, batchSocketWrites } from '../../lib/transport/amqp/amqp-transport';
import type { PublishOptions, TransportChannel, TransportMessage } from '../../lib/transport/types';
import { rawConnection, testUrl, uid, withRawChannel } from '../helpers/broker';

/** A fresh queue (expires a minute after its last use). */
async function queue(): Promise<string> {
  const name = uid('fast');
  await withRawChannel((ch) => ch.assertQueue(name, { durable: false, arguments: { 'x-expires': 60_000 } }));
  return name;
}

/** Reads every message of a queue with basic.get, oldest first. */
async function readAll(name: string, expected: number): Promise<TransportMessage[]> {
  return withRawChannel(async (ch: Channel) => {
    const out: TransportMessage[] = [];
    const deadline = Date.now() + 10_000;
    while (out.length < expected && Date.now() < deadline) {
      const message = await ch.get(name, { noAck: true });
      if (message === false) await new Promise((r) => setTimeout(r, 20));
      else out.push(message as unknown as TransportMessage);
    }
    return out;
  });
}

/** Publishes on a confirm channel and waits for the confirm. */
function confirmed(
  channel: TransportChannel,
  exchange: string,
  key: string,
  content: Buffer,
  options: PublishOptions,
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(exchange, key, content, options, (err) => (err ? reject(err as Error) : resolve()));
  });
}

describe('fast publish (RabbitMQ)', () => {
  let connection: Connection;

  beforeEach(() => {
    connection = new Connection({ url: testUrl() });
  });

  afterEach(async () => {
    await connection.close();
  });

  it("amqp transport - postage's plain and confirm channels publish through its own encoder", async () => {
    const plain = await connection.createChannel(false);
    const confirm = await connection.createChannel(true);
    expect((plain as unknown as Record<symbol, unknown>)[FAST_PUBLISH]).toBe(true);
    expect((confirm as unknown as Record<symbol, unknown>)[FAST_PUBLISH]).toBe(true);
  });

  it('amqp transport - every property it encodes arrives as sent, and what it leaves to amqplib too', async () => {
    const channel = await connection.createChannel(true);
    const name = await queue();
    const content = Buffer.from(JSON.stringify({ text: 'héllo ✓' }));
    const full: PublishOptions = {
      contentType: 'application/json',
      contentEncoding: 'identity',
      deliveryMode: 2,
      priority: 3,
      correlationId: 'c-1',
      replyTo: 'somewhere',
      expiration: '60000',
      messageId: 'идентификатор-1',
      timestamp: 1_764_500_000,
      type: 'command',
      userId: 'guest', // RabbitMQ checks it against the connection's user
      appId: 'postage',
      mandatory: true,
    };
    const big = Buffer.alloc(300_000, 'x'); // more than one frame: amqplib splits it
    await confirmed(channel, '', name, content, full);
    await confirmed(channel, '', name, content, { headers: { 'x-kept': 'yes', n: 7 } });
    await confirmed(channel, '', name, big, { messageId: 'big' });
    await confirmed(channel, '', name, Buffer.alloc(0), { messageId: 'empty' });
    await confirmed(channel, '', name, content, { persistent: true, expiration: 5000 as unknown as string });

    const [first, second, third, fourth, fifth] = await readAll(name, 5);
    const { mandatory: _flag, ...properties } = full;
    expect(first?.properties).toMatchObject({ ...properties, headers: {} });
    expect(first?.content.equals(content)).toBe(true);
    expect(first?.fields.routingKey).toBe(name);
    expect(second?.properties.headers).toEqual({ 'x-kept': 'yes', n: 7 });
    expect(third?.content.equals(big)).toBe(true);
    expect(fourth?.content.length).toBe(0);
    expect(fourth?.properties.messageId).toBe('empty');
    expect(fifth?.properties).toMatchObject({ deliveryMode: 2, expiration: '5000' });
  });

  it('amqp transport - a UTF-8 exchange and routing key route as on amqplib', async () => {
    const channel = await connection.createChannel(true);
    const name = await queue();
    const exchange = uid('échange');
    const key = 'clé.ключ.✓';
    await withRawChannel(async (ch) => {
      await ch.assertExchange(exchange, 'direct', { durable: false, autoDelete: true });
      await ch.bindQueue(name, exchange, key);
    });
    await confirmed(channel, exchange, key, Buffer.from('routed'), { mandatory: true });
    const [message] = await readAll(name, 1);
    expect(message?.fields).toMatchObject({ exchange, routingKey: key });
    expect(message?.content.toString()).toBe('routed');
  });

  it('amqp transport - every publish is confirmed once; an unroutable mandatory one is returned, then confirmed', async () => {
    const channel = await connection.createChannel(true);
    const name = await queue();
    const returned: TransportMessage[] = [];
    channel.on('return', (message) => returned.push(message));
    const order: number[] = [];
    const all: Array<Promise<void>> = [];
    for (let i = 0; i < 200; i++) {
      const key = i === 100 ? uid('nowhere') : name;
      all.push(
        new Promise((resolve, reject) => {
          channel.publish('', key, Buffer.from(String(i)), { mandatory: true, messageId: `m${i}` }, (err) => {
            order.push(i);
            if (err) reject(err as Error);
            else resolve();
          });
        }),
      );
    }
    await Promise.all(all);
    // RabbitMQ confirms a returned publish at once, before earlier ones its queue still holds.
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(returned.map((m) => m.properties.messageId)).toEqual(['m100']);
    expect(await readAll(name, 199)).toHaveLength(199);
  });

  it("amqp transport - a publish on a closed channel throws amqplib's error", async () => {
    const channel = await connection.createChannel(false);
    await channel.close();
    expect(() => channel.publish('', 'q', Buffer.from('late'), {})).toThrow(/closed/i);
  });

  it('amqp transport - a full write buffer says so, and drains', async () => {
    const channel = await connection.createChannel(false);
    const name = await queue();
    const content = Buffer.alloc(2_000, 'y');
    let refused = 0;
    for (let i = 0; i < 3_000; i++) {
      if (!channel.publish('', name, content, {})) refused++;
    }
    expect(refused).toBeGreaterThan(0);
    await once(channel as unknown as NodeJS.EventEmitter, 'drain');
    expect(await readAll(name, 3_000)).toHaveLength(3_000);
  });
});

/** Counts the socket writes (system calls) of an amqplib connection from now on. */
function countSocketWrites(model: unknown): { readonly count: number } {
  const socket = (model as { connection: { stream: Record<string, unknown> } }).connection.stream;
  const counter = { count: 0 };
  for (const method of ['_write', '_writev']) {
    const original = socket[method] as (...a: unknown[]) => unknown;
    socket[method] = function (this: unknown, ...a: unknown[]): unknown {
      counter.count++;
      return original.apply(this, a);
    };
  }
  return counter;
}

describe('batched socket writes (RabbitMQ)', () => {
  /** Socket writes (system calls) for 500 publishes made in one turn on a confirm channel. */
  async function socketWrites(batched: boolean): Promise<{ writes: number; received: number }> {
    const model: ChannelModel = await rawConnection();
    try {
      if (batched) expect(batchSocketWrites(model)).toBe(true);
      const channel: ConfirmChannel = await model.createConfirmChannel();
      const name = await queue();
      const writes = countSocketWrites(model);
      for (let i = 0; i < 500; i++) channel.sendToQueue(name, Buffer.from(`message ${i}`), {});
      await channel.waitForConfirms();
      const counted = writes.count;
      return { writes: counted, received: (await readAll(name, 500)).length };
    } finally {
      await model.close().catch(() => undefined);
    }
  }

  it("amqp transport - postage's own connections batch their socket writes", async () => {
    const connection = new Connection({ url: testUrl() });
    try {
      const writes = countSocketWrites(await connection.open());
      const channel = await connection.createChannel(true);
      const name = await queue();
      const before = writes.count;
      const confirms: Array<Promise<void>> = [];
      for (let i = 0; i < 500; i++) {
        confirms.push(confirmed(channel, '', name, Buffer.from(`message ${i}`), { messageId: `m${i}` }));
      }
      await Promise.all(confirms);
      expect(writes.count - before).toBeLessThanOrEqual(20);
      expect(await readAll(name, 500)).toHaveLength(500);
    } finally {
      await connection.close();
    }
  });

  it('amqp transport - a burst of publishes leaves in a few socket writes, all of them delivered', async () => {
    const batched = await socketWrites(true);
    expect(batched.received).toBe(500);
    expect(batched.writes).toBeLessThanOrEqual(20);
    // amqplib alone makes one write per publish: what the batching is for.
    const plain = await socketWrites(false);
    expect(plain.received).toBe(500);
    expect(plain.writes).toBeGreaterThanOrEqual(250);
  });
});
