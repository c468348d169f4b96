import net from 'node:net';

import {
  ChannelError,
  ErrorCode,
  Exchange,
  Fingerprint,
  GenericProducer,
  MessageCommand,
  PublishError,
  type ExchangeDefinition,
} from '../../lib';
import { testUrl, uid, withRawChannel } from '../helpers/broker';

function exchange(name: string, extra: Partial<ExchangeDefinition> = {}): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: true, auto_delete: true, ...extra };
}

/** Declares a queue bound to the exchange with each key; returns its name. */
async function boundQueue(ex: ExchangeDefinition, keys: string[]): Promise<string> {
  const queue = uid('q');
  await withRawChannel(async (ch) => {
    await ch.assertExchange(ex.name, ex.exchange_type, { durable: ex.durable, autoDelete: ex.auto_delete });
    await ch.assertQueue(queue, { autoDelete: false, durable: false, arguments: { 'x-expires': 60_000 } });
    for (const key of keys) await ch.bindQueue(queue, ex.name, key);
  });
  return queue;
}

async function drain(queue: string): Promise<
  Array<{
    body: Record<string, unknown>;
    properties: Record<string, unknown>;
    routingKey: string;
    exchange: string;
  }>
> {
  return withRawChannel(async (ch) => {
    const out = [];
    for (;;) {
      const message = await ch.get(queue, { noAck: true });
      if (message === false) break;
      out.push({
        body: JSON.parse(message.content.toString()) as Record<string, unknown>,
        properties: message.properties as unknown as Record<string, unknown>,
        routingKey: message.fields.routingKey,
        exchange: message.fields.exchange,
      });
    }
    return out;
  });
}

