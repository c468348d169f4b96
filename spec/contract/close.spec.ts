/**
 * close() on both brokers (issue 12, points 4 and 5): every close() is idempotent and safe to
 * call concurrently (every caller gets the same promise, and it resolves), and a producer's
 * close() first lets the publishes already made settle, awaited or not.
 */
import {
  Connection,
  ErrorCode,
  GenericConsumer,
  GenericProducer,
  MessageProcessor,
  type ExchangeDefinition,
} from '../../lib';
import { uid } from '../helpers/broker';
import { channel, contractUrl, drain, target } from '../helpers/contract';

function exchange(): ExchangeDefinition {
  return { name: uid('close.x'), exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

/** The queues of this file expire once unused (they are declared again with the same flags). */
const FLAGS = { arguments: { 'x-expires': 60_000 } };

/** Declares `ex` and a queue bound to it with key `k`; returns the queue's name. */
async function boundQueue(ex: ExchangeDefinition): Promise<string> {
  const ch = await channel();
  await ch.assertExchange(ex.name, 'direct', { durable: false, autoDelete: true });
  const { queue } = await ch.assertQueue(uid('close.q'), {
    durable: false,
    arguments: { 'x-expires': 60_000 },
  });
  await ch.bindQueue(queue, ex.name, 'k');
  return queue;
}

function producerClass(ex: ExchangeDefinition) {
  return class extends GenericProducer<{ a: number; b: number }> {
    static override eks = [[ex, 'k']] as const;
  };
}

/** Calls close() twice at once, then once more: every call returns one promise and resolves. */
async function closeTwiceAndAgain(component: { close(): Promise<unknown> }): Promise<void> {
  const first = component.close();
  const second = component.close();
  expect(second).toBe(first);
  await Promise.all([first, second]);
  const third = component.close();
  expect(third).toBe(first);
  await third;
}

describe(`close (contract, ${target})`, () => {
  test('close - producer: two close() calls at once and a third after all resolve', async () => {
    const ex = exchange();
    await boundQueue(ex);
    const producer = producerClass(ex).create({ url: contractUrl() });
    await producer.message_a(1);
    await closeTwiceAndAgain(producer);
    await expect(producer.message_a(2)).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  test('close - producer never used: two close() calls at once and a third after all resolve', async () => {
    await closeTwiceAndAgain(producerClass(exchange()).create({ url: contractUrl() }));
  });

  test('close - consumer: two close() calls at once and a third after all resolve', async () => {
    const ex = exchange();
    const queue = await boundQueue(ex);
    const consumer = new GenericConsumer({
      url: contractUrl(),
      eqk: [[ex, [[{ name: queue, flags: FLAGS }, 'k']]]],
    });
    await consumer.startConsuming(() => undefined);
    await closeTwiceAndAgain(consumer);
  });

  test('close - processor: two close() calls at once and a third after all resolve', async () => {
    const ex = exchange();
    const queue = await boundQueue(ex);
    const processor = new MessageProcessor({
      url: contractUrl(),
      eqk: [[ex, [[{ name: queue, flags: FLAGS }, 'k']]]],
    });
    await processor.start();
    await closeTwiceAndAgain(processor);
    await expect(processor.done).resolves.toEqual({ reason: 'stopped' });
  });

  test('close - connection shared by a producer and a processor, all closed at once', async () => {
    const ex = exchange();
    const queue = await boundQueue(ex);
    const connection = new Connection({ url: contractUrl() });
    const producer = producerClass(ex).create({ connection });
    const processor = new MessageProcessor({
      connection,
      eqk: [[ex, [[{ name: queue, flags: FLAGS }, 'k']]]],
    });
    await processor.start();
    await producer.message_a(1);
    await Promise.all([connection.close(), producer.close(), processor.close(), connection.close()]);
    await closeTwiceAndAgain(connection);
    expect(connection.isClosed).toBe(true);
  });

  test('close - publishes not awaited on a fresh producer are delivered, and resolve, before close() resolves', async () => {
    const ex = exchange();
    const queue = await boundQueue(ex);
    const producer = producerClass(ex).create({ url: contractUrl() });
    // As `p.message_a(); p.message_b(); await p.close();` (outcomes read once close resolved).
    const outcomes = Promise.allSettled([producer.message_a(1), producer.message_b(2)]);
    await producer.close();
    expect((await outcomes).map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
    const bodies = (await drain(await channel(), queue)).map(
      (m) => (JSON.parse(m.content.toString()) as { name: string; content: { parameters: number } }).name,
    );
    expect(bodies).toEqual(['a', 'b']);
  });

  test('close - publishes not awaited on a connected producer settle first; one made during close() rejects CLOSED', async () => {
    const ex = exchange();
    const queue = await boundQueue(ex);
    const producer = producerClass(ex).create({ url: contractUrl() });
    await producer.connect();
    const made = Array.from({ length: 200 }, (_, i) => producer.message_a(i));
    const outcomes = Promise.allSettled(made);
    const closing = producer.close();
    const late = producer.message_b(-1).catch((err: unknown) => err);
    await closing;
    expect((await outcomes).filter((o) => o.status === 'fulfilled')).toHaveLength(200);
    expect(await late).toMatchObject({ code: ErrorCode.CLOSED });
    expect(await drain(await channel(), queue, 500)).toHaveLength(200);
  });
});
