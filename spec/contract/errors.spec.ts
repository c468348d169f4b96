import { ErrorCode, toPostageError } from '../../lib/errors';
import { uid } from '../helpers/broker';
import { channel, connect, publishConfirmed, label } from '../helpers/contract';

describe(`broker errors (contract, ${label})`, () => {
  test('errors - redeclaring an exchange with another type is PRECONDITION_FAILED and closes the channel', async () => {
    const ch = await channel();
    const name = uid('ex');
    await ch.assertExchange(name, 'direct', { durable: false });
    const err = await ch.assertExchange(name, 'fanout', { durable: false }).catch((e: unknown) => e);
    expect(toPostageError(err, ErrorCode.BROKER_ERROR).code).toBe(ErrorCode.PRECONDITION_FAILED);
    await ch.whenClosed;
    expect(ch.errors[0]).toMatchObject({ code: 406 });
    await expect(ch.checkExchange(name)).rejects.toThrow(/closed/i);
    const other = await channel();
    await other.deleteExchange(name);
  });

  test('errors - redeclaring a queue with other arguments or flags is 406; the same declaration is fine', async () => {
    const ch = await channel();
    const name = uid('q');
    await ch.assertQueue(name, { durable: false, messageTtl: 1000 });
    await ch.assertQueue(name, { durable: false, messageTtl: 1000 });
    await expect(ch.assertQueue(name, { durable: false, messageTtl: 2000 })).rejects.toMatchObject({
      code: 406,
    });
    const again = await channel();
    await expect(again.assertQueue(name, { durable: true, messageTtl: 1000 })).rejects.toMatchObject({
      code: 406,
    });
    await (await channel()).deleteQueue(name);
  });

  test('errors - passive declares of missing exchanges and queues are NOT_FOUND', async () => {
    const a = await channel();
    const err = await a.checkExchange(uid('missing')).catch((e: unknown) => e);
    expect(toPostageError(err, ErrorCode.BROKER_ERROR).code).toBe(ErrorCode.NOT_FOUND);
    const b = await channel();
    await expect(b.checkQueue(uid('missing'))).rejects.toMatchObject({ code: 404 });
    const c = await channel();
    await expect(c.bindQueue(uid('missing'), 'amq.direct', 'k')).rejects.toMatchObject({ code: 404 });
  });

  test('errors - publishing to a missing exchange closes the channel with 404 and fails the confirm', async () => {
    const ch = await channel(undefined, true);
    const failed = await publishConfirmed(ch, uid('missing'), 'k', 'lost');
    expect(failed).toBeInstanceOf(Error);
    await ch.whenClosed;
    expect(ch.errors[0]).toMatchObject({ code: 404 });
    expect(() => ch.publish('', 'k', Buffer.from('x'))).toThrow(/closed/i);
  });

  test('errors - an exclusive queue of another connection is RESOURCE_LOCKED', async () => {
    const owner = await channel();
    const { queue } = await owner.assertQueue(uid('q.mine'), { exclusive: true, durable: false });
    const stranger = await channel(await connect());
    const err = await stranger.consume(queue, () => undefined).catch((e: unknown) => e);
    expect(toPostageError(err, ErrorCode.BROKER_ERROR).code).toBe(ErrorCode.RESOURCE_LOCKED);
    const stranger2 = await channel(await connect());
    await expect(stranger2.assertQueue(queue, { exclusive: true, durable: false })).rejects.toMatchObject({
      code: 405,
    });
  });

  test('errors - names under amq. are reserved (403)', async () => {
    const a = await channel();
    const err = await a.assertExchange('amq.postage-test', 'direct').catch((e: unknown) => e);
    expect(toPostageError(err, ErrorCode.BROKER_ERROR).code).toBe(ErrorCode.ACCESS_REFUSED);
    const b = await channel();
    await expect(b.assertQueue('amq.postage-test')).rejects.toMatchObject({ code: 403 });
  });

  test('errors - acking an unknown delivery tag closes the channel with 406', async () => {
    const ch = await channel();
    const { queue } = await ch.assertQueue('', { exclusive: true, durable: false });
    ch.publish('', queue, Buffer.from('x'));
    const got = await (async () => {
      for (let i = 0; i < 100; i++) {
        const m = await ch.get(queue);
        if (m !== false) return m;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('no message');
    })();
    ch.ack(got);
    ch.ack(got);
    await ch.whenClosed;
    expect(ch.errors[0]).toMatchObject({ code: 406 });
  });
});
