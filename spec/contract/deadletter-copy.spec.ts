/**
 * The copies postage makes of a message (its own dead letter, and on classic queues the counted
 * requeue) against both brokers: a copy keeps no property the broker acts on (expiration, a
 * foreign user_id, a forged x-delivery-count), records the originals in x-postage-original-*
 * headers, and a message whose copy cannot be made at all (a header table past 64 KiB) goes to
 * the broker's own dead-lettering, once. Counted like Jepsen: produced, delivered,
 * dead-lettered, left in the queue, lost (lost must be 0).
 */
import {
  ErrorCode,
  GenericProducer,
  MessageCommand,
  MessageProcessor,
  MessageResultException,
  Outcome,
  RpcCommand,
  type ExchangeDefinition,
  type HandlerContext,
  type ProcessorOptions,
} from '../../lib';
import { resolveConnectionConfig } from '../../lib/connection/config';
import { amqpTransport } from '../../lib/transport/amqp/amqp-transport';
import type { PublishOptions, TransportMessage } from '../../lib/transport/types';
import { ctl, uid } from '../helpers/broker';
import { channel, contractUrl, drain, publishConfirmed, sleep, target } from '../helpers/contract';
import { MemoryLogger } from '../helpers/memory-logger';

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

function command(name: string, parameters: unknown): string {
  return JSON.stringify(new MessageCommand(name, parameters).body);
}

/** Jepsen-style counts of one run. */
interface Counts {
  produced: number;
  delivered: number;
  deadLettered: number;
  leftInQueue: number;
  lost: number;
}

function counts(produced: string[], delivered: string[], dead: TransportMessage[], left: number): Counts {
  const deadIds = new Set(dead.map((m) => String(m.properties.messageId)));
  const settled = new Set([...deadIds]);
  for (const id of delivered) settled.add(id);
  return {
    produced: produced.length,
    delivered: delivered.length,
    deadLettered: dead.length,
    leftInQueue: left,
    lost: produced.filter((id) => !settled.has(id)).length,
  };
}

/** Waits until `queue` holds `count` messages and returns them (acked). */
async function collect(queue: string, count: number, timeoutMs = 15_000): Promise<TransportMessage[]> {
  const ch = await channel();
  const out: TransportMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count) {
    if (Date.now() > deadline) throw new Error(`got ${out.length} of ${count} messages from ${queue}`);
    out.push(...(await drain(ch, queue, count - out.length, 100)));
  }
  await ch.close();
  return out;
}

async function depth(queue: string): Promise<number> {
  const ch = await channel();
  const { messageCount } = await ch.checkQueue(queue);
  await ch.close();
  return messageCount;
}

