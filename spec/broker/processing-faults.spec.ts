/**
 * Fault tests of the processing features against RabbitMQ, counted like Jepsen: produced,
 * handled, acked, dead-lettered, duplicates, lost (lost must be 0).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

import {
  ErrorCode,
  MessageCommand,
  MessageProcessor,
  Outcome,
  type ExchangeDefinition,
  type HandlerContext,
  type ProcessorOptions,
} from '../../lib';
import { ctl, rawConnection, testUrl, uid, waitFor, withRawChannel } from '../helpers/broker';
import { MemoryLogger } from '../helpers/memory-logger';

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

interface Dead {
  id: string;
  reason: unknown;
  error: unknown;
  deliveries: unknown;
}

interface Counts {
  produced: number;
  handled: number;
  acked: number;
  deadLettered: number;
  duplicates: number;
  lost: number;
}

/** Publishes (with confirms) postage messages or raw bodies, each with its id as messageId. */
async function produce(queue: string, bodies: Array<[id: string, content: Buffer]>): Promise<void> {
  const connection = await rawConnection();
  try {
    const channel = await connection.createConfirmChannel();
    for (const [id, content] of bodies) channel.sendToQueue(queue, content, { messageId: id });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

function command(name: string, parameters: unknown): Buffer {
  return Buffer.from(JSON.stringify(new MessageCommand(name, parameters).body));
}

async function drain(queue: string): Promise<Dead[]> {
  return withRawChannel(async (ch) => {
    const out: Dead[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) return out;
      const headers = m.properties.headers ?? {};
      out.push({
        id: String(m.properties.messageId),
        reason: headers['x-postage-reason'],
        error: headers['x-postage-error'],
        deliveries: headers['x-postage-deliveries'],
      });
    }
  });
}

async function queueDepth(queue: string): Promise<number> {
  return withRawChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);
}

function count(produced: string[], handled: string[], acked: string[], dead: Dead[]): Counts {
  const settled = new Set([...acked, ...dead.map((d) => d.id)]);
  const ackedOnce = new Set(acked);
  return {
    produced: produced.length,
    handled: handled.length,
    acked: acked.length,
    deadLettered: dead.length,
    duplicates: acked.length - ackedOnce.size + dead.length - new Set(dead.map((d) => d.id)).size,
    lost: produced.filter((id) => !settled.has(id)).length,
  };
}

