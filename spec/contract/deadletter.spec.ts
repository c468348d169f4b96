import { uid } from '../helpers/broker';
import { channel, drain, publishConfirmed, sleep, target } from '../helpers/contract';
import type { QueueOptions, TransportMessage } from '../../lib/transport/types';

type Death = Record<string, unknown>;

describe(`dead-lettering, TTL and length limits (contract, ${target})`, () => {
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
    for (let i = 0; i < 200 && deliveries < 10; i++) {
      const got = await ch.get(queue);
      if (got === false) {
        if ((await ch.checkQueue(dlq)).messageCount > 0) break;
        await sleep(10);
        continue;
      }
      deliveries++;
      if (deliveries > 1) expect(got.properties.headers?.['x-delivery-count']).toBe(deliveries - 1);
      ch.nack(got, false, true);
    }
    expect(deliveries).toBe(3);
    const [dead] = await drain(ch, dlq, 1, 3000);
    expect(deaths(dead!)[0]).toMatchObject({ reason: 'delivery_limit', queue });
    await cleanup();
  });
});
