import {
  ErrorCode,
  GenericProducer,
  MessageHandler,
  MessageProcessor,
  type Eqk,
  type ExchangeDefinition,
  type HandlerContext,
} from '../../lib';
import { testUrl, uid, waitFor, withRawChannel } from '../helpers/broker';

function exchange(name: string, type = 'direct'): ExchangeDefinition {
  return { name, exchange_type: type, passive: false, durable: false, auto_delete: true };
}

function queueFlags() {
  // Test queues disappear on their own even if a spec dies half-way.
  return { auto_delete: false, arguments: { 'x-expires': 60_000 } };
}

describe('consumer (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  function producerFor(ex: ExchangeDefinition) {
    class P extends GenericProducer<{ echo: string }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const producer = P.create({ url: testUrl() });
    cleanup.push(() => producer.close());
    return producer;
  }

  class Recorder extends MessageProcessor {
    got: Array<{ parameters: unknown; queue: string; redelivered: boolean }> = [];
    @MessageHandler('command', 'echo') echo(content: { parameters: unknown }, context: HandlerContext) {
      this.got.push({
        parameters: content.parameters,
        queue: context.queue,
        redelivered: context.fields.redelivered,
      });
    }
  }

  async function running<P extends MessageProcessor>(processor: P): Promise<P> {
    cleanup.push(() => processor.stop());
    await processor.start();
    return processor;
  }

  it('consumer - eqk declares named and {name, flags} queues and binds every key', async () => {
    const ex = exchange(uid('ex'));
    const plain = uid('q');
    const flagged = uid('q');
    const eqk: Eqk = [
      [
        ex,
        [
          [plain, 'a'],
          [
            {
              name: flagged,
              flags: { durable: true, arguments: { 'x-max-length': 5, 'x-expires': 60_000 } },
            },
            'b',
          ],
          [
            {
              name: flagged,
              flags: { durable: true, arguments: { 'x-max-length': 5, 'x-expires': 60_000 } },
            },
            'c',
          ],
        ],
      ],
    ];
    const processor = await running(new Recorder({ url: testUrl(), eqk }));
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(plain)));
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(flagged)));
    const producer = producerFor(ex);
    for (const key of ['a', 'b', 'c']) await producer.message_echo(key, { _key: key });
    await waitFor(() => processor.got.length === 3);
    expect(processor.got.map((g) => [g.parameters, g.queue]).sort()).toEqual([
      ['a', plain],
      ['b', flagged],
      ['c', flagged],
    ]);
    // Declared with its flags: a redeclare with other arguments is refused by the broker.
    await withRawChannel(async (ch) => {
      await expect(ch.assertQueue(flagged, { durable: false })).rejects.toMatchObject({ code: 406 });
    });
    expect(processor.consumer.qkList).toEqual([
      [plain, 'a'],
      [flagged, 'b'],
      [flagged, 'c'],
    ]);
  });

  it('consumer - one consumer per queue, whatever its number of keys', async () => {
    const ex = exchange(uid('ex'));
    const queue = uid('q');
    const keys = ['k1', 'k2', 'k3', 'k4'];
    const eqk: Eqk = [[ex, keys.map((k) => [{ name: queue, flags: queueFlags() }, k] as const)]];
    const processor = await running(new Recorder({ url: testUrl(), eqk }));
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(queue)));
    const info = await withRawChannel((ch) => ch.checkQueue(queue));
    expect(info.consumerCount).toBe(1);
    const producer = producerFor(ex);
    for (const key of keys) await producer.message_echo(key, { _key: key });
    await waitFor(() => processor.got.length === 4);
    // Each message once (postage consumed such a queue once per key).
    expect(processor.got.map((g) => g.parameters).sort()).toEqual(keys);
  });

  it('consumer - a queue bound while running is consumed too; unbinding stops the routing', async () => {
    const ex = exchange(uid('ex'));
    const first = uid('q');
    const late = uid('q');
    const processor = await running(
      new Recorder({ url: testUrl(), eqk: [[ex, [[{ name: first, flags: queueFlags() }, 'rk']]]] }),
    );
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(first)));
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(late)));
    const name = await processor.consumer.queue_bind(ex, { name: late, flags: queueFlags() }, 'late-rk');
    expect(name).toBe(late);
    const producer = producerFor(ex);
    await producer.message_echo('to the late queue', { _key: 'late-rk' });
    await waitFor(() => processor.got.length === 1);
    expect(processor.got[0]).toMatchObject({ parameters: 'to the late queue', queue: late });
    await processor.consumer.queue_unbind(ex, late, 'late-rk');
    await expect(producer.message_echo('nowhere now', { _key: 'late-rk' })).rejects.toMatchObject({
      code: ErrorCode.UNROUTABLE,
    });
    expect(processor.consumer.qkList).toEqual([[first, 'rk']]);
  });

  it('consumer - a server-named queue can be bound at runtime', async () => {
    const ex = exchange(uid('ex'), 'fanout');
    const processor = await running(new Recorder({ url: testUrl() }));
    const name = await processor.consumer.queueBind(ex, { name: '', flags: { exclusive: true } }, '');
    expect(name).toMatch(/^amq\.gen-/);
    await producerFor(ex).message_echo('fan');
    await waitFor(() => processor.got.length === 1);
    expect(processor.got[0]?.queue).toBe(name);
  });

  it('consumer - manual ack: a message is acked only after its handler finished', async () => {
    const ex = exchange(uid('ex'));
    const queue = uid('q');
    const eqk: Eqk = [[ex, [[{ name: queue, flags: queueFlags() }, 'rk']]]];
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    class Slow extends MessageProcessor {
      started = 0;
      @MessageHandler('command', 'echo') async echo() {
        this.started++;
        await blocked;
      }
    }
    const slow = new Slow({ url: testUrl(), eqk });
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(queue)));
    await slow.start();
    await producerFor(ex).message_echo('work');
    await waitFor(() => slow.started === 1);
    // The handler has not finished: drop the processor's connection without letting it ack.
    await slow.connection.close();
    release();
    const recorder = await running(new Recorder({ url: testUrl(), eqk }));
    await waitFor(() => recorder.got.length === 1);
    expect(recorder.got[0]).toMatchObject({ parameters: 'work', redelivered: true });
    await slow.stop();
  });

  it('consumer - prefetch bounds the messages handled at once', async () => {
    const ex = exchange(uid('ex'));
    const queue = uid('q');
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    class Slow extends MessageProcessor {
      started = 0;
      @MessageHandler('command', 'echo') async echo() {
        this.started++;
        await blocked;
      }
    }
    const slow = await running(
      new Slow({ url: testUrl(), prefetch: 3, eqk: [[ex, [[{ name: queue, flags: queueFlags() }, 'rk']]]] }),
    );
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(queue)));
    const producer = producerFor(ex);
    await Promise.all(Array.from({ length: 10 }, (_, i) => producer.message_echo(`m${i}`)));
    await waitFor(() => slow.started === 3);
    await new Promise((r) => setTimeout(r, 200));
    expect(slow.started).toBe(3);
    expect(slow.handling).toBe(3);
    release();
    await waitFor(() => slow.started === 10);
    await waitFor(() => slow.handling === 0);
  });
});