describe('processing faults (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  function names(): { ex: ExchangeDefinition; queue: string; dlx: string; dlq: string } {
    const queue = uid('q');
    const names = { ex: exchange(uid('ex')), queue, dlx: `${queue}.dlx`, dlq: `${queue}.dlq` };
    cleanup.push(() =>
      withRawChannel(async (ch) => {
        await ch.deleteQueue(names.queue);
        await ch.deleteQueue(names.dlq);
        await ch.deleteExchange(names.dlx);
      }),
    );
    return names;
  }

  function processor(
    n: ReturnType<typeof names>,
    options: ProcessorOptions = {},
    logger = new MemoryLogger(),
  ) {
    const p = new MessageProcessor({
      url: testUrl(),
      logger,
      eqk: [[n.ex, [[n.queue, 'rk']]]],
      deadLetter: { exchange: n.dlx, queue: n.dlq },
      ...options,
    });
    cleanup.push(() => p.close());
    return p;
  }

  for (const queueType of ['classic', 'quorum'] as const) {
    it(`poison - a handler that always throws is dead-lettered after maxDeliveries with reason and error, no hot loop (${queueType})`, async () => {
      const n = names();
      const p = processor(n, {
        queueType,
        maxDeliveries: 4,
        onError: () => Outcome.requeue({ delayMs: 50 }),
      });
      const handled: string[] = [];
      const acked: string[] = [];
      p.registerHandler('command', 'work', (content: { parameters: string }) => {
        handled.push(content.parameters);
        if (content.parameters.startsWith('poison')) throw new Error(`poison ${content.parameters}`);
        acked.push(content.parameters);
      });
      await p.start();
      const produced = Array.from({ length: 12 }, (_, i) => (i % 4 === 0 ? `poison-${i}` : `good-${i}`));
      await produce(
        n.queue,
        produced.map((id) => [id, command('work', id)]),
      );
      let dead: Dead[] = [];
      await waitFor(
        async () => {
          dead = [...dead, ...(await drain(n.dlq))];
          return dead.length >= 3;
        },
        { timeoutMs: 15_000, intervalMs: 50, what: 'three dead letters' },
      );
      await p.close();
      const counts = count(produced, handled, acked, dead);
      console.log(`poison (${queueType}):`, counts);
      expect(counts).toEqual({
        produced: 12,
        handled: 9 + 3 * 4,
        acked: 9,
        deadLettered: 3,
        duplicates: 0,
        lost: 0,
      });
      // Each poison message was handled exactly maxDeliveries times: bounded, not a hot loop.
      for (const d of dead) expect(handled.filter((id) => id === d.id)).toHaveLength(4);
      expect(dead.map((d) => [d.reason, d.error, d.deliveries])).toEqual(
        dead.map((d) => [ErrorCode.DELIVERY_LIMIT, `Error: poison ${d.id}`, 4]),
      );
      expect(await queueDepth(n.queue)).toBe(0);
    }, 30_000);
  }

  // Above RabbitMQ 4.0's default delivery limit of a quorum queue (20): the broker must not end
  // a message before postage's bound, whoever declared the queue.
  const kinds = [
    ['classic', {}],
    ['quorum (queueType)', { queueType: 'quorum' }],
    ['quorum (declared by its flags, no x-delivery-limit)', { quorumFlags: true }],
  ] as const;
  for (const [kind, how] of kinds) {
    it(`poison - maxDeliveries 25 on a ${kind} queue: each poison message handled exactly 25 times, then dead-lettered by postage; none lost`, async () => {
      const n = names();
      const flags =
        'quorumFlags' in how ? { durable: true, arguments: { 'x-queue-type': 'quorum' } } : undefined;
      const p = processor(n, {
        ...('queueType' in how ? { queueType: how.queueType } : {}),
        ...(flags === undefined ? {} : { eqk: [[n.ex, [[{ name: n.queue, flags }, 'rk']]]] }),
        maxDeliveries: 25,
        onError: () => Outcome.requeue({ delayMs: 5 }),
      });
      const handled: string[] = [];
      const acked: string[] = [];
      p.registerHandler('command', 'work', (content: { parameters: string }) => {
        handled.push(content.parameters);
        if (content.parameters.startsWith('poison')) throw new Error(`poison ${content.parameters}`);
        acked.push(content.parameters);
      });
      await p.start();
      const produced = ['poison-0', 'good-1', 'poison-2', 'good-3'];
      await produce(
        n.queue,
        produced.map((id) => [id, command('work', id)]),
      );
      let dead: Dead[] = [];
      await waitFor(
        async () => {
          dead = [...dead, ...(await drain(n.dlq))];
          return dead.length >= 2;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'two dead letters' },
      );
      await p.close();
      dead = [...dead, ...(await drain(n.dlq))];
      const counts = count(produced, handled, acked, dead);
      console.log(`poison, maxDeliveries 25 (${kind}):`, counts);
      expect(counts).toEqual({
        produced: 4,
        handled: 2 + 2 * 25,
        acked: 2,
        deadLettered: 2,
        duplicates: 0,
        lost: 0,
      });
      for (const d of dead) expect(handled.filter((id) => id === d.id)).toHaveLength(25);
      // postage's dead letters (its reason and count), not the broker's delivery_limit ones.
      expect(dead.map((d) => [d.reason, d.deliveries])).toEqual([
        [ErrorCode.DELIVERY_LIMIT, 25],
        [ErrorCode.DELIVERY_LIMIT, 25],
      ]);
      expect(await queueDepth(n.queue)).toBe(0);
    }, 60_000);
  }

  it("dead letter - postage's copies of a message the broker dead-lettered before carry its history in x-postage-deaths, none of the broker's own headers", async () => {
    const n = names();
    const source = uid('q.source');
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(source)));
    const p = processor(n, { maxDeliveries: 2 });
    const seen: Array<Record<string, unknown>> = [];
    p.registerHandler('command', 'work', (_content: unknown, context: HandlerContext) => {
      seen.push({ ...context.properties.headers });
      return Outcome.requeue({ delayMs: 0 });
    });
    await p.start();
    // The broker dead-letters a message from `source` into the processor's queue (x-death, reason rejected).
    await withRawChannel(async (ch) => {
      await ch.assertQueue(source, {
        durable: false,
        arguments: { 'x-dead-letter-exchange': n.ex.name, 'x-dead-letter-routing-key': 'rk' },
      });
      ch.sendToQueue(source, command('work', 'x'), { messageId: 'x' });
      let got: Awaited<ReturnType<typeof ch.get>> = false;
      for (let i = 0; i < 200 && got === false; i++) {
        got = await ch.get(source);
        if (got === false) await new Promise((r) => setTimeout(r, 10));
      }
      if (got === false) throw new Error('the source message never arrived');
      ch.reject(got, false);
      // A call on the same channel: the broker has taken the reject before the connection closes.
      expect(await ch.checkQueue(source)).toMatchObject({ messageCount: 0 });
    });
    let dead: Record<string, unknown> | undefined;
    await waitFor(
      () =>
        withRawChannel(async (ch) => {
          const m = await ch.get(n.dlq, { noAck: true });
          if (m !== false) dead = m.properties.headers ?? {};
          return dead !== undefined;
        }),
      { timeoutMs: 10_000, intervalMs: 50, what: 'the dead letter' },
    );
    const history = [expect.objectContaining({ count: 1, reason: 'rejected', queue: source })];
    // The first delivery is the broker's dead letter.
    expect(seen[0]?.['x-death']).toEqual(history);
    const brokers = (headers: Record<string, unknown> | undefined): string[] =>
      Object.keys(headers ?? {}).filter((key) =>
        /^x-(death|first-death-|last-death-|delivery-count)/.test(key),
      );
    // The counted requeue's copy, then the dead letter: the history in postage's own header.
    expect([seen.length, brokers(seen[1]), seen[1]?.['x-postage-deaths']]).toEqual([2, [], history]);
    expect([brokers(dead), dead?.['x-postage-deaths'], dead?.['x-postage-reason']]).toEqual([
      [],
      history,
      ErrorCode.DELIVERY_LIMIT,
    ]);
  }, 30_000);

  it('handler throws - default outcome: logged, dead-lettered with the error, channel stays open, following messages processed', async () => {
    const n = names();
    const logger = new MemoryLogger();
    const p = processor(n, {}, logger);
    const lost: unknown[] = [];
    p.consumer.on('lost', (e) => lost.push(e));
    const handled: string[] = [];
    const acked: string[] = [];
    p.registerHandler('command', 'work', (content: { parameters: string }) => {
      handled.push(content.parameters);
      if (content.parameters.startsWith('bad')) throw new TypeError('cannot handle');
      acked.push(content.parameters);
    });
    await p.start();
    const produced = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? `bad-${i}` : `ok-${i}`));
    await produce(
      n.queue,
      produced.map((id) => [id, command('work', id)]),
    );
    await waitFor(() => handled.length === 30, { timeoutMs: 10_000, what: 'every message handled' });
    let dead: Dead[] = [];
    await waitFor(
      async () => {
        dead = [...dead, ...(await drain(n.dlq))];
        return dead.length >= 10;
      },
      { timeoutMs: 10_000, what: 'the dead letters' },
    );
    const counts = count(produced, handled, acked, dead);
    console.log('handler throws:', counts);
    expect(counts).toEqual({
      produced: 30,
      handled: 30,
      acked: 20,
      deadLettered: 10,
      duplicates: 0,
      lost: 0,
    });
    expect(new Set(dead.map((d) => d.reason))).toEqual(new Set([ErrorCode.HANDLER_FAILED]));
    expect(new Set(dead.map((d) => d.error))).toEqual(new Set(['TypeError: cannot handle']));
    expect(lost).toEqual([]);
    expect(logger.lines.filter((l) => l.message.startsWith('handler failed'))).toHaveLength(10);
    // The same channel still consumes.
    await produce(n.queue, [['after', command('work', 'after')]]);
    await waitFor(() => acked.includes('after'), { what: 'the message after the failures' });
    expect(await queueDepth(n.queue)).toBe(0);
  }, 30_000);

  it('dead letter - with its dead-letter queue deleted, unroutable dead letters are not acked: the originals go back (UNROUTABLE reported) and arrive once when the queue is back; none lost', async () => {
    const n = names();
    const p = processor(n, { confirmTimeout: 2_000 });
    const errors: string[] = [];
    p.on('error', (e) => errors.push(e.code));
    const handled: string[] = [];
    const acked: string[] = [];
    p.registerHandler('command', 'work', (content: { parameters: string }) => {
      handled.push(content.parameters);
      if (content.parameters.startsWith('bad')) return Outcome.deadLetter('BAD');
      acked.push(content.parameters);
      return undefined;
    });
    await p.start();
    await withRawChannel((ch) => ch.deleteQueue(n.dlq));
    const produced = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? `bad-${i}` : `ok-${i}`));
    await produce(
      n.queue,
      produced.map((id) => [id, command('work', id)]),
    );
    await waitFor(() => errors.length >= 5, { timeoutMs: 10_000, what: 'the unroutable dead letters' });
    expect(new Set(errors)).toEqual(new Set([ErrorCode.UNROUTABLE]));
    await withRawChannel(async (ch) => {
      await ch.assertQueue(n.dlq, { durable: true });
      await ch.bindQueue(n.dlq, n.dlx, '');
    });
    let dead: Dead[] = [];
    await waitFor(
      async () => {
        dead = [...dead, ...(await drain(n.dlq))];
        return dead.length >= 5;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'the dead letters once the queue is back' },
    );
    await p.close();
    dead = [...dead, ...(await drain(n.dlq))];
    const counts = count(produced, [...new Set(handled)], acked, dead);
    console.log('dead-letter queue deleted:', counts, 'unroutable reports:', errors.length);
    expect(counts).toEqual({ produced: 10, handled: 10, acked: 5, deadLettered: 5, duplicates: 0, lost: 0 });
    expect(new Set(dead.map((d) => d.reason))).toEqual(new Set(['BAD']));
    expect(await queueDepth(n.queue)).toBe(0);
  }, 40_000);

  it('requeue - a memory alarm withholds the confirms of counted requeues: CONFIRM_TIMEOUT is reported, the originals go back, none lost once the alarm clears (at-least-once: duplicates allowed)', async () => {
    const n = names();
    const p = processor(n, { confirmTimeout: 300, maxDeliveries: 5 });
    const errors: string[] = [];
    p.on('error', (e) => errors.push(e.code));
    const handled: string[] = [];
    const acked: string[] = [];
    let alarm: Promise<unknown> | undefined;
    p.registerHandler('command', 'work', (content: { parameters: string }, context: HandlerContext) => {
      handled.push(content.parameters);
      if (context.deliveries === 1) {
        // Publishing connections are blocked from now on: the requeue's copy gets no confirm.
        alarm ??= ctl('set_vm_memory_high_watermark', '0');
        return alarm.then(() => Outcome.requeue({ delayMs: 0 }));
      }
      acked.push(content.parameters);
      return undefined;
    });
    await p.start();
    const produced = ['a', 'b', 'c'];
    await produce(
      n.queue,
      produced.map((id) => [id, command('work', id)]),
    );
    try {
      await waitFor(() => errors.length >= 1, { timeoutMs: 10_000, what: 'the confirm timeout' });
      expect(errors[0]).toBe(ErrorCode.CONFIRM_TIMEOUT);
    } finally {
      await ctl('set_vm_memory_high_watermark', '0.4');
    }
    await waitFor(() => produced.every((id) => acked.includes(id)), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'every message acked after the alarm',
    });
    await waitFor(async () => (await queueDepth(n.queue)) === 0, {
      timeoutMs: 10_000,
      what: 'an empty queue',
    });
    await p.close();
    const counts = count(produced, [...new Set(handled)], acked, await drain(n.dlq));
    console.log('memory alarm during counted requeues:', counts, 'reports:', errors);
    expect(counts).toMatchObject({ produced: 3, deadLettered: 0, lost: 0 });
    // A withheld confirm may still land later: at most one extra copy per timed-out confirm.
    expect(counts.duplicates).toBeLessThanOrEqual(errors.length);
  }, 40_000);

  it('requeue - counted requeues on a classic queue come back through the default exchange; the context and the dead letter keep the original exchange and routing key', async () => {
    const n = names();
    const p = processor(n, { maxDeliveries: 3 });
    const seen: string[][] = [];
    p.registerHandler('command', 'work', (_c: unknown, context: HandlerContext) => {
      seen.push([context.exchange, context.routingKey, context.fields.exchange, context.fields.routingKey]);
      return Outcome.requeue({ delayMs: 0 });
    });
    await p.start();
    const connection = await rawConnection();
    try {
      const ch = await connection.createConfirmChannel();
      // Through the exchange: the first delivery has the original exchange and routing key.
      ch.publish(n.ex.name, 'rk', command('work', 'x'), { messageId: 'x', mandatory: true });
      await ch.waitForConfirms();
    } finally {
      await connection.close();
    }
    let dead: { headers: Record<string, unknown> } | undefined;
    await waitFor(
      () =>
        withRawChannel(async (ch) => {
          const m = await ch.get(n.dlq, { noAck: true });
          if (m !== false) dead = { headers: m.properties.headers ?? {} };
          return dead !== undefined;
        }),
      { timeoutMs: 10_000, intervalMs: 50, what: 'the dead letter' },
    );
    expect(seen).toEqual([
      [n.ex.name, 'rk', n.ex.name, 'rk'],
      [n.ex.name, 'rk', '', n.queue],
      [n.ex.name, 'rk', '', n.queue],
    ]);
    expect(dead?.headers).toMatchObject({
      'x-postage-reason': ErrorCode.DELIVERY_LIMIT,
      'x-postage-exchange': n.ex.name,
      'x-postage-routing-key': 'rk',
      'x-postage-deliveries': 3,
    });
  }, 20_000);

  it('bad input - malformed JSON and an invalid envelope are dead-lettered with a reason; the process stays up', async () => {
    const n = names();
    const p = processor(n);
    const acked: string[] = [];
    p.registerHandler(
      'command',
      'work',
      (content: { parameters: string }) => void acked.push(content.parameters),
    );
    await p.start();
    const bodies: Array<[string, Buffer]> = [
      ['malformed', Buffer.from('{"type": "command", "name": ')],
      ['ok-1', command('work', 'ok-1')],
      ['envelope', Buffer.from(JSON.stringify({ type: 'command', name: 42 }))],
      ['ok-2', command('work', 'ok-2')],
      ['binary', Buffer.from([0xff, 0xfe, 0x00])],
      ['ok-3', command('work', 'ok-3')],
    ];
    await produce(n.queue, bodies);
    await waitFor(() => acked.length === 3, { what: 'the good messages' });
    let dead: Dead[] = [];
    await waitFor(
      async () => {
        dead = [...dead, ...(await drain(n.dlq))];
        return dead.length >= 3;
      },
      { timeoutMs: 10_000, what: 'the dead letters' },
    );
    const produced = bodies.map(([id]) => id);
    const counts = count(produced, acked, acked, dead);
    console.log('bad input:', counts);
    expect(counts).toEqual({ produced: 6, handled: 3, acked: 3, deadLettered: 3, duplicates: 0, lost: 0 });
    expect(Object.fromEntries(dead.map((d) => [d.id, d.reason]))).toEqual({
      malformed: ErrorCode.DECODE_FAILED,
      envelope: ErrorCode.INVALID_MESSAGE,
      binary: ErrorCode.DECODE_FAILED,
    });
    expect(dead.every((d) => typeof d.error === 'string' && d.error.length > 0)).toBe(true);
    expect(p.connection.isOpen).toBe(true);
  }, 30_000);

  it('shutdown - close() with handlers in flight: they finish or get the AbortSignal by the deadline; unstarted go back and a second processor consumes them; none lost', async () => {
    const n = names();
    const handledBy: Record<'A' | 'B', string[]> = { A: [], B: [] };
    const acked: string[] = [];
    const aborted: string[] = [];
    const handler =
      (who: 'A' | 'B') =>
      async (content: { parameters: string }, context: HandlerContext): Promise<Outcome | undefined> => {
        handledBy[who].push(content.parameters);
        const stuck = content.parameters.startsWith('stuck') && who === 'A';
        const ms = stuck ? 60_000 : 100;
        const done = await new Promise<boolean>((resolve) => {
          const onAbort = (): void => {
            clearTimeout(timer);
            resolve(false);
          };
          const timer = setTimeout(() => {
            context.signal.removeEventListener('abort', onAbort);
            resolve(true);
          }, ms);
          context.signal.addEventListener('abort', onAbort);
        });
        if (!done) {
          aborted.push(content.parameters);
          return Outcome.requeue({ delayMs: 0 });
        }
        acked.push(content.parameters);
        return undefined;
      };
    const a = processor(n, { prefetch: 10, concurrency: 3, shutdownTimeout: 500 });
    a.registerHandler('command', 'work', handler('A'));
    await a.start();
    const produced = Array.from({ length: 40 }, (_, i) => (i === 0 ? 'stuck-0' : `m-${i}`));
    await produce(
      n.queue,
      produced.map((id) => [id, command('work', id)]),
    );
    await waitFor(() => a.counts.received >= 10 && handledBy.A.length >= 3, { what: 'A busy' });
    const closing = a.close();
    await closing;
    const countsA = a.counts;
    expect(aborted).toEqual(['stuck-0']);
    expect(countsA.returned).toBeGreaterThan(0);
    const b = processor(n, { prefetch: 10 });
    b.registerHandler('command', 'work', handler('B'));
    await b.start();
    await waitFor(() => new Set(acked).size === 40, { timeoutMs: 20_000, what: 'every message acked' });
    await b.close();
    const handled = [...handledBy.A, ...handledBy.B];
    const counts = count(produced, handled, acked, await drain(n.dlq));
    console.log('close with handlers in flight:', { ...counts, returnedByA: countsA.returned, aborted });
    expect(counts).toMatchObject({ produced: 40, acked: 40, deadLettered: 0, duplicates: 0, lost: 0 });
    // Only the aborted one ran twice; every unstarted message went back and ran once, on B.
    expect(handled.length).toBe(41);
    expect(handledBy.B).toContain('stuck-0');
    expect(await queueDepth(n.queue)).toBe(0);
  }, 40_000);
  it('shutdown - SIGTERM (closeOnSignals) lets the handler in flight finish, puts the prefetched rest back, exits 0; none lost', async () => {
    const n = names();
    const root = path.resolve(__dirname, '../..');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'spec/fixtures/graceful.ts')], {
      cwd: root,
      env: { ...process.env, POSTAGE_URL: testUrl(), WORK_EXCHANGE: n.ex.name, WORK_QUEUE: n.queue },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    cleanup.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitFor(() => output.includes('ready'), { timeoutMs: 20_000, what: 'the child consuming' });
    const produced = Array.from({ length: 8 }, (_, i) => `m-${i}`);
    await produce(
      n.queue,
      produced.map((id) => [id, command('work', id)]),
    );
    await waitFor(() => output.includes('handled m-0'), {
      timeoutMs: 10_000,
      what: 'a first message handled',
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const started = [...output.matchAll(/started (\S+)/g)].map((m) => m[1] as string);
    const handled = [...output.matchAll(/handled (\S+)/g)].map((m) => m[1] as string);
    const back = await withRawChannel(async (ch) => {
      const ids: string[] = [];
      for (;;) {
        const m = await ch.get(n.queue, { noAck: true });
        if (m === false) return ids;
        ids.push(String(m.properties.messageId));
      }
    });
    const counts = {
      produced: produced.length,
      handled: handled.length,
      requeued: back.length,
      unfinished: started.filter((id) => !handled.includes(id)).length,
      duplicates: handled.filter((id) => back.includes(id)).length,
      lost: produced.filter((id) => !handled.includes(id) && !back.includes(id)).length,
    };
    console.log('SIGTERM with a handler in flight:', counts, output.trim().split('\n').at(-1));
    // Every started handler finished before the exit; the rest went back to the queue.
    expect(counts).toMatchObject({ produced: 8, unfinished: 0, duplicates: 0, lost: 0 });
    expect(counts.handled).toBeGreaterThanOrEqual(1);
    expect(counts.handled + counts.requeued).toBe(8);
  }, 40_000);
});
