/**
 * The broker refuses or takes things away: a memory alarm, an oversize message, a queue deleted
 * under a consumer, an unroutable message, a missing exchange, a full queue with reject-publish.
 * Each gives a typed outcome; nothing hangs and the client keeps working.
 */
import { connect } from 'amqplib';

import {
  ErrorCode,
  GenericConsumer,
  GenericProducer,
  type ConnectionStatus,
  type ExchangeDefinition,
} from '../../lib';
import { RabbitNode, testBroker } from '../../scripts/rabbit-node';
import { uid, waitFor } from '../helpers/broker';
import { JepsenCounter } from '../helpers/jepsen';
import { countingProcessor, durableExchange, numbersProducer } from '../helpers/stream';

const log = (line: string): void => void process.stdout.write(`[faults] ${line}\n`);
const MAX_MESSAGE_SIZE = 1_000_000;

describe(`faults - broker refusals (one ${testBroker()} node, POSTAGE_TEST_BROKER)`, () => {
  let node: RabbitNode;

  beforeAll(async () => {
    await RabbitNode.ensureInstalled(log);
    node = await RabbitNode.start({ log, extraConfig: [`max_message_size = ${MAX_MESSAGE_SIZE}`] });
  }, 120_000);

  afterAll(async () => {
    await node.stop().catch(() => undefined);
    await RabbitNode.shutdownEpmd();
  });

  async function rawChannel() {
    const connection = await connect(node.url);
    connection.on('error', () => undefined);
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return { channel, close: () => connection.close().catch(() => undefined) };
  }

  test('faults - memory alarm: blocked status, publishes wait, all confirmed after unblocked', async () => {
    const counter = new JepsenCounter();
    const exchange = durableExchange(uid('ax'));
    const processor = await countingProcessor(
      counter,
      exchange,
      uid('aq'),
      { durable: true },
      { url: node.url },
    );
    const producer = numbersProducer(exchange, { url: node.url });
    const statuses: ConnectionStatus['type'][] = [];
    producer.connection.on('status', (s) => statuses.push(s.type));
    await producer.message_n(counter.produce()).then(() => counter.confirm(0));
    try {
      await node.ctl('set_vm_memory_high_watermark', '0.0000001');
      // amqplib learns of the block on its next publish (RabbitMQ blocks publishing connections).
      const during: Promise<void>[] = [];
      const publish = (): void => {
        const n = counter.produce();
        during.push(
          producer.message_n(n).then(
            () => counter.confirm(n),
            (err: unknown) => counter.fail(err),
          ),
        );
      };
      publish();
      await waitFor(() => statuses.includes('blocked'), {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'blocked',
      });
      expect(statuses).toContain('blocked');
      for (let i = 0; i < 20; i++) publish();
      await new Promise((r) => setTimeout(r, 1000));
      const confirmedWhileBlocked = counter.confirmed.size;
      await node.ctl('set_vm_memory_high_watermark', '0.4');
      await Promise.all(during);
      await counter.settle(30_000);
      expect(confirmedWhileBlocked).toBe(1);
      expect(statuses).toContain('unblocked');
    } finally {
      await node.ctl('set_vm_memory_high_watermark', '0.4');
      await producer.close();
      await processor.stop();
    }
    const counts = counter.report('memory alarm');
    expect(counts.lost).toBe(0);
    expect(counts.confirmed).toBe(counts.produced);
  });

  test('faults - oversize message: typed PRECONDITION_FAILED from the broker; the next publish works', async () => {
    const exchange = durableExchange(uid('ox'));
    const { channel, close } = await rawChannel();
    const queue = uid('oq');
    await channel.assertExchange(exchange.name, 'direct', { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange.name, 'n');
    class Big extends GenericProducer<{ n: string }> {
      static override eks = [[exchange, 'n']] as const;
    }
    const producer = Big.create({ url: node.url, maxMessageSize: 10 * MAX_MESSAGE_SIZE });
    await expect(producer.message_n('x'.repeat(2 * MAX_MESSAGE_SIZE))).rejects.toMatchObject({
      code: ErrorCode.PRECONDITION_FAILED,
    });
    await expect(producer.message_n('small')).resolves.toBeUndefined();
    await producer.close();
    const { messageCount } = await channel.checkQueue(queue);
    await close();
    expect(messageCount).toBe(1);
  });

  test('faults - queue deleted under a consumer: it is declared and consumed again', async () => {
    const counter = new JepsenCounter();
    const exchange = durableExchange(uid('dx'));
    const queue = uid('dq');
    const consumer = new GenericConsumer({ url: node.url, eqk: [[exchange, [[queue, 'n']]]] });
    const events: string[] = [];
    consumer.on('interrupted', (error) => events.push(`interrupted ${error.code}`));
    consumer.on('recovered', () => events.push('recovered'));
    await consumer.startConsuming((message) => {
      if (message === null) return;
      counter.receive(Number(message.content.toString()));
      consumer.ack(message);
    });
    const { channel, close } = await rawChannel();
    await channel.deleteQueue(queue);
    await waitFor(() => events.includes('recovered'), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'recovery',
    });
    const n = counter.produce();
    await channel.publish(exchange.name, 'n', Buffer.from(String(n)));
    counter.confirm(n);
    const counts = await counter.settle(10_000);
    await close();
    await consumer.close();
    expect(events).toEqual(['interrupted NOT_FOUND', 'recovered']);
    expect(counts.lost).toBe(0);
  });

  test('faults - unroutable message: UNROUTABLE, and the producer goes on', async () => {
    const exchange = durableExchange(uid('ux'));
    const producer = numbersProducer(exchange, { url: node.url });
    await expect(producer.message_n(1)).rejects.toMatchObject({ code: ErrorCode.UNROUTABLE });
    await expect(producer.message_n(2)).rejects.toMatchObject({ code: ErrorCode.UNROUTABLE });
    await producer.close();
  });

  test('faults - missing exchange: typed NOT_FOUND, then publishes work once it exists', async () => {
    const name = uid('mx');
    const passive: ExchangeDefinition = { ...durableExchange(name), passive: true };
    const producer = numbersProducer(passive, { url: node.url });
    await expect(producer.message_n(1)).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    const { channel, close } = await rawChannel();
    const queue = uid('mq');
    await channel.assertExchange(name, 'direct', { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, name, 'n');
    await expect(producer.message_n(2)).resolves.toBeUndefined();
    await producer.close();
    expect((await channel.checkQueue(queue)).messageCount).toBe(1);
    await close();
  });

  test('faults - queue full with x-overflow reject-publish: the extra publishes are NACKED', async () => {
    const exchange = durableExchange(uid('fx'));
    const { channel, close } = await rawChannel();
    const queue = uid('fullq');
    await channel.assertExchange(exchange.name, 'direct', { durable: true });
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { 'x-max-length': 5, 'x-overflow': 'reject-publish' },
    });
    await channel.bindQueue(queue, exchange.name, 'n');
    const producer = numbersProducer(exchange, { url: node.url });
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      await producer.message_n(i).then(
        () => outcomes.push('confirmed'),
        (err: { code?: string }) => outcomes.push(err.code ?? 'unknown'),
      );
    }
    await producer.close();
    expect((await channel.checkQueue(queue)).messageCount).toBe(5);
    await close();
    expect(outcomes).toEqual([...Array(5).fill('confirmed'), ...Array(3).fill(ErrorCode.NACKED)]);
  });
});
