/**
 * What the in-process broker does beyond the contract suite: the faults it can cause for tests,
 * limits, and the corners of TTL, queue expiry and routing. No RabbitMQ needed.
 */
import {
  Connection,
  ErrorCode,
  GenericProducer,
  MemoryBroker,
  type ConnectionStatus,
  type Encoder,
  type ExchangeDefinition,
  type MessageBody,
} from '../../lib';
import { Deque } from '../../lib/transport/memory/deque';
import { headersMatch, topicMatches } from '../../lib/transport/memory/exchange';
import { memoryTransport } from '../../lib/transport/memory';
import type { TransportChannel, TransportMessage } from '../../lib/transport/types';

let n = 0;
const brokerName = (): string => `unit-${process.pid}-${++n}`;

async function open(name: string, confirm = false): Promise<TransportChannel> {
  const connection = await memoryTransport.connect(
    { protocol: 'memory', host: name, port: 0, vhost: '/', user: '', password: '' },
    { heartbeat: 0, connectTimeout: 0, connectionName: 'unit' },
  );
  connection.on('error', () => undefined);
  const ch = confirm ? await connection.createConfirmChannel() : await connection.createChannel();
  ch.on('error', () => undefined);
  return ch;
}

function publish(
  ch: TransportChannel,
  exchange: string,
  key: string,
  body: string,
  options = {},
): Promise<unknown> {
  return new Promise((resolve) =>
    ch.publish(exchange, key, Buffer.from(body), options, (err) => resolve(err)),
  );
}

const ex: ExchangeDefinition = {
  name: 'ex',
  exchange_type: 'direct',
  passive: false,
  durable: true,
  auto_delete: false,
};

