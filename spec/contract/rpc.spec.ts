import {
  ErrorCode,
  GenericProducer,
  MessageHandler,
  MessageProcessor,
  MessageResult,
  MessageResultError,
  MessageResultException,
  RpcHandler,
  type ExchangeDefinition,
  type ReplyFunction,
} from '../../lib';
import { uid } from '../helpers/broker';
import { channel, contractUrl, drain, label } from '../helpers/contract';

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

describe(`producer, processor and RPC (contract, ${label})`, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  async function start(ex: ExchangeDefinition, queueArgs: Record<string, unknown> = {}) {
    class Echo extends MessageProcessor {
      seen: unknown[] = [];
      @MessageHandler('command', 'note') note(content: { parameters: unknown }) {
        this.seen.push(content.parameters);
      }
      @RpcHandler('command', 'echo') echo(content: { parameters: unknown }, reply: ReplyFunction) {
        reply(new MessageResult(content.parameters));
      }
      /** Holds silent calls until the test releases them (after the caller gave up). */
      release!: () => void;
      gate = new Promise<void>((resolve) => (this.release = resolve));
      @RpcHandler('command', 'silent') async silent() {
        this.seen.push('silent called');
        await this.gate;
      }
      @RpcHandler('command', 'explode') explode(): never {
        throw new TypeError('bad thing');
      }
    }
    const queue = uid('q.rpc');
    const processor = new Echo({
      url: contractUrl(),
      eqk: [[ex, [[{ name: queue, flags: { arguments: queueArgs } }, 'rk']]]],
    });
    await processor.start();
    cleanup.push(() => processor.stop());
    class P extends GenericProducer<{
      echo: unknown;
      silent: void;
      explode: void;
      unknown: void;
      note: string;
    }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const producer = P.create({ url: contractUrl() });
    cleanup.push(() => producer.close());
    return { processor, producer, queue };
  }

  test('rpc - a call is answered; fire-and-forget commands are handled', async () => {
    const { producer, processor } = await start(exchange(uid('ex')));
    const result = await producer.rpc_echo({ n: 1 });
    expect(result).toBeInstanceOf(MessageResult);
    expect(result.unwrap()).toEqual({ n: 1 });
    await producer.message_note('hello');
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => producer.rpc_echo(i)));
    expect(many.map((r) => r.unwrap())).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(processor.seen).toEqual(['hello']);
  });

  test('rpc - an unknown RPC gets MessageResultError at once; a throwing handler MessageResultException', async () => {
    const { producer } = await start(exchange(uid('ex')));
    const unknown = await producer.rpc_unknown({ _timeout: 10 });
    expect(unknown).toBeInstanceOf(MessageResultError);
    const exploded = await producer.rpc_explode();
    expect(exploded).toBeInstanceOf(MessageResultException);
    expect(exploded.content).toMatchObject({ value: 'TypeError', message: 'bad thing' });
  });

  test('rpc - a call nobody answers times out after its retries; its expired requests are not executed late', async () => {
    const { producer, processor } = await start(exchange(uid('ex')));
    const result = await producer.rpc_silent({ _timeout: 0.2, _max_retry: 1 });
    expect(result).toBeInstanceOf(MessageResultException);
    expect(() => result.unwrap()).toThrow(expect.objectContaining({ code: ErrorCode.RPC_TIMEOUT }));
    // The handler saw the first attempt and holds it (prefetch); the retry waits in the queue
    // with an expiration, so it is never run after the caller gave up.
    expect(processor.seen.filter((s) => s === 'silent called').length).toBeGreaterThanOrEqual(1);
    processor.release();
  });

  test('rpc - an unroutable call resolves to an exception with UNROUTABLE, not a timeout', async () => {
    class Lost extends GenericProducer<{ echo: unknown }> {
      static override eks = [[exchange(uid('ex.none')), 'rk']] as const;
    }
    const producer = Lost.create({ url: contractUrl() });
    cleanup.push(() => producer.close());
    const result = await producer.rpc_echo('anyone?', { _timeout: 5 });
    expect(() => result.unwrap()).toThrow(expect.objectContaining({ code: ErrorCode.UNROUTABLE }));
  });

  test('rpc - a message rejected by a processor is dead-lettered with reason rejected', async () => {
    const ch = await channel();
    const dlx = uid('dlx');
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    const { queue: dlq } = await ch.assertQueue(uid('q.dlq'), { durable: false });
    await ch.bindQueue(dlq, dlx, '');
    const ex = exchange(uid('ex'));
    await start(ex, { 'x-dead-letter-exchange': dlx });
    ch.publish(ex.name, 'rk', Buffer.from('{"not": "an envelope"}'));
    const [dead] = await drain(ch, dlq, 1, 3000);
    expect(JSON.parse(dead!.content.toString())).toEqual({ not: 'an envelope' });
    expect((dead!.properties.headers?.['x-death'] as { reason: string }[])[0]?.reason).toBe('rejected');
    await ch.deleteQueue(dlq);
    await ch.deleteExchange(dlx);
  });
});
