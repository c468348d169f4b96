/**
 * Dead-letter copies against RabbitMQ where only RabbitMQ can show the point: CC routing, a
 * publish the broker refuses by permission, and a process frozen by a copy that cannot be
 * encoded. Counted like Jepsen: produced, delivered, dead-lettered, left in queue, lost.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

import type { GetMessage } from 'amqplib';

import {
  ErrorCode,
  MessageCommand,
  MessageProcessor,
  Outcome,
  type ExchangeDefinition,
  type HandlerContext,
} from '../../lib';
import { ctl, rawConnection, testUrl, uid, waitFor, withRawChannel } from '../helpers/broker';
import { MemoryLogger } from '../helpers/memory-logger';

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

function command(name: string, parameters: unknown): Buffer {
  return Buffer.from(JSON.stringify(new MessageCommand(name, parameters).body));
}

async function publish(
  exchangeName: string,
  key: string,
  id: string,
  content: Buffer,
  options: Record<string, unknown> = {},
) {
  const connection = await rawConnection();
  try {
    const ch = await connection.createConfirmChannel();
    ch.publish(exchangeName, key, content, { messageId: id, ...options });
    await ch.waitForConfirms();
  } finally {
    await connection.close();
  }
}

async function take(queue: string): Promise<GetMessage[]> {
  return withRawChannel(async (ch) => {
    const out: GetMessage[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) return out;
      out.push(m);
    }
  });
}

async function depth(queue: string): Promise<number> {
  return withRawChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);
}

async function waitForDead(queue: string, count: number, timeoutMs = 15_000): Promise<GetMessage[]> {
  const dead: GetMessage[] = [];
  await waitFor(
    async () => {
      dead.push(...(await take(queue)));
      return dead.length >= count;
    },
    { timeoutMs, intervalMs: 50, what: `${count} dead letter(s) in ${queue}` },
  );
  return dead;
}

describe('dead-letter copies (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  function names() {
    const queue = uid('q.rules');
    const n = { ex: exchange(uid('ex')), queue, dlx: `${queue}.dlx`, dlq: `${queue}.dlq` };
    cleanup.push(() =>
      withRawChannel(async (ch) => {
        await ch.deleteQueue(n.queue);
        await ch.deleteQueue(n.dlq);
        await ch.deleteExchange(n.dlx);
      }),
    );
    return n;
  }

  it('CC - a counted requeue and a dead letter do not carry the CC header: no extra copy reaches the CC queue; the dead letter keeps it in x-postage-original-cc', async () => {
    const n = names();
    const spy = uid('q.spy');
    const p = new MessageProcessor({ url: testUrl(), eqk: [[n.ex, [[n.queue, 'rk']]]], deadLetter: true });
    cleanup.push(() => p.close());
    // The spy queue is bound to the exchange with its own name as key: the CC key that reaches it.
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(spy)));
    const seen: Array<unknown> = [];
    p.registerHandler('command', 'work', (_c: unknown, context: HandlerContext) => {
      seen.push(context.properties.headers?.['CC']);
      if (context.deliveries === 1) return Outcome.requeue({ delayMs: 0 });
      throw new Error('second time: dead-letter it');
    });
    await p.start();
    await withRawChannel(async (ch) => {
      await ch.assertQueue(spy, { durable: false });
      await ch.bindQueue(spy, n.ex.name, spy);
    });
    // Routed to the processor's queue and, by CC, to the spy queue.
    await publish(n.ex.name, 'rk', 'cc-1', command('work', 1), { CC: [spy], mandatory: true });
    const [dead] = await waitForDead(n.dlq, 1);
    await p.close();
    const spied = await take(spy);
    const counts = {
      produced: 1,
      delivered: seen.length,
      deadLettered: 1,
      leftInQueue: await depth(n.queue),
      copiesInCcQueue: spied.length,
      lost: 0,
    };
    console.log('CC header:', counts);
    // Only the original's own CC copy: the requeue did not route a second one there.
    expect(counts).toEqual({
      produced: 1,
      delivered: 2,
      deadLettered: 1,
      leftInQueue: 0,
      copiesInCcQueue: 1,
      lost: 0,
    });
    expect(seen).toEqual([[spy], undefined]);
    expect(dead?.properties.headers?.['CC']).toBeUndefined();
    expect(dead?.properties.headers?.['x-postage-original-cc']).toEqual([spy]);
  }, 30_000);

  it('failed copies count - the broker refuses every dead-letter copy (no write permission on the DLX): the message is delivered exactly maxDeliveries times, then the broker dead-letters it once; nothing left, none lost', async () => {
    const n = names();
    const user = uid('user');
    const password = uid('pw');
    await ctl('add_user', user, password);
    cleanup.push(() => ctl('delete_user', user));
    await ctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
    const url = new URL(testUrl());
    url.username = user;
    url.password = password;
    const logger = new MemoryLogger();
    const maxDeliveries = 3;
    const p = new MessageProcessor({
      url: url.toString(),
      logger,
      eqk: [[n.ex, [[n.queue, 'rk']]]],
      deadLetter: true,
      maxDeliveries,
    });
    cleanup.push(() => p.close());
    const errors: string[] = [];
    p.on('error', (e) => errors.push(e.code));
    const delivered: number[] = [];
    p.registerHandler('command', 'work', (_c: unknown, context: HandlerContext) => {
      delivered.push(context.deliveries);
      throw new Error('always fails');
    });
    await p.start();
    // Declared: from now on the user may write (publish) anywhere but to exchanges named `*.dlx`
    // (RabbitMQ checks that permission when a queue naming its DLX is declared, so only now).
    await ctl('set_permissions', '-p', '/', user, '.*', '^(?!.*\\.dlx$).*', '.*');
    await publish('', n.queue, 'refused-1', command('work', 1));
    const dead = await waitForDead(n.dlq, 1);
    await p.close();
    const counts = {
      produced: 1,
      delivered: delivered.length,
      deadLettered: dead.length,
      leftInQueue: await depth(n.queue),
      lost: 0,
    };
    console.log('dead-letter copies refused (403):', counts, 'errors:', errors);
    expect(counts).toEqual({
      produced: 1,
      delivered: maxDeliveries,
      deadLettered: 1,
      leftInQueue: 0,
      lost: 0,
    });
    expect(delivered).toEqual([1, 2, 3]);
    expect(new Set(errors)).toEqual(new Set([ErrorCode.ACCESS_REFUSED]));
    // The broker's own dead-lettering: x-death, once.
    expect(dead[0]?.properties.messageId).toBe('refused-1');
    expect(dead[0]?.properties.headers?.['x-death']).toEqual([
      expect.objectContaining({ reason: 'rejected', queue: n.queue, count: 1 }),
    ]);
    expect(
      logger
        .at('error')
        .some((l) => l.message.includes('rejected to the broker') && l.fields?.['queue'] === n.queue),
    ).toBe(true);
  }, 40_000);

  it('copy too large - a ~64 KB header message does not freeze the process: it reaches the DLQ through the broker, the next message is handled, SIGTERM exits 0, nothing left in the queue', async () => {
    const n = names();
    const root = path.resolve(__dirname, '../..');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'spec/fixtures/big-headers.ts')],
      {
        cwd: root,
        env: { ...process.env, POSTAGE_URL: testUrl(), WORK_EXCHANGE: n.ex.name, WORK_QUEUE: n.queue },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    cleanup.push(async () => {
      // Only this spec's own child, by its PID.
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    });
    await waitFor(() => output.includes('ready'), { timeoutMs: 20_000, what: 'the child consuming' });
    await publish(n.ex.name, 'work', 'big', command('work', 'big'), {
      headers: { 'x-big': 'a'.repeat(65_400) },
    });
    await publish(n.ex.name, 'work', 'small', command('work', 'small'));
    await waitFor(() => output.includes('handled small'), {
      timeoutMs: 15_000,
      what: 'the message after the big one handled',
    });
    const dead = await waitForDead(n.dlq, 1);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const handled = [...output.matchAll(/handled (\S+)/g)].map((m) => m[1] as string);
    const counts = {
      produced: 2,
      delivered: handled.length,
      deadLettered: dead.length,
      leftInQueue: await depth(n.queue),
      lost: ['big', 'small'].filter((id) => !handled.includes(id)).length,
    };
    console.log('~64 KB headers in a process with SIGTERM:', counts, output.trim().split('\n').at(-1));
    expect(counts).toEqual({ produced: 2, delivered: 2, deadLettered: 1, leftInQueue: 0, lost: 0 });
    expect(dead[0]?.properties.messageId).toBe('big');
    expect(dead[0]?.properties.headers?.['x-death']).toEqual([
      expect.objectContaining({ reason: 'rejected', queue: n.queue, count: 1 }),
    ]);
  }, 60_000);
});
