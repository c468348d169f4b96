/**
 * The test client drives processors on the in-process broker: these specs need no RabbitMQ
 * and no sleeps. They also pin the processor's outcomes table on the in-process broker.
 */
import {
  ErrorCode,
  GenericProducer,
  MemoryBroker,
  MessageCommand,
  MessageHandler,
  MessageProcessor,
  MessageResult,
  MessageResultError,
  MessageResultException,
  RejectMessage,
  RpcCommand,
  RpcHandler,
  TestClient,
  type ExchangeDefinition,
  type Produced,
  type ReplyFunction,
} from '../../lib';
import { memoryTransport } from '../../lib/transport/memory';

const work: ExchangeDefinition = {
  name: 'work',
  exchange_type: 'direct',
  passive: false,
  durable: false,
  auto_delete: false,
};
const events: ExchangeDefinition = {
  name: 'events',
  exchange_type: 'fanout',
  passive: false,
  durable: false,
  auto_delete: false,
};

let n = 0;
const url = (): string => `memory://test-client-${process.pid}-${++n}`;

class Notifier extends GenericProducer<{ done: string }> {
  static override eks = [[events, '']] as const;
}

class Worker extends MessageProcessor {
  seen: unknown[] = [];
  notifier: Produced<Notifier> | undefined;

  @MessageHandler('command', 'work') async work(content: { parameters: string }) {
    this.seen.push(content.parameters);
    await this.notifier?.message_done(content.parameters);
  }
  @MessageHandler('command', 'crash') crash(): never {
    throw new Error('crashed');
  }
  @MessageHandler('command', 'refuse') refuse(): never {
    throw new RejectMessage('not mine');
  }
  @RpcHandler('command', 'double') double(content: { parameters: number }, reply: ReplyFunction) {
    reply(new MessageResult(content.parameters * 2));
  }
  @RpcHandler('command', 'fail') fail(): never {
    throw new RangeError('out of range');
  }
}

/** A plain channel on the in-process broker, for setting up queues around the processor. */
async function rawChannel(name: string) {
  const connection = await memoryTransport.connect(
    { protocol: 'memory', host: name, port: 0, vhost: '/', user: '', password: '' },
    { heartbeat: 0, connectTimeout: 0, connectionName: 'setup' },
  );
  return connection.createChannel();
}

async function setup(queueArgs: Record<string, unknown> = {}) {
  const u = url();
  const worker = new Worker({
    url: u,
    eqk: [[work, [[{ name: 'work-q', flags: { arguments: queueArgs } }, 'work']]]],
  });
  worker.notifier = Notifier.create({ url: u });
  const client = await TestClient.for(worker);
  const ch = await rawChannel(client.broker.name);
  await ch.assertExchange('events', 'fanout', { durable: false });
  await ch.assertQueue('events-log', { durable: false });
  await ch.bindQueue('events-log', 'events', '');
  return { worker, client, broker: client.broker, ch };
}

describe('test client (in-process broker)', () => {
  afterAll(() => MemoryBroker.resetAll());

  test('test client - send resolves when the processor acked the message; what it published is recorded', async () => {
    const { worker, client } = await setup();
    const settled = await client.send(new MessageCommand('work', 'job 1'));
    expect(settled.outcome).toBe('ack');
    expect(settled.queue).toBe('work-q');
    expect(settled.message?.name).toBe('work');
    expect(worker.seen).toEqual(['job 1']);
    expect(
      client.published.map((p) => [
        p.exchange,
        p.message?.name,
        (p.body as { content: { parameters: unknown } }).content.parameters,
      ]),
    ).toEqual([['events', 'done', 'job 1']]);
    expect(client.acked).toHaveLength(1);
    await worker.notifier?.close();
    await client.close();
  });

  test('test client - a throwing handler and RejectMessage reject without requeue; with a DLX the message is dead-lettered', async () => {
    const { client, broker, ch } = await setup({ 'x-dead-letter-exchange': 'dlx' });
    await ch.assertExchange('dlx', 'fanout', { durable: false });
    await ch.assertQueue('dlq', { durable: false });
    await ch.bindQueue('dlq', 'dlx', '');
    expect((await client.send(new MessageCommand('crash'))).outcome).toBe('reject');
    expect((await client.send(new MessageCommand('refuse'))).outcome).toBe('reject');
    expect(client.deadLettered.map((d) => [d.message?.name, d.reason, d.deadLetterExchange])).toEqual([
      ['crash', 'rejected', 'dlx'],
      ['refuse', 'rejected', 'dlx'],
    ]);
    expect(broker.queue('dlq')?.messages).toBe(2);
    await client.close();
  });

  test('test client - malformed bodies are rejected, never requeued, and the processor goes on', async () => {
    const { worker, client } = await setup();
    expect((await client.send(Buffer.from('{not json'))).outcome).toBe('reject');
    expect((await client.send({ type: 'command' })).outcome).toBe('reject');
    expect((await client.send(new MessageCommand('work', 'after'))).outcome).toBe('ack');
    expect(worker.seen).toEqual(['after']);
    expect(client.requeued).toEqual([]);
    await worker.notifier?.close();
    await client.close();
  });

  test('test client - rpc returns the reply; a throwing RPC handler and an unknown RPC give error results', async () => {
    const { client } = await setup();
    const doubled = await client.rpc(new RpcCommand('double', 21));
    expect(doubled).toBeInstanceOf(MessageResult);
    expect(doubled.unwrap()).toBe(42);
    const failed = await client.rpc(new RpcCommand('fail'));
    expect(failed).toBeInstanceOf(MessageResultException);
    expect(failed.content).toMatchObject({ value: 'RangeError', message: 'out of range' });
    const unknown = await client.rpc(new RpcCommand('nobody'));
    expect(unknown).toBeInstanceOf(MessageResultError);
    expect(client.replies).toHaveLength(3);
    expect(client.settled.map((s) => s.outcome)).toEqual(['ack', 'reject', 'ack']);
    await client.close();
  });

  test('test client - an unknown fire-and-forget message is acked; a message that routes nowhere is UNROUTABLE', async () => {
    const { client } = await setup();
    expect((await client.send(new MessageCommand('nobody-handles-this'))).outcome).toBe('ack');
    await expect(
      client.send(new MessageCommand('work'), { exchange: work, key: 'no-such-key' }),
    ).rejects.toMatchObject({
      code: ErrorCode.UNROUTABLE,
    });
    expect(
      (await client.send(new MessageCommand('work', 'via exchange'), { exchange: work, key: 'work' }))
        .outcome,
    ).toBe('ack');
    await client.close();
  });

  test('test client - refuses a processor that is not on the in-process broker', async () => {
    const worker = new Worker({ url: 'amqp://127.0.0.1:1' });
    await expect(TestClient.for(worker)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });
});