describe('publish (broker)', () => {
  const producers: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(producers.splice(0).map((p) => p.close()));
  });

  function producerFor(ex: ExchangeDefinition, key: string) {
    class P extends GenericProducer<{ echo: string }> {
      static override eks = [[ex, key]] as const;
    }
    const producer = P.create({ url: testUrl(), fingerprint: new Fingerprint('publisher', 'spec') });
    producers.push(producer);
    return producer;
  }

  it("publish - a message reaches its queue with postage's body, persistent for a durable exchange", async () => {
    const ex = exchange(uid('ex'));
    const queue = await boundQueue(ex, ['rk']);
    const producer = producerFor(ex, 'rk');
    await producer.message_echo('A test message');
    const [got] = await drain(queue);
    expect(got?.body).toEqual({
      type: 'command',
      name: 'echo',
      category: 'message',
      version: '2',
      fingerprint: new Fingerprint('publisher', 'spec').asDict(),
      content: { parameters: 'A test message' },
      _reserved: {},
    });
    expect(got?.properties).toMatchObject({ contentType: 'application/json', deliveryMode: 2 });
    expect(typeof got?.properties['messageId']).toBe('string');
  });

  it('publish - a message to a transient exchange is transient', async () => {
    const ex = exchange(uid('ex'), { durable: false });
    const queue = await boundQueue(ex, ['rk']);
    await producerFor(ex, 'rk').message_echo('x');
    const [got] = await drain(queue);
    expect(got?.properties['deliveryMode']).toBe(1);
  });

  it('publish - a message that routes nowhere rejects with UNROUTABLE though the broker acks it', async () => {
    const ex = exchange(uid('ex'));
    const queue = await boundQueue(ex, ['rk']);
    const producer = producerFor(ex, 'rk');
    const error = await producer.message_echo('lost?', { _key: 'no-such-key' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    expect(error).toMatchObject({ code: ErrorCode.UNROUTABLE });
    // The producer keeps working, and the routable message is not affected.
    await producer.message_echo('kept');
    expect((await drain(queue)).map((m) => (m.body['content'] as { parameters: string }).parameters)).toEqual(
      ['kept'],
    );
  });

  it('publish - _key sends to the first exchange with that key; _eks wins over _key', async () => {
    const first = exchange(uid('ex'));
    const second = exchange(uid('ex'), { exchange_type: 'fanout' });
    const q1 = await boundQueue(first, ['special', 'rk']);
    const producer = producerFor(first, 'rk');
    await producer.message_echo('by key', { _key: 'special' });
    // The fanout exchange does not exist yet: _eks declares it before use.
    await withRawChannel(async (ch) => {
      await expect(ch.checkExchange(second.name)).rejects.toBeDefined();
    });
    const q2 = uid('q');
    const declared = producer.message_echo('by eks', {
      _key: 'special',
      _eks: [[second, 'ignored-by-fanout']],
    });
    await expect(declared).rejects.toMatchObject({ code: ErrorCode.UNROUTABLE });
    await withRawChannel(async (ch) => {
      await ch.checkExchange(second.name);
      await ch.assertQueue(q2, { arguments: { 'x-expires': 60_000 } });
      await ch.bindQueue(q2, second.name, '');
    });
    await producer.message_echo('by eks', { _key: 'special', _eks: [[second, 'x']] });
    expect(
      (await drain(q1)).map((m) => [m.routingKey, (m.body['content'] as { parameters: string }).parameters]),
    ).toEqual([['special', 'by key']]);
    expect(
      (await drain(q2)).map((m) => [m.exchange, (m.body['content'] as { parameters: string }).parameters]),
    ).toEqual([[second.name, 'by eks']]);
  });

  it('publish - with no option a message goes to every pair of eks', async () => {
    const a = exchange(uid('ex'));
    const b = exchange(uid('ex'));
    const qa = await boundQueue(a, ['ka']);
    const qb = await boundQueue(b, ['kb']);
    class Both extends GenericProducer<{ echo: string }> {
      static override eks = [
        [a, 'ka'],
        [b, 'kb'],
      ] as const;
    }
    const producer = Both.create({ url: testUrl() });
    producers.push(producer);
    await producer.message_echo('to both');
    expect(await drain(qa)).toHaveLength(1);
    expect(await drain(qb)).toHaveLength(1);
  });

  it('publish - confirms are pipelined: 2000 publishes in flight at once all confirm and all arrive', async () => {
    const ex = exchange(uid('ex'));
    const queue = await boundQueue(ex, ['rk']);
    const producer = producerFor(ex, 'rk');
    await producer.connect();
    const sends = Array.from({ length: 2000 }, (_, i) => producer.message_echo(`m${i}`));
    await expect(Promise.all(sends)).resolves.toHaveLength(2000);
    const got = await drain(queue);
    expect(new Set(got.map((m) => (m.body['content'] as { parameters: string }).parameters)).size).toBe(2000);
  });

  it('publish - a missing passive exchange is a NOT_FOUND error and the producer keeps working', async () => {
    const good = exchange(uid('ex'));
    const queue = await boundQueue(good, ['rk']);
    const missing = exchange(uid('missing'), { passive: true });
    const producer = producerFor(good, 'rk');
    const error = await producer.message_echo('x', { _eks: [[missing, 'rk']] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelError);
    expect(error).toMatchObject({ code: ErrorCode.NOT_FOUND, replyCode: 404 });
    await producer.message_echo('still works');
    expect(await drain(queue)).toHaveLength(1);
  });

  it('publish - an exchange deleted under the producer: NOT_FOUND, then it is declared again on next use', async () => {
    const ex = exchange(uid('ex'), { auto_delete: false });
    const producer = producerFor(ex, 'rk');
    const queue = await boundQueue(ex, ['rk']);
    await producer.message_echo('first');
    await withRawChannel((ch) => ch.deleteExchange(ex.name));
    await expect(producer.message_echo('into the void')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    // Declared again, but its bindings went with it: nothing routes yet.
    await expect(producer.message_echo('no binding')).rejects.toMatchObject({ code: ErrorCode.UNROUTABLE });
    await withRawChannel((ch) => ch.bindQueue(queue, ex.name, 'rk'));
    await producer.message_echo('after');
    expect((await drain(queue)).map((m) => (m.body['content'] as { parameters: string }).parameters)).toEqual(
      ['first', 'after'],
    );
    await withRawChannel((ch) => ch.deleteExchange(ex.name));
  });

  it('publish - redeclaring an exchange with other parameters is a typed PRECONDITION_FAILED', async () => {
    const name = uid('ex');
    await withRawChannel((ch) => ch.assertExchange(name, 'fanout', { durable: false, autoDelete: true }));
    const producer = producerFor(exchange(name), 'rk');
    await expect(producer.message_echo('x')).rejects.toMatchObject({
      code: ErrorCode.PRECONDITION_FAILED,
      replyCode: 406,
    });
  });

  it('publish - the reserved amq.* exchanges are checked, not declared', async () => {
    class Direct extends Exchange {
      static override name = 'amq.direct';
    }
    const queue = uid('q');
    await withRawChannel(async (ch) => {
      await ch.assertQueue(queue, { arguments: { 'x-expires': 60_000 } });
      await ch.bindQueue(queue, 'amq.direct', queue);
    });
    const producer = producerFor(Direct, queue);
    await producer.message_echo('via amq.direct');
    expect(await drain(queue)).toHaveLength(1);
  });

  it('publish - sockets are opened with noDelay (Nagle would cost ~40 ms per RPC)', async () => {
    const spy = jest.spyOn(net.Socket.prototype, 'setNoDelay');
    try {
      const ex = exchange(uid('ex'));
      await boundQueue(ex, ['rk']);
      await producerFor(ex, 'rk').message_echo('x');
      expect(spy).toHaveBeenCalledWith(true);
      expect(spy).not.toHaveBeenCalledWith(false);
    } finally {
      spy.mockRestore();
    }
  });

  it('publish - the connection settings are read from the environment when the producer is created', async () => {
    const ex = exchange(uid('ex'));
    const queue = await boundQueue(ex, ['rk']);
    const saved = process.env['POSTAGE_URL'];
    process.env['POSTAGE_URL'] = testUrl();
    try {
      class P extends GenericProducer {
        static override eks = [[ex, 'rk']] as const;
      }
      const producer = P.create();
      producers.push(producer);
      await producer.send(new MessageCommand('env', 'from env'));
    } finally {
      if (saved === undefined) delete process.env['POSTAGE_URL'];
      else process.env['POSTAGE_URL'] = saved;
    }
    expect(await drain(queue)).toHaveLength(1);
  });

  it('publish - close() settles: later publishes reject with CLOSED', async () => {
    const ex = exchange(uid('ex'));
    await boundQueue(ex, ['rk']);
    const producer = producerFor(ex, 'rk');
    await producer.message_echo('x');
    await producer.close();
    await expect(producer.message_echo('after close')).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });
});
