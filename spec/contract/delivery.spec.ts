import { uid } from '../helpers/broker';
import {
  Collector,
  channel,
  connect,
  drain,
  expected,
  label,
  publishConfirmed,
  sleep,
} from '../helpers/contract';
import type { TransportMessage } from '../../lib/transport/types';

describe(`delivery (contract, ${label})`, () => {
  async function queueWith(bodies: string[], options: { exclusive?: boolean } = {}) {
    const connection = await connect();
    const ch = await channel(connection, true);
    const { queue } = await ch.assertQueue(uid('q.delivery'), {
      durable: false,
      exclusive: options.exclusive ?? false,
      autoDelete: false,
    });
    for (const body of bodies) await publishConfirmed(ch, '', queue, body);
    return { connection, ch, queue };
  }

  test('delivery - round-robin among the consumers of a queue', async () => {
    const { connection, ch, queue } = await queueWith([]);
    const a = new Collector();
    const b = new Collector();
    const consumerChannel = await channel(connection);
    await consumerChannel.consume(queue, a.onMessage, { noAck: true });
    await consumerChannel.consume(queue, b.onMessage, { noAck: true });
    for (let i = 0; i < 10; i++) await publishConfirmed(ch, '', queue, String(i));
    await a.waitFor(5);
    await b.waitFor(5);
    expect(a.bodies()).toEqual(['0', '2', '4', '6', '8']);
    expect(b.bodies()).toEqual(['1', '3', '5', '7', '9']);
    await ch.deleteQueue(queue);
  });

  test('delivery - prefetch bounds the unacked deliveries of a consumer', async () => {
    const { connection, queue, ch } = await queueWith(['1', '2', '3', '4', '5']);
    const consumerChannel = await channel(connection);
    await consumerChannel.prefetch(2);
    const got = new Collector();
    await consumerChannel.consume(queue, got.onMessage);
    await got.waitFor(2);
    await sleep(100);
    expect(got.bodies()).toEqual(['1', '2']);
    consumerChannel.ack(got.messages[0]!);
    await got.waitFor(3);
    await sleep(100);
    expect(got.bodies()).toEqual(['1', '2', '3']);
    consumerChannel.ack(got.messages[2]!, true); // acks 2 and 3 as well
    await got.waitFor(5);
    expect(got.bodies()).toEqual(['1', '2', '3', '4', '5']);
    await ch.deleteQueue(queue);
  });

  /** Bodies in queue order, `*` marking a redelivery. */
  const marked = (messages: TransportMessage[]): string[] =>
    messages.map((m) => `${m.content.toString()}${m.fields.redelivered ? '*' : ''}`);

  test.each(['classic', 'quorum'] as const)(
    'delivery - nack with requeue, b then a: a %s queue redelivers them flagged (classic: in their place; quorum: 3.10 at the back, 4.0 at the head, in the order they came back)',
    async (type) => {
      const ch = await channel(undefined, true);
      const queue = uid(`q.requeue.${type}`);
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': type } });
      for (const body of ['a', 'b', 'c', 'd']) await publishConfirmed(ch, '', queue, body);
      const a = (await ch.get(queue)) as TransportMessage;
      const b = (await ch.get(queue)) as TransportMessage;
      expect([a, b].map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
        ['a', false],
        ['b', false],
      ]);
      ch.nack(b, false, true);
      ch.nack(a, false, true);
      const order = marked(await drain(ch, queue, 10));
      const quorum = await expected({ '3.10': ['c', 'd', 'b*', 'a*'], '4.0': ['b*', 'a*', 'c', 'd'] });
      expect(order).toEqual(type === 'classic' ? ['a*', 'b*', 'c', 'd'] : quorum);
      await ch.deleteQueue(queue);
    },
  );

  test.each(['classic', 'quorum'] as const)(
    'delivery - closing a channel puts the unacked messages of a %s queue back in their place, flagged (counted on quorum queues)',
    async (type) => {
      const connection = await connect();
      const ch = await channel(connection, true);
      const queue = uid(`q.lost.${type}`);
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': type } });
      for (const body of ['a', 'b', 'c']) await publishConfirmed(ch, '', queue, body);
      const holder = await channel(connection);
      expect(await holder.get(queue)).not.toBe(false);
      expect(await holder.get(queue)).not.toBe(false);
      await holder.close();
      // 4.0 returns them a moment after close-ok: a get before that would take 'c' first.
      for (let i = 0; i < 500 && (await ch.checkQueue(queue)).messageCount < 3; i++) await sleep(10);
      const again = await drain(ch, queue, 10);
      expect(marked(again)).toEqual(['a*', 'b*', 'c']);
      if (type === 'quorum') {
        // The untouched message: x-delivery-count 0 on 3.10, no header on 4.0.
        const fresh = await expected({ '3.10': 0, '4.0': undefined });
        expect(again.map((m) => [m.content.toString(), m.properties.headers?.['x-delivery-count']])).toEqual([
          ['a', 1],
          ['b', 1],
          ['c', fresh],
        ]);
      }
      await ch.deleteQueue(queue);
    },
  );

  test('delivery - reject without requeue and without a dead-letter exchange drops the message', async () => {
    const { queue, ch } = await queueWith(['x']);
    const got = await ch.get(queue);
    expect(got).not.toBe(false);
    ch.reject(got as Exclude<typeof got, false>, false);
    expect(await ch.checkQueue(queue)).toMatchObject({ messageCount: 0 });
    await ch.deleteQueue(queue);
  });

  test('delivery - closing a channel requeues its unacked messages', async () => {
    const { connection, queue, ch } = await queueWith(['p', 'q']);
    const consumerChannel = await channel(connection);
    const got = new Collector();
    await consumerChannel.consume(queue, got.onMessage);
    await got.waitFor(2);
    expect(got.messages.every((m) => !m.fields.redelivered)).toBe(true);
    await consumerChannel.close();
    const again = await drain(ch, queue, 10);
    expect(again.map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
      ['p', true],
      ['q', true],
    ]);
    await ch.deleteQueue(queue);
  });

  test('delivery - basic.get reports the remaining count; an empty queue gives false', async () => {
    const { queue, ch } = await queueWith(['1', '2', '3']);
    const first = await ch.get(queue, { noAck: true });
    expect(first && first.fields.messageCount).toBe(2);
    await drain(ch, queue, 10);
    expect(await ch.get(queue, { noAck: true })).toBe(false);
    await ch.deleteQueue(queue);
  });

  test('delivery - an exclusive consumer keeps others out (403), a cancelled consumer gets nothing more', async () => {
    const { connection, queue, ch } = await queueWith([]);
    const owner = await channel(connection);
    const got = new Collector();
    const { consumerTag } = await owner.consume(queue, got.onMessage, { exclusive: true, noAck: true });
    const other = await channel(connection);
    await expect(other.consume(queue, () => undefined)).rejects.toMatchObject({ code: 403 });
    await other.whenClosed;
    await publishConfirmed(ch, '', queue, 'one');
    await got.waitFor(1);
    await owner.cancel(consumerTag);
    await publishConfirmed(ch, '', queue, 'two');
    await sleep(100);
    expect(got.bodies()).toEqual(['one']);
    expect(await ch.checkQueue(queue)).toMatchObject({ messageCount: 1, consumerCount: 0 });
    await ch.deleteQueue(queue);
  });

  test('delivery - deleting a queue cancels its consumers (the callback gets null)', async () => {
    const { connection, queue, ch } = await queueWith([]);
    const consumerChannel = await channel(connection);
    const cancelled = new Promise<void>(
      (resolve) =>
        void consumerChannel.consume(queue, (m) => {
          if (m === null) resolve();
        }),
    );
    await sleep(50);
    await ch.deleteQueue(queue);
    await cancelled;
  });

  test('delivery - exclusive queues vanish with their connection; auto-delete with their last consumer', async () => {
    const owner = await connect();
    const ownerChannel = await channel(owner);
    const { queue: exclusive } = await ownerChannel.assertQueue(uid('q.exclusive'), {
      exclusive: true,
      durable: false,
    });
    const { queue: auto } = await ownerChannel.assertQueue(uid('q.auto'), {
      autoDelete: true,
      durable: false,
    });
    const { consumerTag } = await ownerChannel.consume(auto, () => undefined, { noAck: true });
    const observer = await channel();
    expect(await observer.checkQueue(auto)).toMatchObject({ consumerCount: 1 });
    await ownerChannel.cancel(consumerTag);
    await sleep(50);
    await expect(observer.checkQueue(auto)).rejects.toMatchObject({ code: 404 });
    const observer2 = await channel();
    await owner.close();
    await sleep(50);
    await expect(observer2.checkQueue(exclusive)).rejects.toMatchObject({ code: 404 });
  });
});