describe(`dead-letter copies (contract, ${target})`, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  function setup(options: ProcessorOptions = {}) {
    const ex = exchange(uid('ex'));
    const queue = uid('q.copy');
    const logger = new MemoryLogger();
    const processor = new MessageProcessor({
      url: contractUrl(),
      logger,
      eqk: [[ex, [[queue, 'rk']]]],
      deadLetter: true,
      ...options,
    });
    const errors: string[] = [];
    processor.on('error', (e) => errors.push(e.code));
    const names = { ex, queue, dlx: `${queue}.dlx`, dlq: `${queue}.dlq` };
    cleanup.push(async () => {
      const ch = await channel();
      await ch.deleteQueue(names.queue).catch(() => undefined);
      await ch.deleteQueue(names.dlq).catch(() => undefined);
      await ch.deleteExchange(names.dlx).catch(() => undefined);
      await ch.close().catch(() => undefined);
    });
    cleanup.push(() => processor.close());
    return { ...names, processor, logger, errors };
  }

  async function publish(queue: string, id: string, body: string, options: PublishOptions = {}) {
    const ch = await channel(undefined, true);
    expect(await publishConfirmed(ch, '', queue, body, { messageId: id, ...options })).toBeNull();
    await ch.close();
  }

  it('dead-letter copy - an RPC request whose handler throws stays in the DLQ long after its TTL; its expiration is kept in x-postage-original-expiration', async () => {
    const s = setup();
    const delivered: string[] = [];
    s.processor.registerHandler(
      'command',
      'boom',
      (_content: unknown, _reply: unknown, context: HandlerContext) => {
        delivered.push(String(context.properties.messageId));
        throw new Error('boom');
      },
      { rpc: true },
    );
    await s.processor.start();
    const producer = new GenericProducer({ url: contractUrl(), eks: [[s.ex, 'rk']] });
    cleanup.push(() => producer.close());
    // The request carries expiration = its timeout (500 ms).
    const result = await producer.call(new RpcCommand('boom', 1), { _timeout: 0.5, _max_retry: 0 });
    expect(result).toBeInstanceOf(MessageResultException);
    await waitUntil(() => s.processor.counts.deadLettered === 1, 'the dead letter');
    // Three times the TTL: a copy that kept the expiration would be gone by now.
    await sleep(1500);
    const dead = await collect(s.dlq, 1);
    const left = await depth(s.queue);
    const c = counts(delivered, delivered, dead, left);
    console.log(`rpc request with a TTL, dead-lettered (${target}):`, c);
    expect(c).toEqual({ produced: 1, delivered: 1, deadLettered: 1, leftInQueue: 0, lost: 0 });
    const [copy] = dead;
    expect(copy?.properties.expiration).toBeUndefined();
    expect(copy?.properties.headers).toMatchObject({
      'x-postage-reason': ErrorCode.HANDLER_FAILED,
      'x-postage-original-expiration': '500',
      'x-postage-queue': s.queue,
    });
    // What the caller needs to trace the request stays: reply-to and correlation id.
    expect(copy?.properties.correlationId).toEqual(expect.any(String));
  }, 30_000);

  it('dead-letter copy - a message with a 300 ms TTL whose handler throws stays in the DLQ after its TTL', async () => {
    const s = setup();
    const delivered: string[] = [];
    s.processor.registerHandler('command', 'work', (_c: unknown, context: HandlerContext) => {
      delivered.push(String(context.properties.messageId));
      throw new Error('cannot');
    });
    await s.processor.start();
    await publish(s.queue, 'ttl-1', command('work', 1), { expiration: '300' });
    await waitUntil(() => s.processor.counts.deadLettered === 1, 'the dead letter');
    await sleep(1000);
    const dead = await collect(s.dlq, 1);
    const c = counts(['ttl-1'], delivered, dead, await depth(s.queue));
    console.log(`message with a TTL, dead-lettered (${target}):`, c);
    expect(c).toEqual({ produced: 1, delivered: 1, deadLettered: 1, leftInQueue: 0, lost: 0 });
    expect(dead[0]?.properties.expiration).toBeUndefined();
    expect(dead[0]?.properties.headers?.['x-postage-original-expiration']).toBe('300');
  }, 30_000);

  it("dead-letter copy - user_id: another broker user's is dropped (kept in x-postage-original-user-id), the processor's own is kept; each message is delivered exactly maxDeliveries times and dead-lettered once", async () => {
    const s = setup({ maxDeliveries: 3 });
    const other = await otherUser();
    cleanup.push(other.remove);
    const delivered: string[] = [];
    s.processor.registerHandler('command', 'work', (_c: unknown, context: HandlerContext) => {
      delivered.push(String(context.properties.messageId));
      return Outcome.requeue({ delayMs: 0 });
    });
    await s.processor.start();
    // Published by the other user with its (validated) user_id, and by guest with its own.
    const theirs = await other.channel();
    expect(
      await publishConfirmed(theirs, '', s.queue, command('work', 'theirs'), {
        messageId: 'theirs',
        userId: other.name,
      }),
    ).toBeNull();
    await publish(s.queue, 'ours', command('work', 'ours'), { userId: 'guest' });
    const dead = await collect(s.dlq, 2);
    await s.processor.close();
    const c = counts(['theirs', 'ours'], delivered, dead, await depth(s.queue));
    console.log(`user_id (${target}):`, c, 'errors:', s.errors);
    expect(c).toEqual({ produced: 2, delivered: 6, deadLettered: 2, leftInQueue: 0, lost: 0 });
    expect(delivered.filter((id) => id === 'theirs')).toHaveLength(3);
    expect(delivered.filter((id) => id === 'ours')).toHaveLength(3);
    const byId = Object.fromEntries(dead.map((m) => [String(m.properties.messageId), m]));
    expect(byId['theirs']?.properties.userId).toBeUndefined();
    expect(byId['theirs']?.properties.headers).toMatchObject({
      'x-postage-original-user-id': other.name,
      'x-postage-reason': ErrorCode.DELIVERY_LIMIT,
      'x-postage-deliveries': 3,
    });
    expect(byId['ours']?.properties.userId).toBe('guest');
    expect(byId['ours']?.properties.headers?.['x-postage-original-user-id']).toBeUndefined();
    expect(s.errors).toEqual([]);
  }, 40_000);

  it('delivery count - a client-set x-delivery-count on a classic queue is not taken for the broker count: delivered exactly maxDeliveries times, then dead-lettered once without it', async () => {
    const s = setup({ maxDeliveries: 3 });
    const seen: number[] = [];
    s.processor.registerHandler('command', 'work', (_c: unknown, context: HandlerContext) => {
      seen.push(context.deliveries);
      return Outcome.requeue({ delayMs: 0 });
    });
    await s.processor.start();
    await publish(s.queue, 'forged', command('work', 1), { headers: { 'x-delivery-count': 1 } });
    const dead = await collect(s.dlq, 1);
    await s.processor.close();
    const c = counts(
      ['forged'],
      seen.map(() => 'forged'),
      dead,
      await depth(s.queue),
    );
    console.log(`forged x-delivery-count (${target}):`, c);
    expect(c).toEqual({ produced: 1, delivered: 3, deadLettered: 1, leftInQueue: 0, lost: 0 });
    expect(seen).toEqual([1, 2, 3]);
    expect(dead[0]?.properties.headers?.['x-delivery-count']).toBeUndefined();
    expect(dead[0]?.properties.headers?.['x-postage-deliveries']).toBe(3);
  }, 30_000);

  for (const outcome of ['deadLetter', 'requeue'] as const) {
    it(`copy too large - a message with ~64 KB of headers (${outcome}) goes to the broker's own dead-lettering once; the processor handles the next message and closes`, async () => {
      const maxDeliveries = 3;
      const s = setup({ maxDeliveries });
      const delivered: string[] = [];
      s.processor.registerHandler('command', 'work', (content: { parameters: string }) => {
        delivered.push(content.parameters);
        if (content.parameters !== 'big') return undefined;
        if (outcome === 'requeue') return Outcome.requeue({ delayMs: 0 });
        throw new Error('cannot handle big');
      });
      await s.processor.start();
      // 65,415 bytes of header table: fits amqplib's 64 KiB encoder, the copy's x-postage-* do not.
      await publish(s.queue, 'big', command('work', 'big'), { headers: { 'x-big': 'a'.repeat(65_400) } });
      await publish(s.queue, 'small', command('work', 'small'));
      await waitUntil(() => delivered.includes('small'), 'the message after the big one');
      const dead = await collect(s.dlq, 1);
      await s.processor.close();
      const c = counts(['big', 'small'], [...new Set(delivered)], dead, await depth(s.queue));
      console.log(`~64 KB headers, ${outcome} (${target}):`, c, 'deliveries:', delivered.length);
      expect(c).toEqual({ produced: 2, delivered: 2, deadLettered: 1, leftInQueue: 0, lost: 0 });
      expect(delivered.filter((id) => id === 'big')).toHaveLength(outcome === 'requeue' ? maxDeliveries : 1);
      const [copy] = dead;
      // The broker dead-lettered the original itself: x-death, none of postage's headers.
      expect(copy?.properties.messageId).toBe('big');
      expect(copy?.properties.headers?.['x-postage-reason']).toBeUndefined();
      expect((copy?.properties.headers?.['x-death'] as Array<Record<string, unknown>>)[0]).toMatchObject({
        reason: 'rejected',
        queue: s.queue,
        count: 1,
      });
      const logged = s.logger.at('error').filter((l) => l.fields?.['code'] === ErrorCode.MESSAGE_TOO_LARGE);
      expect(logged).toHaveLength(1);
      expect(s.processor.counts).toMatchObject({ deadLettered: 1 });
    }, 30_000);
  }

  /** A second broker user (RabbitMQ: created with rabbitmqctl; the in-process broker has no users). */
  async function otherUser(): Promise<{
    name: string;
    channel: () => Promise<Awaited<ReturnType<typeof channel>>>;
    remove: () => Promise<unknown>;
  }> {
    const name = uid('user');
    if (target === 'memory') {
      return { name, channel: () => channel(undefined, true), remove: () => Promise.resolve() };
    }
    const password = uid('pw');
    await ctl('add_user', name, password);
    await ctl('set_permissions', '-p', '/', name, '.*', '.*', '.*');
    return {
      name,
      channel: async () => {
        const [endpoint] = resolveConnectionConfig({ url: contractUrl(), user: name, password }).endpoints;
        const connection = await amqpTransport.connect(endpoint!, {
          heartbeat: 0,
          connectTimeout: 10_000,
          connectionName: 'postage contract (other user)',
        });
        connection.on('error', () => undefined);
        cleanup.push(() => connection.close());
        return channel(connection, true);
      },
      remove: () => ctl('delete_user', name),
    };
  }
});

async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
