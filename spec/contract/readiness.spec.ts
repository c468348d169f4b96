/**
 * Readiness (issue 13, point 7): a processor's declarations take effect a round trip after it
 * starts, on RabbitMQ and on the in-process broker alike, so a publish made before the
 * processor is ready is unroutable on both; `ready` says when it is not any more.
 */
import {
  ErrorCode,
  GenericProducer,
  MessageHandler,
  MessageProcessor,
  MicroScheduler,
  runAll,
  type ExchangeDefinition,
} from '../../lib';
import { uid } from '../helpers/broker';
import { contractUrl, sleep, target } from '../helpers/contract';

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

class Echo extends MessageProcessor {
  readonly seen: unknown[] = [];

  @MessageHandler('command', 'echo')
  echo(content: { parameters: unknown }): void {
    this.seen.push(content.parameters);
  }
}

describe(`readiness (contract, ${target})`, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  /** A producer whose channel is open and exchange declared: its next publish goes out at once. */
  async function warmProducer(ex: ExchangeDefinition) {
    class Sender extends GenericProducer<{ echo: string; quit: void }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const producer = Sender.create({ url: contractUrl() });
    cleanup.push(() => producer.close());
    await producer.connect();
    await producer.connection.declareExchange(ex);
    return producer;
  }

  function echo(ex: ExchangeDefinition): Echo {
    const processor = new Echo({
      url: contractUrl(),
      eqk: [[ex, [[{ name: uid('q.ready'), flags: { auto_delete: true } }, 'rk']]]],
    });
    cleanup.push(() => processor.close());
    return processor;
  }

  it('readiness - a publish right after runAll() is unroutable; after `await running.ready` it is handled', async () => {
    const ex = exchange(uid('ready'));
    const producer = await warmProducer(ex);
    const processor = echo(ex);
    const running = runAll([processor]);
    // Made before the processor's queue is declared and bound: nothing routes it yet.
    const early = producer.message_echo('too early');
    await expect(early).rejects.toMatchObject({ code: ErrorCode.UNROUTABLE });
    await running.ready;
    await producer.message_echo('after ready');
    await producer.message_quit();
    await expect(running).resolves.toEqual([{ reason: 'quit' }]);
    expect(processor.seen).toEqual(['after ready']);
  });

  it('readiness - processor.ready resolves once run() consumes; it stays resolved', async () => {
    const ex = exchange(uid('ready'));
    const producer = await warmProducer(ex);
    const processor = echo(ex);
    const running = processor.run();
    await processor.ready;
    await producer.message_echo('one');
    await processor.ready;
    await producer.message_quit();
    await expect(running).resolves.toEqual({ reason: 'quit' });
    expect(processor.seen).toEqual(['one']);
  });

  it('readiness - ready rejects when the start fails, and a later run() gets a ready of its own', async () => {
    const ex = exchange(uid('ready'));
    let attempts = 0;
    const processor = echo(ex).addHooks({
      beforeProcessing: () => {
        attempts++;
        if (attempts === 1) throw new Error('not yet');
      },
    });
    const first = processor.ready;
    await expect(processor.run()).rejects.toMatchObject({ code: ErrorCode.HOOK_FAILED });
    await expect(first).rejects.toMatchObject({ code: ErrorCode.HOOK_FAILED });
    const running = processor.run();
    await processor.ready;
    await processor.stop();
    await expect(running).resolves.toEqual({ reason: 'stopped' });
  });

  it('readiness - a processor stopped before it was ready: ready rejects with CLOSED (never hangs)', async () => {
    const processor = echo(exchange(uid('ready')));
    const ready = processor.ready;
    await processor.stop();
    await expect(ready).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  it('readiness - MicroScheduler.ready resolves once every processor consumes', async () => {
    const ex = exchange(uid('ready'));
    const producer = await warmProducer(ex);
    const a = echo(ex);
    const b = new Echo({
      url: contractUrl(),
      eqk: [[ex, [[{ name: uid('q.ready'), flags: { auto_delete: true } }, 'other']]]],
    });
    cleanup.push(() => b.close());
    const scheduler = new MicroScheduler().add(a).add(b);
    const running = scheduler.run();
    await scheduler.ready;
    await producer.message_echo('to a');
    await producer.message_echo('to b', { _key: 'other' });
    // Confirmed means queued: the handlers run a moment later.
    const deadline = Date.now() + 5_000;
    while (a.seen.length + b.seen.length < 2 && Date.now() < deadline) await sleep(10);
    await scheduler.close();
    await running;
    expect([a.seen, b.seen]).toEqual([['to a'], ['to b']]);
  });
});
