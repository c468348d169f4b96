import { uid } from '../helpers/broker';
import { channel, drain, publishConfirmed, label } from '../helpers/contract';

describe(`routing (contract, ${label})`, () => {
  async function setup(
    type: string,
    bindings: [queue: string, key: string, args?: Record<string, unknown>][],
  ) {
    const ch = await channel(undefined, true);
    const exchange = uid(`route.${type}`);
    await ch.assertExchange(exchange, type, { durable: false, autoDelete: false });
    const queues = new Map<string, string>();
    for (const [name, key, args] of bindings) {
      if (!queues.has(name)) {
        const { queue } = await ch.assertQueue(uid(`q.${name}`), { durable: false, exclusive: true });
        queues.set(name, queue);
      }
      await ch.bindQueue(queues.get(name) as string, exchange, key, args);
    }
    const got = async (name: string): Promise<string[]> =>
      (await drain(ch, queues.get(name) as string, 100, 300)).map((m) => m.content.toString());
    return { ch, exchange, queues, got };
  }

  test('routing - direct exchange delivers by exact key, once per queue', async () => {
    const { ch, exchange, got } = await setup('direct', [
      ['a', 'red'],
      ['a', 'green'],
      ['b', 'red'],
    ]);
    await publishConfirmed(ch, exchange, 'red', 'r');
    await publishConfirmed(ch, exchange, 'green', 'g');
    await publishConfirmed(ch, exchange, 'blue', 'b');
    expect(await got('a')).toEqual(['r', 'g']);
    expect(await got('b')).toEqual(['r']);
  });

  test('routing - fanout exchange ignores the key', async () => {
    const { ch, exchange, got } = await setup('fanout', [
      ['a', ''],
      ['b', 'whatever'],
    ]);
    await publishConfirmed(ch, exchange, 'any.key', 'm');
    expect(await got('a')).toEqual(['m']);
    expect(await got('b')).toEqual(['m']);
  });

  test('routing - topic exchange: * is one word, # zero or more, one copy per queue', async () => {
    const { ch, exchange, got } = await setup('topic', [
      ['star', 'a.*.c'],
      ['hash', 'a.#'],
      ['hash', '#.c'],
      ['mid', 'a.#.c'],
      ['all', '#'],
    ]);
    for (const key of ['a.b.c', 'a', 'a.c', 'a.b.b.c', 'x.c', 'b'])
      await publishConfirmed(ch, exchange, key, key);
    expect(await got('star')).toEqual(['a.b.c']);
    expect(await got('hash')).toEqual(['a.b.c', 'a', 'a.c', 'a.b.b.c', 'x.c']);
    expect(await got('mid')).toEqual(['a.b.c', 'a.c', 'a.b.b.c']);
    expect(await got('all')).toEqual(['a.b.c', 'a', 'a.c', 'a.b.b.c', 'x.c', 'b']);
  });

  test('routing - headers exchange: x-match all and any', async () => {
    const { ch, exchange, got } = await setup('headers', [
      ['all', '', { 'x-match': 'all', kind: 'order', region: 'eu' }],
      ['any', '', { 'x-match': 'any', kind: 'order', region: 'eu' }],
    ]);
    await publishConfirmed(ch, exchange, '', 'both', { headers: { kind: 'order', region: 'eu' } });
    await publishConfirmed(ch, exchange, '', 'one', { headers: { kind: 'order', region: 'us' } });
    await publishConfirmed(ch, exchange, '', 'none', { headers: { kind: 'invoice' } });
    expect(await got('all')).toEqual(['both']);
    expect(await got('any')).toEqual(['both', 'one']);
  });

  test('routing - the default exchange routes to the queue named by the key', async () => {
    const ch = await channel(undefined, true);
    const { queue } = await ch.assertQueue(uid('q.default'), { durable: false, exclusive: true });
    await publishConfirmed(ch, '', queue, 'direct to queue');
    expect((await drain(ch, queue)).map((m) => m.content.toString())).toEqual(['direct to queue']);
  });

  test('routing - exchange-to-exchange bindings and alternate exchanges', async () => {
    const ch = await channel(undefined, true);
    const front = uid('route.front');
    const back = uid('route.back');
    const spill = uid('route.spill');
    await ch.assertExchange(spill, 'fanout', { durable: false });
    await ch.assertExchange(front, 'direct', { durable: false, alternateExchange: spill });
    await ch.assertExchange(back, 'fanout', { durable: false });
    await ch.bindExchange(back, front, 'to-back');
    const { queue: backQueue } = await ch.assertQueue('', { exclusive: true, durable: false });
    const { queue: spillQueue } = await ch.assertQueue('', { exclusive: true, durable: false });
    await ch.bindQueue(backQueue, back, '');
    await ch.bindQueue(spillQueue, spill, '');
    await publishConfirmed(ch, front, 'to-back', 'via e2e');
    await publishConfirmed(ch, front, 'nowhere', 'spilled');
    expect((await drain(ch, backQueue, 10, 300)).map((m) => m.content.toString())).toEqual(['via e2e']);
    expect((await drain(ch, spillQueue, 10, 300)).map((m) => m.content.toString())).toEqual(['spilled']);
    for (const e of [front, back, spill]) await ch.deleteExchange(e);
  });

  test('routing - unbind stops routing; a server-named queue is amq.gen-*', async () => {
    const { ch, exchange, queues, got } = await setup('direct', [['a', 'k']]);
    const name = queues.get('a') as string;
    await ch.unbindQueue(name, exchange, 'k');
    const returned = new Promise<number>((resolve) =>
      ch.on('return', (m) => resolve(m.fields.replyCode ?? 0)),
    );
    await publishConfirmed(ch, exchange, 'k', 'after unbind', { mandatory: true });
    expect(await returned).toBe(312);
    expect(await got('a')).toEqual([]);
    const { queue } = await ch.assertQueue('', { exclusive: true, durable: false });
    expect(queue).toMatch(/^amq\.gen-/);
  });
});
