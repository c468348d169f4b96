import { uid } from '../helpers/broker';
import { channel, drain, expected, label, publishConfirmed, sleep } from '../helpers/contract';
import type { QueueOptions, TransportMessage } from '../../lib/transport/types';

type Death = Record<string, unknown>;

describe(`dead-lettering, TTL and length limits (contract, ${label})`, () => {
  /** A work queue whose dead letters land in `dlq` through a fanout DLX. */
  async function setup(options: QueueOptions = {}, dlrk?: string) {
    const ch = await channel(undefined, true);
    const dlx = uid('dlx');
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    const { queue: dlq } = await ch.assertQueue(uid('q.dlq'), { durable: false });
    await ch.bindQueue(dlq, dlx, '');
    const queue = uid('q.work');
    await ch.assertQueue(queue, {
      durable: false,
      ...options,
      deadLetterExchange: dlx,
      ...(dlrk === undefined ? {} : { deadLetterRoutingKey: dlrk }),
    });
    const cleanup = async (): Promise<void> => {
      await ch.deleteQueue(queue);
      await ch.deleteQueue(dlq);
      await ch.deleteExchange(dlx);
    };
    return { ch, dlx, dlq, queue, cleanup };
  }

  const deaths = (m: TransportMessage): Death[] => (m.properties.headers?.['x-death'] ?? []) as Death[];

  test('dead-letter - a rejected message carries x-death (reason rejected) and the first-death headers', async () => {
    const { ch, dlx, dlq, queue, cleanup } = await setup();
    await publishConfirmed(ch, '', queue, 'bad', { messageId: 'm1' });
    const got = await ch.get(queue);
    ch.reject(got as TransportMessage, false);
    const [dead] = await drain(ch, dlq, 1);
    expect(dead?.content.toString()).toBe('bad');
    expect(dead?.properties.messageId).toBe('m1');
    expect(dead?.fields.exchange).toBe(dlx);
    expect(dead?.fields.routingKey).toBe(queue);
    expect(deaths(dead!)).toEqual([
      expect.objectContaining({ count: 1, reason: 'rejected', queue, exchange: '', 'routing-keys': [queue] }),
    ]);
    expect(dead?.properties.headers).toMatchObject({
      'x-first-death-reason': 'rejected',
      'x-first-death-queue': queue,
      'x-first-death-exchange': '',
    });
    // 4.0 (since 3.13) also names the last death.
    const last = (name: string): unknown => dead?.properties.headers?.[`x-last-death-${name}`];
    expect([last('reason'), last('queue'), last('exchange')]).toEqual(
      await expected({ '3.10': [undefined, undefined, undefined], '4.0': ['rejected', queue, ''] }),
    );
    await cleanup();
  });

  test('dead-letter - x-dead-letter-routing-key replaces the key; a second death in the same queue counts 2', async () => {
    const { ch, dlx, queue, cleanup } = await setup({}, 'retry');
    // Route the dead letters back to the work queue through a direct exchange bound on 'retry'.
    const back = uid('back');
    await ch.assertExchange(back, 'direct', { durable: false });
    await ch.bindExchange(back, dlx, '');
    await ch.bindQueue(queue, back, 'retry');
    await publishConfirmed(ch, '', queue, 'again');
    for (let round = 1; round <= 2; round++) {
      let got: TransportMessage | false = false;
      for (let i = 0; i < 100 && got === false; i++) {
        got = await ch.get(queue);
        if (got === false) await sleep(10);
      }
      expect(got).not.toBe(false);
      const m = got as TransportMessage;
      if (round === 2) {
        expect(m.fields.routingKey).toBe('retry');
        expect(deaths(m)).toEqual([expect.objectContaining({ count: 1, reason: 'rejected', queue })]);
      }
      ch.reject(m, false);
    }
    let third: TransportMessage | false = false;
    for (let i = 0; i < 100 && third === false; i++) {
      third = await ch.get(queue, { noAck: true });
      if (third === false) await sleep(10);
    }
    expect(deaths(third as TransportMessage)).toEqual([
      expect.objectContaining({ count: 2, reason: 'rejected', queue }),
    ]);
    await ch.deleteExchange(back);
    await cleanup();
  });

  test('dead-letter - per-queue TTL expires messages (reason expired)', async () => {
    const { ch, dlq, queue, cleanup } = await setup({ messageTtl: 50 });
    await publishConfirmed(ch, '', queue, 'stale');
    const [dead] = await drain(ch, dlq, 1, 3000);
    expect(dead?.content.toString()).toBe('stale');
    expect(deaths(dead!)[0]).toMatchObject({ reason: 'expired', queue, count: 1 });
    expect(await ch.checkQueue(queue)).toMatchObject({ messageCount: 0 });
    await cleanup();
  });

  test('dead-letter - per-message expiration expires the message and is kept as original-expiration', async () => {
    const { ch, dlq, queue, cleanup } = await setup();
    await publishConfirmed(ch, '', queue, 'short', { expiration: '40' });
    const [dead] = await drain(ch, dlq, 1, 3000);
    expect(dead?.content.toString()).toBe('short');
    expect(dead?.properties.expiration).toBeUndefined();
    expect(deaths(dead!)[0]).toMatchObject({ reason: 'expired', 'original-expiration': '40' });
    await cleanup();
  });

  test('dead-letter - x-max-length with drop-head drops the oldest (reason maxlen)', async () => {
    const { ch, dlq, queue, cleanup } = await setup({ maxLength: 2 });
    for (const body of ['1', '2', '3']) await publishConfirmed(ch, '', queue, body);
    const dead = await drain(ch, dlq, 10);
    expect(dead.map((m) => m.content.toString())).toEqual(['1']);
    expect(deaths(dead[0]!)[0]).toMatchObject({ reason: 'maxlen' });
    expect((await drain(ch, queue, 10)).map((m) => m.content.toString())).toEqual(['2', '3']);
    await cleanup();
  });

  test('dead-letter - x-max-length with reject-publish nacks the publish and keeps the queue', async () => {
    const { ch, dlq, queue, cleanup } = await setup({ maxLength: 1, overflow: 'reject-publish' });
    expect(await publishConfirmed(ch, '', queue, 'fits')).toBeNull();
    const refused = await publishConfirmed(ch, '', queue, 'refused');
    expect(refused?.message).toMatch(/nack/i);
    expect((await drain(ch, queue, 10)).map((m) => m.content.toString())).toEqual(['fits']);
    expect(await drain(ch, dlq, 10, 200)).toEqual([]);
    await cleanup();
  });

  test('dead-letter - a quorum queue dead-letters after x-delivery-limit (reason delivery_limit)', async () => {
    const { ch, dlq, queue, cleanup } = await setup({
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2 },
    });
    await publishConfirmed(ch, '', queue, 'poison', { persistent: true });
    let deliveries = 0;
    const counts: unknown[] = [];
    for (let i = 0; i < 200 && deliveries < 10; i++) {
      const got = await ch.get(queue);
      if (got === false) {
        if ((await ch.checkQueue(dlq)).messageCount > 0) break;
        await sleep(10);
        continue;
      }
      deliveries++;
      counts.push(got.properties.headers?.['x-delivery-count']);
      ch.nack(got, false, true);
    }
    expect(deliveries).toBe(3);
    // The first delivery: x-delivery-count 0 on 3.10, no header on 4.0.
    expect(counts).toEqual([await expected({ '3.10': 0, '4.0': undefined }), 1, 2]);
    const [dead] = await drain(ch, dlq, 1, 3000);
    expect(deaths(dead!)[0]).toMatchObject({ reason: 'delivery_limit', queue });
    await cleanup();
  });

  /** Returns a quorum queue's message with reject (requeue) until it is dead-lettered or 25 deliveries. */
  async function deliveriesUntilDeadLettered(
    limit: number | undefined,
  ): Promise<{ deliveries: number; dead: TransportMessage[] }> {
    const { ch, dlq, queue, cleanup } = await setup({
      durable: true,
      arguments: { 'x-queue-type': 'quorum', ...(limit === undefined ? {} : { 'x-delivery-limit': limit }) },
    });
    await publishConfirmed(ch, '', queue, 'poison', { persistent: true });
    let deliveries = 0;
    for (let i = 0; i < 500 && deliveries < 25; i++) {
      const got = await ch.get(queue);
      if (got === false) {
        if ((await ch.checkQueue(dlq)).messageCount > 0) break;
        await sleep(10);
        continue;
      }
      deliveries++;
      if (deliveries === 25) ch.ack(got);
      else ch.reject(got, true);
    }
    const dead = await drain(ch, dlq, 1, 200);
    await cleanup();
    return { deliveries, dead };
  }

  test.each([
    ['none', undefined, { '3.10': 25, '4.0': 21 }],
    ['-1', -1, { '3.10': 1, '4.0': 25 }],
    ['0', 0, { '3.10': 1, '4.0': 1 }],
  ] as const)(
    'dead-letter - a quorum queue with x-delivery-limit %s: 3.10 has no default limit (a negative one acts as 0), 4.0 defaults to 20 (a negative one: no limit)',
    async (_name, limit, by) => {
      const { deliveries, dead } = await deliveriesUntilDeadLettered(limit);
      // 25 deliveries means the spec stopped returning it (acked): never dead-lettered.
      const want = await expected(by);
      expect(deliveries).toBe(want);
      expect(dead.map((m) => deaths(m)[0]?.['reason'])).toEqual(want === 25 ? [] : ['delivery_limit']);
    },
  );

  test('dead-letter - an x-death published by a client: 3.10 continues it, 4.0 replaces it with its own history', async () => {
    const { ch, dlq, queue, cleanup } = await setup();
    const foreign = {
      count: 3,
      reason: 'rejected',
      queue: 'elsewhere',
      exchange: '',
      'routing-keys': ['elsewhere'],
    };
    await publishConfirmed(ch, '', queue, 'told', {
      headers: {
        'x-death': [foreign],
        'x-first-death-reason': 'expired',
        'x-first-death-queue': 'elsewhere',
        kept: 1,
      },
    });
    const got = (await ch.get(queue)) as TransportMessage;
    // Delivered as published on both.
    expect(deaths(got)).toEqual([expect.objectContaining(foreign)]);
    ch.reject(got, false);
    const [dead] = await drain(ch, dlq, 1);
    const ours = expect.objectContaining({ count: 1, reason: 'rejected', queue });
    expect(deaths(dead!)).toEqual(
      await expected({ '3.10': [ours, expect.objectContaining(foreign)], '4.0': [ours] }),
    );
    expect(dead?.properties.headers).toMatchObject({
      kept: 1,
      ...(await expected({
        '3.10': { 'x-first-death-reason': 'expired', 'x-first-death-queue': 'elsewhere' },
        '4.0': { 'x-first-death-reason': 'rejected', 'x-first-death-queue': queue },
      })),
    });
    await cleanup();
  });

  test('dead-letter - a dead letter republished with its headers and dead-lettered again: x-death counts 2 on 3.10, 1 on 4.0', async () => {
    const { ch, dlq, queue, cleanup } = await setup();
    await publishConfirmed(ch, '', queue, 'twice');
    ch.reject((await ch.get(queue)) as TransportMessage, false);
    const [first] = await drain(ch, dlq, 1);
    expect(deaths(first!)).toEqual([expect.objectContaining({ count: 1, reason: 'rejected', queue })]);
    // A client (a replay tool, postage's own copies before this release) publishes it again as it came.
    await publishConfirmed(ch, '', queue, 'twice', { headers: first!.properties.headers ?? {} });
    ch.reject((await ch.get(queue)) as TransportMessage, false);
    const [second] = await drain(ch, dlq, 1);
    expect(deaths(second!)).toEqual([
      expect.objectContaining({ count: await expected({ '3.10': 2, '4.0': 1 }), reason: 'rejected', queue }),
    ]);
    await cleanup();
  });
});
