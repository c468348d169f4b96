/**
 * Bad-input fuzz (property-based, fast-check): 10,000 generated bodies (random bytes, truncated
 * JSON, envelopes with wrong types, very long strings, deep nesting) reach a processor on the
 * in-process broker. It stays up; each body is settled exactly once (handled and acked, acked,
 * or rejected to the dead-letter queue); none is requeued.
 */
import fc from 'fast-check';

import { Connection, MemoryBroker, type ExchangeDefinition } from '../../lib';
import { FuzzSink, fuzzBodies } from '../helpers/fuzz-bodies';

const exchange: ExchangeDefinition = {
  name: 'fuzz-ex',
  exchange_type: 'direct',
  passive: false,
  durable: false,
  auto_delete: false,
};

jest.setTimeout(120_000);

test('fuzz - 10,000 generated bad bodies: the processor stays up, each is settled once, none requeued', async () => {
  const name = `fuzz-${process.pid}`;
  const broker = MemoryBroker.named(name);
  const url = `memory://${name}`;
  const settled = new Map<string, number>();
  const outcomes = { ack: 0, requeue: 0, reject: 0 };
  const unobserve = broker.observe({
    settled(event) {
      outcomes[event.outcome]++;
      const id = event.properties.messageId ?? '';
      settled.set(id, (settled.get(id) ?? 0) + 1);
    },
  });
  const processor = new FuzzSink({
    url,
    eqk: [
      [
        exchange,
        [
          [
            {
              name: 'fuzz-q',
              flags: { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'fuzz-dlq' } },
            },
            'n',
          ],
        ],
      ],
    ],
    prefetch: 100,
  });
  const connection = new Connection({ url });
  const channel = await connection.createChannel(true);
  await channel.assertQueue('fuzz-dlq', { durable: false });
  await processor.start();

  const samples = fc.sample(fuzzBodies, { numRuns: 10_000, seed: 42 });
  expect(samples).toHaveLength(10_000);
  await Promise.all(
    samples.map(
      (content, i) =>
        new Promise<void>((resolve, reject) =>
          channel.publish(exchange.name, 'n', content, { messageId: String(i) }, (err) =>
            err === null || err === undefined
              ? resolve()
              : reject(err instanceof Error ? err : new Error(String(err))),
          ),
        ),
    ),
  );
  const deadline = Date.now() + 100_000;
  while (settled.size < 10_000 && Date.now() < deadline) {
    await broker.idle();
    await new Promise((r) => setTimeout(r, 20));
  }
  const deadLettered = broker.queue('fuzz-dlq')?.messages ?? 0;
  process.stdout.write(
    `[fuzz] ${JSON.stringify({ bodies: samples.length, handled: processor.handled, ...outcomes, deadLettered })}\n`,
  );
  const statusOk = processor.connection.isOpen;
  const main = broker.queue('fuzz-q');
  unobserve();
  await processor.stop();
  await connection.close();
  MemoryBroker.resetAll();

  expect(statusOk).toBe(true);
  expect(settled.size).toBe(10_000);
  expect([...settled.values()].every((count) => count === 1)).toBe(true);
  expect(outcomes.requeue).toBe(0);
  expect(outcomes.ack + outcomes.reject).toBe(10_000);
  expect(deadLettered).toBe(outcomes.reject);
  expect(main).toMatchObject({ messages: 0, unacked: 0 });
  expect(processor.handled).toBeGreaterThan(0);
  expect(processor.handled).toBeLessThanOrEqual(outcomes.ack);
});
