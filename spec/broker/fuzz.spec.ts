/**
 * Bad-input fuzz against RabbitMQ: 1,000 generated bodies (spec/helpers/fuzz-bodies, the same
 * arbitrary as the 10,000-body in-process run) reach a processor over amqplib. The settlements
 * are read where they leave the client (amqplib's ack/nack/reject) and in the broker's queues:
 * each body is settled once, acked or rejected to the dead-letter queue, none requeued, none left.
 */
import fc from 'fast-check';
import type { Channel, Message } from 'amqplib';

import type { ExchangeDefinition } from '../../lib';
import { rawConnection, testUrl, uid, withRawChannel } from '../helpers/broker';
import { FuzzSink, fuzzBodies } from '../helpers/fuzz-bodies';

const BODIES = 1000;

jest.setTimeout(120_000);

afterEach(() => jest.restoreAllMocks());

test('fuzz - 1,000 generated bad bodies over RabbitMQ: settled once each, acked or dead-lettered, none requeued, none left', async () => {
  const exchange: ExchangeDefinition = {
    name: uid('fuzzx'),
    exchange_type: 'direct',
    passive: false,
    durable: false,
    auto_delete: false,
  };
  const queue = uid('fuzzq');
  const dlq = uid('fuzzdlq');

  const producer = await rawConnection();
  const channel = await producer.createConfirmChannel();
  // Every settlement the client sends, by messageId, read on amqplib's Channel prototype.
  let proto = Object.getPrototypeOf(channel) as Channel;
  while (!Object.prototype.hasOwnProperty.call(proto, 'ack')) proto = Object.getPrototypeOf(proto) as Channel;
  const original = { ack: proto.ack, nack: proto.nack, reject: proto.reject };
  const settlements = new Map<string, string[]>();
  const record = (message: Message, outcome: string): void => {
    const id = String(message.properties.messageId);
    settlements.set(id, [...(settlements.get(id) ?? []), outcome]);
  };
  jest.spyOn(proto, 'ack').mockImplementation(function (this: Channel, message, allUpTo) {
    record(message, allUpTo === true ? 'ack-all' : 'ack');
    original.ack.call(this, message, allUpTo);
  });
  jest.spyOn(proto, 'nack').mockImplementation(function (this: Channel, message, allUpTo, requeue) {
    record(message, requeue === false && allUpTo !== true ? 'reject' : 'requeue');
    original.nack.call(this, message, allUpTo, requeue);
  });
  jest.spyOn(proto, 'reject').mockImplementation(function (this: Channel, message, requeue) {
    record(message, requeue === false ? 'reject' : 'requeue');
    original.reject.call(this, message, requeue);
  });

  await channel.assertQueue(dlq, { durable: false });
  const processor = new FuzzSink({
    url: testUrl(),
    eqk: [
      [
        exchange,
        [
          [
            {
              name: queue,
              flags: { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } },
            },
            'n',
          ],
        ],
      ],
    ],
    prefetch: 100,
  });
  await processor.start();
  const samples = fc.sample(fuzzBodies, { numRuns: BODIES, seed: 42 });
  samples.forEach((content, i) => channel.publish(exchange.name, 'n', content, { messageId: String(i) }));
  await channel.waitForConfirms();

  const deadline = Date.now() + 100_000;
  while (settlements.size < BODIES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const up = processor.connection.isOpen;
  await processor.stop();

  const outcomes = { ack: 0, reject: 0, requeue: 0, other: 0 };
  for (const list of settlements.values()) {
    for (const outcome of list) {
      if (outcome === 'ack' || outcome === 'reject' || outcome === 'requeue') outcomes[outcome]++;
      else outcomes.other++;
    }
  }
  const { left, deadLettered, deadIds, reasons } = await withRawChannel(async (ch) => {
    const left = (await ch.checkQueue(queue)).messageCount;
    const deadLettered = (await ch.checkQueue(dlq)).messageCount;
    const deadIds = new Set<string>();
    const reasons = new Set<unknown>();
    for (
      let message = await ch.get(dlq, { noAck: true });
      message !== false;
      message = await ch.get(dlq, { noAck: true })
    ) {
      deadIds.add(String(message.properties.messageId));
      const deaths = message.properties.headers?.['x-death'] as Array<{ reason?: unknown }> | undefined;
      reasons.add(deaths?.[0]?.reason);
    }
    await ch.deleteQueue(dlq);
    await ch.deleteQueue(queue);
    await ch.deleteExchange(exchange.name);
    return { left, deadLettered, deadIds, reasons };
  });
  await producer.close();
  process.stdout.write(
    `[fuzz:rabbitmq] ${JSON.stringify({ bodies: samples.length, handled: processor.handled, ...outcomes, deadLettered, left })}\n`,
  );

  expect(up).toBe(true);
  expect(settlements.size).toBe(BODIES);
  expect([...settlements.values()].every((list) => list.length === 1)).toBe(true);
  expect(outcomes).toMatchObject({ requeue: 0, other: 0 });
  expect(outcomes.ack + outcomes.reject).toBe(BODIES);
  expect(deadLettered).toBe(outcomes.reject);
  expect(deadIds.size).toBe(outcomes.reject);
  expect([...deadIds].every((id) => settlements.get(id)?.[0] === 'reject')).toBe(true);
  expect([...reasons]).toEqual(['rejected']);
  expect(left).toBe(0);
  expect(processor.handled).toBeGreaterThan(0);
  expect(processor.handled).toBeLessThanOrEqual(outcomes.ack);
});