describe('in-process broker', () => {
  afterAll(() => MemoryBroker.resetAll());

  test('memory broker - closeAllConnections: clients see CONNECTION_FORCED and a disconnected status', async () => {
    const name = brokerName();
    const connection = new Connection({ url: `memory://${name}` });
    const statuses: ConnectionStatus['type'][] = [];
    connection.on('status', (s) => statuses.push(s.type));
    connection.on('error', () => undefined);
    await connection.createChannel(true);
    MemoryBroker.named(name).closeAllConnections();
    expect(statuses).toContain('disconnected');
    expect(connection.isOpen).toBe(false);
    await connection.close();
  });

  test('memory broker - restart keeps durable queues and their persistent messages only', async () => {
    const name = brokerName();
    const ch = await open(name, true);
    await ch.assertQueue('durable-q', { durable: true });
    await ch.assertQueue('transient-q', { durable: false });
    await publish(ch, '', 'durable-q', 'kept', { persistent: true });
    await publish(ch, '', 'durable-q', 'lost');
    await publish(ch, '', 'transient-q', 'gone', { persistent: true });
    const broker = MemoryBroker.named(name);
    broker.restart();
    expect(broker.queue('transient-q')).toBeUndefined();
    expect(broker.peek('durable-q').map((m) => m.content.toString())).toEqual(['kept']);
    expect(() => ch.publish('', 'durable-q', Buffer.from('x'))).toThrow(/closed/i);
  });

  test('memory broker - a resource alarm blocks publishers until it clears; nothing is lost', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const connection = new Connection({ url: `memory://${name}` });
    const statuses: ConnectionStatus['type'][] = [];
    connection.on('status', (s) => statuses.push(s.type));
    const ch = await connection.createChannel(true);
    await ch.assertQueue('q', { durable: false });
    broker.setAlarm('memory');
    let confirmed = false;
    const pending = publish(ch, '', 'q', 'waits').then(() => (confirmed = true));
    await broker.idle();
    expect(confirmed).toBe(false);
    expect(broker.queue('q')?.messages).toBe(0);
    broker.setAlarm(undefined);
    await pending;
    expect(broker.queue('q')?.messages).toBe(1);
    expect(statuses).toEqual(['connected', 'blocked', 'unblocked']);
    await connection.close();
  });

  test('memory broker - publishes held by an alarm and one made as it clears keep their order and confirms', async () => {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const connection = await memoryTransport.connect(
      { protocol: 'memory', host: name, port: 0, vhost: '/', user: '', password: '' },
      { heartbeat: 0, connectTimeout: 0, connectionName: 'unit' },
    );
    const ch = await connection.createConfirmChannel();
    await ch.assertQueue('order-q', { durable: false });
    const confirmed: string[] = [];
    const send = (body: string): Promise<void> =>
      new Promise((resolve) =>
        ch.publish('', 'order-q', Buffer.from(body), {}, (err) => {
          confirmed.push(`${body}:${err === null ? 'ack' : 'nack'}`);
          resolve();
        }),
      );
    broker.setAlarm('memory');
    const held = [send('held-1'), send('held-2')];
    let late: Promise<void> | undefined;
    connection.on('unblocked', () => (late = send('on-unblocked')));
    broker.setAlarm(undefined);
    await Promise.all([...held, late]);
    expect(broker.peek('order-q').map((m) => m.content.toString())).toEqual([
      'held-1',
      'held-2',
      'on-unblocked',
    ]);
    expect(confirmed).toEqual(['held-1:ack', 'held-2:ack', 'on-unblocked:ack']);
    await connection.close();
  });

  test('memory broker - an unreachable broker fails the connection with CONNECTION_FAILED', async () => {
    const name = brokerName();
    MemoryBroker.named(name).unreachable = true;
    class P extends GenericProducer<{ x: void }> {
      static override eks = [[ex, 'k']] as const;
    }
    // The first connection is retried with backoff until connectTimeout runs out.
    const producer = P.create({ url: `memory://${name}`, connectTimeout: 300 });
    await expect(producer.message_x()).rejects.toMatchObject({ code: ErrorCode.CONNECTION_FAILED });
    await producer.close();
  });

  test('memory broker - a message over max_message_size closes the channel with PRECONDITION_FAILED', async () => {
    const name = 'small-' + brokerName();
    MemoryBroker.named(name, { maxMessageSize: 1000 });
    class P extends GenericProducer<{ big: string }> {
      static override eks = [[ex, 'k']] as const;
    }
    const producer = P.create({ url: `memory://${name}` });
    await expect(producer.message_big('x'.repeat(2000))).rejects.toMatchObject({
      code: ErrorCode.PRECONDITION_FAILED,
    });
    await producer.close();
  });

  test('memory broker - TTL 0 reaches a waiting consumer, and is dead-lettered at once without one', async () => {
    const name = brokerName();
    const ch = await open(name, true);
    await ch.assertExchange('dlx', 'fanout', { durable: false });
    await ch.assertQueue('dlq', { durable: false });
    await ch.bindQueue('dlq', 'dlx', '');
    await ch.assertQueue('q', { durable: false, messageTtl: 0, deadLetterExchange: 'dlx' });
    await publish(ch, '', 'q', 'nobody waits');
    const broker = MemoryBroker.named(name);
    expect(broker.peek('dlq').map((m) => m.content.toString())).toEqual(['nobody waits']);
    const got: TransportMessage[] = [];
    await ch.consume('q', (m) => m && got.push(m), { noAck: true });
    await publish(ch, '', 'q', 'taken');
    await broker.idle();
    expect(got.map((m) => m.content.toString())).toEqual(['taken']);
  });

  test('memory broker - x-expires deletes a queue left unused', async () => {
    const name = brokerName();
    const ch = await open(name);
    await ch.assertQueue('short-lived', { durable: false, expires: 20 });
    const broker = MemoryBroker.named(name);
    expect(broker.queue('short-lived')).toBeDefined();
    await new Promise((r) => setTimeout(r, 60));
    expect(broker.queue('short-lived')).toBeUndefined();
  });

  test('memory broker - x-max-length-bytes and reject-publish-dlx', async () => {
    const name = brokerName();
    const ch = await open(name, true);
    await ch.assertExchange('dlx', 'fanout', { durable: false });
    await ch.assertQueue('dlq', { durable: false });
    await ch.bindQueue('dlq', 'dlx', '');
    await ch.assertQueue('q', {
      durable: false,
      deadLetterExchange: 'dlx',
      arguments: { 'x-max-length-bytes': 10, 'x-overflow': 'reject-publish-dlx' },
    });
    expect(await publish(ch, '', 'q', '12345')).toBeNull();
    expect(await publish(ch, '', 'q', '67890')).toBeNull();
    expect(String(await publish(ch, '', 'q', 'overflow'))).toMatch(/nack/);
    const broker = MemoryBroker.named(name);
    expect(broker.peek('q').map((m) => m.content.toString())).toEqual(['12345', '67890']);
    expect(broker.peek('dlq')[0]?.properties.headers?.['x-death']).toEqual([
      expect.objectContaining({ reason: 'maxlen' }),
    ]);
  });

  test('memory broker - a quorum queue must be durable; invalid arguments are 406', async () => {
    const ch = await open(brokerName());
    await expect(
      ch.assertQueue('qq', { durable: false, arguments: { 'x-queue-type': 'quorum' } }),
    ).rejects.toMatchObject({
      code: 406,
    });
    const ch2 = await open(brokerName());
    await expect(ch2.assertQueue('ttl', { messageTtl: -1 })).rejects.toMatchObject({ code: 406 });
  });

  test('memory broker - follows RabbitMQ 4.0 unless told 3.10: a quorum queue returns a nacked message to the head or the back', async () => {
    const order = async (broker: MemoryBroker): Promise<string[]> => {
      const ch = await open(broker.name, true);
      await ch.assertQueue('qq', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      for (const body of ['a', 'b']) await publish(ch, '', 'qq', body);
      ch.nack((await ch.get('qq')) as TransportMessage, false, true);
      await broker.idle();
      return broker.peek('qq').map((m) => m.content.toString());
    };
    expect(MemoryBroker.named(brokerName()).rabbitmqVersion).toBe('4.0');
    expect(await order(MemoryBroker.named(brokerName()))).toEqual(['a', 'b']);
    expect(await order(MemoryBroker.named(brokerName(), { rabbitmqVersion: '3.10' }))).toEqual(['b', 'a']);
  });

  test('memory broker - changing a buffer after publish changes nothing that was sent', async () => {
    const name = brokerName();
    const ch = await open(name, true);
    await ch.assertQueue('q', { durable: false });
    const content = Buffer.from('original');
    const confirmed = new Promise((resolve) => ch.publish('', 'q', content, {}, resolve));
    content.write('mutated!');
    await confirmed;
    expect(
      MemoryBroker.named(name)
        .peek('q')
        .map((m) => m.content.toString()),
    ).toEqual(['original']);
    const consumer = await open(name);
    const received = new Promise<TransportMessage>((resolve) =>
      consumer.consume('q', (m) => m !== null && resolve(m), { noAck: true }),
    );
    expect((await received).content.toString()).toBe('original');
  });

  test('memory broker - a producer whose encoder reuses its buffer still sends what it encoded', async () => {
    const name = brokerName();
    const shared = Buffer.alloc(4096);
    // A legal encoder that writes every message into the same memory.
    const encoder: Encoder = {
      contentType: 'application/json',
      encode: (value) => shared.subarray(0, shared.write(JSON.stringify(value))),
      decode: (data) => JSON.parse(data.toString()) as unknown,
    };
    const q: ExchangeDefinition = { ...ex, name: 'reuse-ex' };
    class P extends GenericProducer<{ x: string }> {
      static override eks = [[q, 'k']] as const;
    }
    const ch = await open(name);
    await ch.assertExchange('reuse-ex', 'direct', { durable: true });
    await ch.assertQueue('reuse-q', { durable: false });
    await ch.bindQueue('reuse-q', 'reuse-ex', 'k');
    for (const options of [{ encoder }, {}]) {
      const producer = P.create({ url: `memory://${name}`, ...options });
      await producer.message_x('first');
      await producer.message_x('second, longer');
      await producer.close();
    }
    const sent = MemoryBroker.named(name).peek('reuse-q');
    const texts = sent.map((m) => (JSON.parse(m.content.toString()) as MessageBody).content['parameters']);
    expect(texts).toEqual(['first', 'second, longer', 'first', 'second, longer']);
    // The hand-over marker is not a message property.
    for (const m of sent) expect(Object.getOwnPropertySymbols(m.properties)).toEqual([]);
  });

  test('memory broker - topic and headers matching rules', () => {
    const t = (pattern: string, key: string): boolean =>
      topicMatches(pattern.split('.'), 0, key.split('.'), 0);
    expect(t('#', '')).toBe(true);
    expect(t('a.#.#.b', 'a.b')).toBe(true);
    expect(t('*.b', 'b')).toBe(false);
    expect(t('a.*', 'a.b.c')).toBe(false);
    expect(t('#.b.#', 'x.y.b')).toBe(true);
    expect(headersMatch({ 'x-match': 'any', a: 1 }, { a: 1 })).toBe(true);
    expect(headersMatch({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(headersMatch({ 'x-match': 'all-with-x', 'x-k': 'v' }, { 'x-k': 'v' })).toBe(true);
    expect(headersMatch({ 'x-match': 'all', 'x-k': 'v' }, {})).toBe(true);
  });

  test('memory broker - the queue deque keeps order across compaction and ordered requeues', () => {
    const d = new Deque<number>();
    for (let i = 0; i < 5000; i++) d.push(i);
    for (let i = 0; i < 3000; i++) expect(d.shift()).toBe(i);
    d.insertSorted(10, (x) => x);
    d.insertSorted(4000, (x) => x);
    expect(d.length).toBe(2002);
    expect(d.shift()).toBe(10);
    expect(d.shift()).toBe(3000);
    expect([...d].slice(997, 1002)).toEqual([3998, 3999, 4000, 4000, 4001]);
  });
});
