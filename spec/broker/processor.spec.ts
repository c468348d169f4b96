import {
  GenericProducer,
  MessageHandler,
  MessageProcessor,
  RejectMessage,
  RpcHandler,
  runAll,
  type Eqk,
  type ExchangeDefinition,
} from '../../lib';
import { rawConnection, testUrl, uid, waitFor, withRawChannel } from '../helpers/broker';
import { MemoryLogger } from '../helpers/memory-logger';

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

interface Dead {
  body: string;
  reason: unknown;
}

/**
 * A queue with a dead-letter exchange, and the queue that collects what is dead-lettered:
 * "rejected without requeue" is observable as an x-death entry with reason `rejected`.
 */
async function queueWithDlx(
  ex: ExchangeDefinition,
): Promise<{ queue: string; dlq: string; eqk: Eqk; dead(): Promise<Dead[]> }> {
  const queue = uid('q');
  const dlx = uid('dlx');
  const dlq = uid('dlq');
  await withRawChannel(async (ch) => {
    await ch.assertExchange(dlx, 'fanout', { autoDelete: false, durable: false });
    await ch.assertQueue(dlq, { arguments: { 'x-expires': 60_000 } });
    await ch.bindQueue(dlq, dlx, '');
  });
  const eqk: Eqk = [
    [
      ex,
      [[{ name: queue, flags: { arguments: { 'x-dead-letter-exchange': dlx, 'x-expires': 60_000 } } }, 'rk']],
    ],
  ];
  const dead = () =>
    withRawChannel(async (ch) => {
      const out: Dead[] = [];
      for (;;) {
        const m = await ch.get(dlq, { noAck: true });
        if (m === false) return out;
        const death = (m.properties.headers?.['x-death'] as Array<{ reason: string }> | undefined)?.[0];
        out.push({ body: m.content.toString(), reason: death?.reason });
      }
    });
  return { queue, dlq, eqk, dead };
}

