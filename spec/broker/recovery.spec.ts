/**
 * Recovery against the test RabbitMQ: multi-URL failover at connect, and a consumer that
 * re-declares its runtime bindings and consumes again after `rabbitmqctl close_all_connections`.
 */
import { Connection, GenericConsumer, GenericProducer, type ExchangeDefinition } from '../../lib';
import { freePort } from '../../scripts/rabbit-node';
import { ctl, testUrl, uid } from '../helpers/broker';

async function until(predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!predicate()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('recovery (RabbitMQ)', () => {
  test('recovery - with several URLs, a closed first port moves the connection to the next broker', async () => {
    const closed = await freePort();
    const real = new URL(testUrl());
    const connection = new Connection({ url: `amqp://guest:guest@127.0.0.1:${closed},${testUrl()}` });
    await connection.open();
    expect(connection.endpoint).toContain(`:${real.port}/`);
    await connection.close();
  });

  test('recovery - after close_all_connections a consumer re-binds runtime bindings and consumes again', async () => {
    const ex: ExchangeDefinition = {
      name: uid('rex'),
      exchange_type: 'direct',
      passive: false,
      durable: false,
      auto_delete: false,
    };
    const queue = uid('rq');
    const consumer = new GenericConsumer({ url: testUrl() });
    const got: string[] = [];
    const events: string[] = [];
    consumer.on('interrupted', () => events.push('interrupted'));
    consumer.on('recovered', () => events.push('recovered'));
    await consumer.startConsuming((message) => {
      if (message === null) return;
      got.push(message.content.toString());
      consumer.ack(message);
    });
    // Bound at runtime, exclusive to the connection: it vanishes with it and must be re-made.
    await consumer.queueBind(ex, { name: queue, flags: { exclusive: true } }, 'k');
    await ctl('close_all_connections', 'recovery spec');
    await until(() => events.includes('recovered'));
    class P extends GenericProducer<{ x: string }> {
      static override eks = [[ex, 'k']] as const;
    }
    const producer = P.create({ url: testUrl() });
    await producer.message_x('after');
    await until(() => got.length === 1);
    await producer.close();
    await consumer.close();
    expect(events).toEqual(['interrupted', 'recovered']);
    expect(JSON.parse(got[0] as string)).toMatchObject({ content: { parameters: 'after' } });
  });
});
