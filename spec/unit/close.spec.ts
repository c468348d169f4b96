/**
 * close() of the components that live on the in-process broker only, or that group others
 * (issue 12, point 4): TestClient and MicroScheduler. Each is idempotent and safe
 * to call concurrently: every caller gets the same promise and it resolves. The components
 * with a broker of their own (producer, consumer, processor, connection) are covered on both
 * brokers by spec/contract/close.spec.ts; closeOnSignals by the fixtures that real signals end
 * (spec/broker/publish-encoding.spec.ts, spec/broker/processing-faults.spec.ts): jest's sandbox
 * does not deliver signals to the handlers a spec installs.
 */
import {
  MemoryBroker,
  MessageCommand,
  MessageHandler,
  MessageProcessor,
  MicroScheduler,
  TestClient,
  runAll,
  type Eqk,
  type ExchangeDefinition,
} from '../../lib';

let n = 0;
const url = (): string => `memory://close-${process.pid}-${++n}`;
const work: ExchangeDefinition = {
  name: 'work',
  exchange_type: 'direct',
  passive: false,
  durable: false,
  auto_delete: false,
};

class Worker extends MessageProcessor {
  static override eqk: Eqk = [[work, [['work-queue', 'work']]]];
  seen: unknown[] = [];
  @MessageHandler('command', 'work') onWork(content: { parameters: unknown }) {
    this.seen.push(content.parameters);
  }
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

describe('close (in-process broker)', () => {
  afterAll(() => MemoryBroker.resetAll());

  test('close - TestClient: two close() calls at once and a third after all resolve; the processor stopped', async () => {
    const processor = new Worker({ url: url() });
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('work', 1))).outcome).toBe('ack');
    await closeTwiceAndAgain(client);
    await expect(processor.done).resolves.toEqual({ reason: 'stopped' });
  });

  test('close - MicroScheduler: close() twice at once and a third time stops every processor; run() resolves', async () => {
    const scheduler = new MicroScheduler();
    const a = new Worker({ url: url() });
    const b = new Worker({ url: url() });
    scheduler.add(a).add(b);
    const running = scheduler.run();
    const started = new Promise<void>((resolve) =>
      b.on('status', (s) => s.type === 'consuming' && resolve()),
    );
    await started;
    await closeTwiceAndAgain(scheduler);
    await expect(running).resolves.toEqual([{ reason: 'stopped' }, { reason: 'stopped' }]);
  });

  test('close - runAll: its handle closes twice at once and a third time; the results say stopped', async () => {
    const a = new Worker({ url: url() });
    const started = new Promise<void>((resolve) =>
      a.on('status', (s) => s.type === 'consuming' && resolve()),
    );
    const running = runAll([a, new Worker({ url: url() })]);
    await started;
    await closeTwiceAndAgain(running);
    await expect(running).resolves.toEqual([{ reason: 'stopped' }, { reason: 'stopped' }]);
  });
});