describe('processor (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  function producerFor(ex: ExchangeDefinition) {
    class P extends GenericProducer<{
      echo: unknown;
      fail: string;
      reject: string;
      quit: void;
      unknown: void;
    }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const producer = P.create({ url: testUrl() });
    cleanup.push(() => producer.close());
    return producer;
  }

  async function publishRaw(
    ex: ExchangeDefinition,
    content: Buffer,
    properties: Record<string, unknown> = {},
  ): Promise<void> {
    const connection = await rawConnection();
    try {
      const channel = await connection.createConfirmChannel();
      channel.publish(ex.name, 'rk', content, properties);
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
  }

  it('processor - quit stops consuming, closes cleanly and resolves run; queued messages stay queued', async () => {
    const ex = exchange(uid('ex'));
    const queue = uid('q');
    class P extends MessageProcessor {
      got: unknown[] = [];
      @MessageHandler('command', 'echo') echo(content: { parameters: unknown }) {
        this.got.push(content.parameters);
      }
    }
    const processor = new P({
      url: testUrl(),
      prefetch: 1,
      eqk: [[ex, [[{ name: queue, flags: { arguments: { 'x-expires': 60_000 } } }, 'rk']]]],
    });
    const run = processor.run();
    await processor.start();
    const producer = producerFor(ex);
    await producer.message_echo('before');
    await waitFor(() => processor.got.length === 1);
    await producer.message_quit();
    await expect(run).resolves.toEqual({ reason: 'quit' });
    expect(processor.connection.isOpen).toBe(false);
    await producer.message_echo('after quit');
    const info = await withRawChannel((ch) => ch.checkQueue(queue));
    expect([info.consumerCount, info.messageCount]).toEqual([0, 1]);
    await withRawChannel((ch) => ch.deleteQueue(queue));
  });

  it('processor - a handler that throws or throws RejectMessage gets its message rejected without requeue; processing goes on', async () => {
    const ex = exchange(uid('ex'));
    const { eqk, dead } = await queueWithDlx(ex);
    class P extends MessageProcessor {
      got: unknown[] = [];
      @MessageHandler('command', 'fail') fail() {
        throw new Error('boom');
      }
      @MessageHandler('command', 'reject') reject() {
        throw new RejectMessage('not for us');
      }
      @MessageHandler('command', 'echo') echo(content: { parameters: unknown }) {
        this.got.push(content.parameters);
      }
    }
    const logger = new MemoryLogger();
    const processor = new P({ url: testUrl(), eqk, logger });
    cleanup.push(() => processor.stop());
    await processor.start();
    const producer = producerFor(ex);
    await producer.message_fail('f');
    await producer.message_reject('r');
    await producer.message_echo('still running');
    await waitFor(() => processor.got.length === 1);
    const deadLetters: Dead[] = [];
    await waitFor(async () => {
      deadLetters.push(...(await dead()));
      return deadLetters.length >= 2;
    });
    expect(deadLetters.map((d) => [JSON.parse(d.body).name, d.reason]).sort()).toEqual([
      ['fail', 'rejected'],
      ['reject', 'rejected'],
    ]);
    expect(logger.at('error').some((l) => l.message.includes('handler failed'))).toBe(true);
  });

  it('processor - a body that is not JSON or not an envelope is rejected without requeue and logged; processing goes on', async () => {
    const ex = exchange(uid('ex'));
    const { eqk, dead } = await queueWithDlx(ex);
    class P extends MessageProcessor {
      got: unknown[] = [];
      @MessageHandler('command', 'echo') echo(content: { parameters: unknown }) {
        this.got.push(content.parameters);
      }
    }
    const logger = new MemoryLogger();
    const processor = new P({ url: testUrl(), eqk, logger });
    cleanup.push(() => processor.stop());
    await processor.start();
    await publishRaw(ex, Buffer.from('{not json'));
    await publishRaw(ex, Buffer.from(JSON.stringify({ type: 'command', name: 'echo' })));
    await publishRaw(ex, Buffer.from([0xff, 0xfe, 0x00]));
    await producerFor(ex).message_echo('good');
    await waitFor(() => processor.got.length === 1);
    const all: Dead[] = [];
    await waitFor(async () => {
      all.push(...(await dead()));
      return all.length >= 3;
    });
    expect(all.map((d) => d.reason)).toEqual(['rejected', 'rejected', 'rejected']);
    const codes = logger.at('error').map((l) => l.fields?.['code']);
    expect(codes).toEqual(['DECODE_FAILED', 'INVALID_MESSAGE', 'DECODE_FAILED']);
  });

  it('processor - a bad RPC request is answered with an error at once, not left to time out', async () => {
    const ex = exchange(uid('ex'));
    const { eqk } = await queueWithDlx(ex);
    // A processor that serves RPCs answers it (one that serves none leaves it to the server:
    // spec/contract/unknown-rpc.spec.ts).
    class Server extends MessageProcessor {
      @RpcHandler('command', 'echo') echo(content: { parameters: unknown }) {
        return content.parameters;
      }
    }
    const processor = new Server({ url: testUrl(), eqk });
    cleanup.push(() => processor.stop());
    await processor.start();
    const connection = await rawConnection();
    cleanup.push(() => connection.close());
    const channel = await connection.createChannel();
    const replies: string[] = [];
    await channel.consume('amq.rabbitmq.reply-to', (m) => m && replies.push(m.content.toString()), {
      noAck: true,
    });
    channel.publish(ex.name, 'rk', Buffer.from('{broken'), {
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: 'c',
    });
    await waitFor(() => replies.length === 1);
    expect(JSON.parse(replies[0] as string)).toMatchObject({ type: 'result', content: { type: 'error' } });
  });

  it('processor - an unknown fire-and-forget message is acked and logged at debug', async () => {
    const ex = exchange(uid('ex'));
    const { eqk, dead, queue } = await queueWithDlx(ex);
    const logger = new MemoryLogger();
    const processor = new MessageProcessor({ url: testUrl(), eqk, logger });
    cleanup.push(() => processor.stop());
    await processor.start();
    await producerFor(ex).message_unknown();
    await waitFor(() => logger.at('debug').some((l) => l.message.includes('no handler')));
    await waitFor(async () => (await withRawChannel((ch) => ch.checkQueue(queue))).messageCount === 0);
    expect(await dead()).toEqual([]);
    expect(logger.at('error')).toEqual([]);
  });

  it('processor - debug mode logs every publish and receive, never the password', async () => {
    const ex = exchange(uid('ex'));
    const queue = uid('q');
    const logger = new MemoryLogger();
    const url = testUrl();
    class P extends MessageProcessor {
      @RpcHandler('command', 'echo') echo(content: { parameters: unknown }) {
        return content.parameters;
      }
    }
    const processor = new P({
      url,
      debug: true,
      logger,
      eqk: [[ex, [[{ name: queue, flags: { auto_delete: true } }, 'rk']]]],
    });
    cleanup.push(() => processor.stop());
    await processor.start();
    class Q extends GenericProducer<{ echo: string; note: string }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const producer = Q.create({ url, debug: true, logger });
    cleanup.push(() => producer.close());
    await producer.message_note('fire and forget');
    await producer.rpc_echo('call');
    const text = logger.text();
    expect(text).toContain('--> publish');
    expect(text).toContain('<-- receive');
    expect(text).toContain('--> reply');
    expect(
      logger
        .at('debug')
        .filter((l) => l.message === '<-- receive')
        .map((l) => l.fields?.['name']),
    ).toEqual(['note', 'echo']);
    const password = new URL(url).password;
    expect(password.length).toBeGreaterThan(0);
    expect(text).not.toContain(`:${password}@`);
    expect(text).not.toContain(`"${password}"`);
  });

  it('processor - several processors run in one process until all have quit', async () => {
    const exA = exchange(uid('ex'));
    const exB = exchange(uid('ex'));
    const makeEqk = (ex: ExchangeDefinition): Eqk => [
      [ex, [[{ name: uid('q'), flags: { auto_delete: true } }, 'rk']]],
    ];
    class Counter extends MessageProcessor {
      got = 0;
      @MessageHandler('command', 'echo') echo() {
        this.got++;
      }
    }
    const a = new Counter({ url: testUrl(), eqk: makeEqk(exA) });
    const b = new Counter({ url: testUrl(), eqk: makeEqk(exB) });
    let allDone = false;
    const running = runAll([a, b]).then((results) => {
      allDone = true;
      return results;
    });
    await Promise.all([a.start(), b.start()]);
    const pa = producerFor(exA);
    const pb = producerFor(exB);
    await pa.message_echo(1);
    await pb.message_echo(2);
    await waitFor(() => a.got === 1 && b.got === 1);
    await pa.message_quit();
    await a.done;
    await new Promise((r) => setTimeout(r, 100));
    expect(allDone).toBe(false);
    await pb.message_echo(3);
    await waitFor(() => b.got === 2);
    await pb.message_quit();
    await expect(running).resolves.toEqual([{ reason: 'quit' }, { reason: 'quit' }]);
  });
});
