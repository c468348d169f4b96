/**
 * Processing features on the in-process broker, driven by the test client: outcomes, error
 * handlers, matchers, hooks, translators, runOnce, graceful shutdown and poison messages.
 */
import type { PostageError } from '../../lib';
import {
  DeleteMessage,
  ErrorCode,
  MemoryBroker,
  MessageCommand,
  MessageHandler,
  MessageMatcher,
  MessageProcessor,
  Outcome,
  RpcCommand,
  RpcHandler,
  RpcMatcher,
  TestClient,
  closeOnSignals,
  type ExchangeDefinition,
  type HandlerContext,
  type ProcessorOptions,
} from '../../lib';
import { memoryTransport } from '../../lib/transport/memory';

const work: ExchangeDefinition = {
  name: 'work',
  exchange_type: 'direct',
  passive: false,
  durable: false,
  auto_delete: false,
};

let n = 0;
const url = (): string => `memory://features-${process.pid}-${++n}`;

async function until(predicate: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  for (let i = 0; i < timeoutMs / 2; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function rawChannel(name: string) {
  const connection = await memoryTransport.connect(
    { protocol: 'memory', host: name, port: 0, vhost: '/', user: '', password: '' },
    { heartbeat: 0, connectTimeout: 0, connectionName: 'setup' },
  );
  return { connection, channel: await connection.createChannel() };
}

class Worker extends MessageProcessor {
  deliveries: number[] = [];
  calls: string[] = [];

  @MessageHandler('command', 'retry') retry(_c: unknown, context: HandlerContext) {
    this.deliveries.push(context.deliveries);
    return Outcome.requeue({ delayMs: 0 });
  }
  @MessageHandler('command', 'bad-order') badOrder() {
    return Outcome.deadLetter('BAD_ORDER');
  }
  @MessageHandler('command', 'delete') del(): never {
    throw new DeleteMessage('duplicate');
  }
  @MessageHandler('command', 'delete-value') delValue() {
    return new DeleteMessage('duplicate');
  }
  @MessageHandler('command', 'crash') crash(): never {
    throw new Error('boom');
  }
  @MessageHandler('command', 'ok') ok(content: { parameters: string }) {
    this.calls.push(`ok ${content.parameters}`);
  }
  @MessageHandler('command', 'forgiven', {
    onError: (error) => (error instanceof RangeError ? true : undefined),
  })
  forgiven(content: { parameters: string }): never {
    if (content.parameters === 'range') throw new RangeError('forgiven');
    throw new TypeError('not forgiven');
  }
}

function worker(options: ProcessorOptions = {}): Worker {
  return new Worker({
    url: url(),
    eqk: [[work, [['work-q', 'work']]]],
    deadLetter: true,
    maxDeliveries: 3,
    ...options,
  });
}

describe('processing features (in-process broker)', () => {
  afterAll(() => MemoryBroker.resetAll());

  test('outcomes - a returned requeue is counted; past maxDeliveries the message is dead-lettered with DELIVERY_LIMIT', async () => {
    const processor = worker();
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('retry'))).outcome).toBe('requeue');
    await until(() => client.deadLettered.length === 1, 'the dead letter');
    expect(processor.deliveries).toEqual([1, 2, 3]);
    const dead = client.deadLettered[0];
    expect(dead?.postageReason).toBe(ErrorCode.DELIVERY_LIMIT);
    expect(dead?.deadLetterExchange).toBe('work-q.dlx');
    expect(dead?.headers['x-postage-deliveries']).toBe(3);
    expect(client.broker.queue('work-q.dlq')?.messages).toBe(1);
    expect(client.broker.queue('work-q')?.messages).toBe(0);
    await client.close();
  });

  test('outcomes - deadLetter(reason) dead-letters with the reason; DeleteMessage (thrown or returned) acks and drops', async () => {
    const processor = worker();
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('bad-order'))).outcome).toBe('deadLetter');
    expect(client.deadLettered.map((d) => d.postageReason)).toEqual(['BAD_ORDER']);
    expect((await client.send(new MessageCommand('delete'))).outcome).toBe('ack');
    expect((await client.send(new MessageCommand('delete-value'))).outcome).toBe('ack');
    expect(client.deadLettered).toHaveLength(1);
    expect(client.broker.queue('work-q.dlq')?.messages).toBe(1);
    await client.close();
  });

  test('outcomes - a throwing handler is logged and dead-lettered with its error; the channel stays open for the next message', async () => {
    const processor = worker();
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('crash'))).outcome).toBe('deadLetter');
    expect(client.deadLettered[0]?.postageReason).toBe(ErrorCode.HANDLER_FAILED);
    expect(client.deadLettered[0]?.error).toBe('Error: boom');
    expect((await client.send(new MessageCommand('ok', 'next'))).outcome).toBe('ack');
    expect(processor.calls).toEqual(['ok next']);
    await client.close();
  });

  test('outcomes - without a dead-letter exchange of its own the processor rejects without requeue', async () => {
    const processor = worker({ deadLetter: false });
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('crash'))).outcome).toBe('reject');
    expect((await client.send(new MessageCommand('ok', 'x'))).outcome).toBe('ack');
    await client.close();
  });

  test('error handlers - the handler option decides first, then onError with (error, message, context), then the default', async () => {
    const seen: unknown[] = [];
    const processor = worker({
      onError: (error, message, context) => {
        seen.push([(error as Error).name, message.name, context.queue]);
        return (error as Error).name === 'TypeError' ? Outcome.deadLetter('TYPE') : undefined;
      },
    });
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('forgiven', 'range'))).outcome).toBe('ack');
    expect((await client.send(new MessageCommand('forgiven', 'type'))).outcome).toBe('deadLetter');
    expect((await client.send(new MessageCommand('crash'))).outcome).toBe('deadLetter');
    expect(seen).toEqual([
      ['TypeError', 'forgiven', 'work-q'],
      ['Error', 'crash', 'work-q'],
    ]);
    expect(client.deadLettered.map((d) => [d.postageReason, d.error])).toEqual([
      ['TYPE', 'TypeError: not forgiven'],
      [ErrorCode.HANDLER_FAILED, 'Error: boom'],
    ]);
    await client.close();
  });

  test('error handlers - an error handler returning a delayed requeue holds the message, then puts it back', async () => {
    let attempts = 0;
    const processor = worker({ onError: () => Outcome.requeue({ delayMs: 20 }) });
    processor.registerHandler('command', 'flaky', () => {
      attempts++;
      if (attempts < 2) throw new Error('flaky');
    });
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('flaky'))).outcome).toBe('requeue');
    await until(() => client.acked.length === 1, 'the second delivery');
    expect(attempts).toBe(2);
    expect(client.deadLettered).toHaveLength(0);
    await client.close();
  });

  test('matchers - every matching handler runs for a message, and the strongest outcome wins', async () => {
    class Audit extends MessageProcessor {
      log: string[] = [];
      @MessageHandler('event', 'paid') paid() {
        this.log.push('keyed');
      }
      @MessageMatcher((body) => body.type === 'event') everyEvent(_c: unknown, context: HandlerContext) {
        this.log.push(`matcher ${String(context.body.name)}`);
        return context.body.name === 'refused' ? Outcome.deadLetter('REFUSED') : Outcome.ack();
      }
    }
    const processor = new Audit({ url: url(), eqk: [[work, [['audit-q', 'work']]]], deadLetter: true });
    processor.registerMatcher(
      (body) => body.name === 'refused',
      function refusedToo(this: Audit) {
        this.log.push('function matcher');
      },
    );
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('paid'))).outcome).toBe('ack');
    const event = (name: string) => ({ type: 'event', name, category: 'message', content: {} });
    expect((await client.send(event('paid'))).outcome).toBe('ack');
    expect((await client.send(event('refused'))).outcome).toBe('deadLetter');
    expect(processor.log).toEqual(['keyed', 'matcher paid', 'matcher refused', 'function matcher']);
    await client.close();
  });

  test('matchers - an RPC needs exactly one match: several or none answer a MessageResultError naming it', async () => {
    class Calc extends MessageProcessor {
      @RpcHandler('command', 'add') add(content: { parameters: [number, number] }) {
        return content.parameters[0] + content.parameters[1];
      }
      @RpcMatcher((body) => body.name?.startsWith('neg') === true) neg(content: { parameters: number }) {
        return -content.parameters;
      }
      @RpcMatcher((body) => body.name === 'add' || body.name === 'negate-twice') other() {
        return 'other';
      }
    }
    const client = await TestClient.for(new Calc({ url: url(), eqk: [[work, [['calc-q', 'work']]]] }));
    expect((await client.rpc(new RpcCommand('neg', 5))).unwrap()).toBe(-5);
    const ambiguous = await client.rpc(new RpcCommand('add', [1, 2]));
    expect(ambiguous.ok).toBe(false);
    expect(ambiguous.message).toMatch(/ambiguous rpc command 'add': 2 handlers match \(add .*, other/);
    expect((await client.rpc(new RpcCommand('negate-twice', 1))).message).toMatch(/2 handlers match/);
    expect((await client.rpc(new RpcCommand('mul', 1))).message).toMatch(/no handler for rpc/);
    expect(client.rejected).toHaveLength(0);
    await client.close();
  });

  test('hooks - processing hooks run at start and stop; handling hooks share per-message state and see the outcome', async () => {
    const events: string[] = [];
    const processor = worker({
      hooks: {
        beforeProcessing: () => void events.push('start'),
        afterProcessing: (_p, result) => void events.push(`stop ${result.reason}`),
        beforeHandling: (context) => {
          context.state['seen'] = context.body.name;
        },
        afterHandling: (context, { outcome, error }) => {
          events.push(
            `${String(context.state['seen'])} ${outcome.kind} ${error === undefined ? '' : 'error'}`,
          );
        },
      },
    });
    const client = await TestClient.for(processor);
    await client.send(new MessageCommand('ok', 'a'));
    await client.send(new MessageCommand('bad-order'));
    await client.close();
    expect(events).toEqual(['start', 'ok ack ', 'bad-order deadLetter ', 'stop stopped']);
  });

  test('hooks - a failing hook is a HOOK_FAILED error handled like a handler error, never a crash', async () => {
    const errors: unknown[] = [];
    const processor = worker({
      onError: (error) => void errors.push((error as PostageError).code),
      hooks: {
        beforeHandling: (context) => {
          if (context.body.name === 'ok') throw new Error('hook down');
        },
      },
    });
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('ok', 'a'))).outcome).toBe('deadLetter');
    expect(processor.calls).toEqual([]);
    expect(errors).toEqual([ErrorCode.HOOK_FAILED]);
    expect(client.deadLettered[0]?.postageReason).toBe(ErrorCode.HOOK_FAILED);
    expect((await client.send(new MessageCommand('bad-order'))).outcome).toBe('deadLetter');
    await client.close();
  });

  test('translators - a foreign JSON body on a translated queue is handled; a failing translation is dead-lettered', async () => {
    const processor = worker({
      eqk: [[work, [['legacy-q', 'legacy']]]],
      translators: {
        'legacy-q': (body) => {
          const order = body as { action?: unknown; id?: unknown };
          if (typeof order.action !== 'string') throw new Error('no action');
          return new MessageCommand(order.action, String(order.id));
        },
      },
    });
    const client = await TestClient.for(processor);
    expect((await client.send({ action: 'ok', id: 42 })).outcome).toBe('ack');
    expect(processor.calls).toEqual(['ok 42']);
    expect((await client.send({ id: 43 })).outcome).toBe('deadLetter');
    expect((await client.send([1, 2])).outcome).toBe('deadLetter');
    expect(client.deadLettered.map((d) => d.postageReason)).toEqual([
      ErrorCode.TRANSLATION_FAILED,
      ErrorCode.TRANSLATION_FAILED,
    ]);
    await client.close();
  });

  test('bad input - malformed JSON and an invalid envelope are dead-lettered with their reason', async () => {
    const client = await TestClient.for(worker());
    expect((await client.send(Buffer.from('{not json'))).outcome).toBe('deadLetter');
    expect((await client.send({ type: 'command' })).outcome).toBe('deadLetter');
    expect((await client.send(new MessageCommand('ok', 'after'))).outcome).toBe('ack');
    expect(client.deadLettered.map((d) => d.postageReason)).toEqual([
      ErrorCode.DECODE_FAILED,
      ErrorCode.INVALID_MESSAGE,
    ]);
    expect(client.broker.queue('work-q.dlq')?.messages).toBe(2);
    await client.close();
  });

  test('runOnce - handles what is queued and returns the counts per outcome', async () => {
    const u = url();
    const { connection, channel } = await rawChannel(u.slice('memory://'.length));
    await channel.assertQueue('batch-q', {
      durable: false,
      arguments: { 'x-dead-letter-exchange': 'batch-q.dlx' },
    });
    const names = ['ok', 'ok', 'crash', 'bad-order', 'ok'];
    for (const name of names) {
      channel.publish('', 'batch-q', Buffer.from(JSON.stringify(new MessageCommand(name, name).body)));
    }
    const processor = new Worker({ url: u, eqk: [[work, [['batch-q', 'batch']]]], deadLetter: true });
    const result = await processor.runOnce({ idleMs: 20 });
    expect(result).toMatchObject({ reason: 'stopped', received: 5, acked: 3, deadLettered: 2, requeued: 0 });
    expect(processor.calls).toEqual(['ok ok', 'ok ok', 'ok ok']);
    await connection.close();
  });

  test('shutdown - close() requeues unstarted messages, lets in-flight finish, aborts the late ones at the deadline', async () => {
    const aborted: string[] = [];
    const processor = worker({ concurrency: 2, prefetch: 10, shutdownTimeout: 30 });
    let started = 0;
    processor.registerHandler(
      'command',
      'slow',
      async (content: { parameters: string }, context: HandlerContext) => {
        started++;
        if (content.parameters === 'quick') return;
        await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve()));
        aborted.push(content.parameters);
        return Outcome.requeue({ delayMs: 0 });
      },
    );
    const client = await TestClient.for(processor);
    const { channel } = await rawChannel(client.broker.name);
    for (const p of ['late', 'quick', 'u1', 'u2', 'u3']) {
      channel.publish('', 'work-q', Buffer.from(JSON.stringify(new MessageCommand('slow', p).body)));
    }
    await until(() => started === 3 && processor.counts.received === 5, 'the deliveries');
    await processor.close();
    // late and u1 were in flight (concurrency 2, quick done): aborted at the deadline.
    expect(aborted).toEqual(['late', 'u1']);
    expect(processor.counts).toMatchObject({ received: 5, acked: 1, requeued: 2, returned: 2 });
    // quick (acked) is gone; the two aborted (requeued) and the two unstarted ones are back.
    expect(client.broker.queue('work-q')?.messages).toBe(4);
    await client.close();
  });

  test('shutdown - closeOnSignals closes on SIGTERM once', async () => {
    const processor = worker();
    const client = await TestClient.for(processor);
    let closed: readonly unknown[] | undefined;
    const dispose = closeOnSignals(processor, { onClosed: (errors) => (closed = errors) });
    process.emit('SIGTERM', 'SIGTERM');
    await processor.done;
    await until(() => closed !== undefined, 'closed');
    expect(closed).toEqual([]);
    dispose();
    expect(process.listenerCount('SIGTERM')).toBe(0);
    await client.close();
  });

  test('poison - a message already delivered past the bound is dead-lettered without running its handler', async () => {
    const processor = worker();
    const client = await TestClient.for(processor);
    const settled = await client.send(new MessageCommand('ok', 'late'), {
      properties: { headers: { 'x-postage-deliveries': 3 } },
    });
    expect(settled.outcome).toBe('deadLetter');
    expect(processor.calls).toEqual([]);
    expect(client.deadLettered[0]?.postageReason).toBe(ErrorCode.DELIVERY_LIMIT);
    await client.close();
  });

  test('error handlers - an RPC handler error is answered with the exception, then its error handler decides the outcome', async () => {
    const processor = worker({ onError: () => true });
    processor.registerHandler(
      'command',
      'div',
      (content: { parameters: number }) => {
        if (content.parameters === 0) throw new RangeError('division by zero');
        return 1 / content.parameters;
      },
      { rpc: true },
    );
    const client = await TestClient.for(processor);
    const result = await client.rpc(new RpcCommand('div', 0));
    expect(result.ok).toBe(false);
    expect(result.message).toBe('division by zero');
    await until(() => client.settled.length === 1, 'the settlement');
    expect(client.settled[0]?.outcome).toBe('ack');
    await client.close();
  });

  test('poison - on a quorum queue the broker counts deliveries (x-delivery-count) and postage dead-letters at the bound', async () => {
    const processor = worker({ queueType: 'quorum', maxDeliveries: 4 });
    const client = await TestClient.for(processor);
    expect(client.broker.queue('work-q')?.type).toBe('quorum');
    await client.send(new MessageCommand('retry'));
    await until(() => client.deadLettered.length === 1, 'the dead letter');
    expect(processor.deliveries).toEqual([1, 2, 3, 4]);
    expect(client.deadLettered[0]?.postageReason).toBe(ErrorCode.DELIVERY_LIMIT);
    expect(client.requeued).toHaveLength(3);
    await client.close();
  });
});

describe('poison on quorum queues, per RabbitMQ release (in-process broker)', () => {
  afterAll(() => MemoryBroker.resetAll());

  test.each(['3.10', '4.0'] as const)(
    'poison - RabbitMQ %s, a quorum queue declared without x-delivery-limit: requeues are counted copies, a return after a crash adds to the count, no delivery beyond maxDeliveries',
    async (rabbitmqVersion) => {
      const address = url();
      const broker = MemoryBroker.named(address.slice('memory://'.length), { rabbitmqVersion });
      const deliveries: number[] = [];
      const processor = new MessageProcessor({
        url: address,
        eqk: [
          [
            work,
            [[{ name: 'qq', flags: { durable: true, arguments: { 'x-queue-type': 'quorum' } } }, 'work']],
          ],
        ],
        deadLetter: true,
        maxDeliveries: 3,
      });
      processor.registerHandler('command', 'retry', async (_content: unknown, context: HandlerContext) => {
        deliveries.push(context.deliveries);
        if (deliveries.length === 2) {
          // Once the original is acked (the copy is all that is out), the process "crashes"
          // before its ack reaches the broker: the broker returns the copy.
          await until(() => broker.queue('qq')?.unacked === 1, 'the ack of the original');
          broker.closeAllConnections();
          return Outcome.ack();
        }
        return Outcome.requeue({ delayMs: 0 });
      });
      const client = await TestClient.for(processor);
      await client.publish(new MessageCommand('retry'));
      await until(() => client.deadLettered.length === 1, 'the dead letter');
      expect(deliveries).toEqual([1, 2, 3]);
      expect(client.deadLettered[0]?.postageReason).toBe(ErrorCode.DELIVERY_LIMIT);
      expect(client.deadLettered[0]?.headers['x-postage-deliveries']).toBe(3);
      expect(client.deadLettered[0]?.headers['x-delivery-count']).toBeUndefined();
      await until(
        () => broker.queue('qq')?.messages === 0 && broker.queue('qq')?.unacked === 0,
        'an empty queue',
      );
      await client.close();
    },
  );

  test.each(['3.10', '4.0'] as const)(
    'poison - RabbitMQ %s, maxDeliveries 25 on a quorum queue declared without x-delivery-limit: handled 25 times, dead-lettered by postage (4.0 would end it at 21)',
    async (rabbitmqVersion) => {
      const address = url();
      MemoryBroker.named(address.slice('memory://'.length), { rabbitmqVersion });
      const processor = new Worker({
        url: address,
        eqk: [
          [
            work,
            [[{ name: 'qq', flags: { durable: true, arguments: { 'x-queue-type': 'quorum' } } }, 'retry']],
          ],
        ],
        deadLetter: true,
        maxDeliveries: 25,
      });
      const client = await TestClient.for(processor);
      await client.publish(new MessageCommand('retry'));
      await until(() => client.deadLettered.length === 1, 'the dead letter');
      expect(processor.deliveries).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect([client.deadLettered[0]?.reason, client.deadLettered[0]?.postageReason]).toEqual([
        'rejected',
        ErrorCode.DELIVERY_LIMIT,
      ]);
      await client.close();
    },
  );
});

/** Declares the worker's queue on its broker and queues one command per name. */
async function queued(processor: MessageProcessor, names: string[]) {
  const raw = await rawChannel(processor.connection.config.endpoints[0]?.host ?? '');
  await raw.channel.assertQueue('work-q', {
    durable: false,
    arguments: { 'x-dead-letter-exchange': 'work-q.dlx' },
  });
  for (const name of names) {
    raw.channel.publish('', 'work-q', Buffer.from(JSON.stringify(new MessageCommand(name, name).body)));
  }
  return raw;
}

describe('processing features round 2 (in-process broker)', () => {
  afterAll(() => MemoryBroker.resetAll());

  test('poison - an unroutable dead letter (its queue deleted) is not acked: the original goes back, the error is reported, and it is dead-lettered once the queue is back', async () => {
    const processor = worker();
    const errors: string[] = [];
    processor.on('error', (error) => errors.push(error.code));
    const client = await TestClient.for(processor);
    const { connection, channel } = await rawChannel(client.broker.name);
    await channel.deleteQueue('work-q.dlq');
    await client.publish(new MessageCommand('bad-order'));
    await until(() => errors.length > 0, 'the reported error');
    expect(errors[0]).toBe(ErrorCode.UNROUTABLE);
    // Not lost: the original is still held (unacked) or back in its queue.
    const held = client.broker.queue('work-q');
    expect((held?.messages ?? 0) + (held?.unacked ?? 0)).toBe(1);
    await channel.assertQueue('work-q.dlq', { durable: true });
    await channel.bindQueue('work-q.dlq', 'work-q.dlx', '');
    await until(() => client.broker.queue('work-q.dlq')?.messages === 1, 'the dead letter', 5000);
    const [dead] = client.broker.peek('work-q.dlq');
    expect(dead?.properties.headers?.['x-postage-reason']).toBe('BAD_ORDER');
    await until(() => client.broker.queue('work-q')?.unacked === 0, 'the ack');
    expect(client.broker.queue('work-q')?.messages).toBe(0);
    expect(processor.counts.deadLettered).toBe(1);
    await connection.close();
    await client.close();
  });

  test('poison - a counted requeue acks the original only after the copy is confirmed; without a confirm in time the original goes back to its queue', async () => {
    const processor = worker({ confirmTimeout: 50, maxDeliveries: 100 });
    const errors: string[] = [];
    processor.on('error', (error) => errors.push(error.code));
    let handled = 0;
    processor.registerHandler('command', 'again', () => {
      handled++;
      // The broker blocks the processor's publishes (resource alarm): no confirm comes.
      if (handled === 1) client.broker.setAlarm('memory');
      return Outcome.requeue({ delayMs: 0 });
    });
    const client = await TestClient.for(processor);
    await client.publish(new MessageCommand('again'));
    await until(() => errors.length > 0, 'the confirm timeout');
    expect(errors[0]).toBe(ErrorCode.CONFIRM_TIMEOUT);
    // The original was not acked while its copy was unconfirmed.
    const queue = client.broker.queue('work-q');
    expect((queue?.messages ?? 0) + (queue?.unacked ?? 0)).toBeGreaterThanOrEqual(1);
    client.broker.setAlarm(undefined);
    await until(() => handled >= 2, 'the message handled again', 5000);
    await processor.close();
    await client.close();
  });

  test('context - after counted requeues the context keeps the original exchange and routing key; the dead letter carries them', async () => {
    const seen: Array<[string, string, string, string]> = [];
    const processor = worker();
    processor.registerHandler('command', 'where', (_c: unknown, context: HandlerContext) => {
      seen.push([context.exchange, context.routingKey, context.fields.exchange, context.fields.routingKey]);
      return Outcome.requeue({ delayMs: 0 });
    });
    const client = await TestClient.for(processor);
    await client.send(new MessageCommand('where'), { exchange: work, key: 'work' });
    await until(() => client.deadLettered.length === 1, 'the dead letter');
    expect(seen).toEqual([
      ['work', 'work', 'work', 'work'],
      ['work', 'work', '', 'work-q'],
      ['work', 'work', '', 'work-q'],
    ]);
    expect(client.deadLettered[0]?.headers).toMatchObject({
      'x-postage-exchange': 'work',
      'x-postage-routing-key': 'work',
    });
    await client.close();
  });

  test('runOnce - stops after timeoutMs with a handler still running and says it timed out', async () => {
    const processor = worker({ shutdownTimeout: 20 });
    let aborted = false;
    processor.registerHandler('command', 'forever', async (_c: unknown, context: HandlerContext) => {
      await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve()));
      aborted = true;
      return Outcome.requeue({ delayMs: 0 });
    });
    const { connection, channel } = await queued(processor, ['forever', 'ok']);
    const result = await processor.runOnce({ idleMs: 10, timeoutMs: 150 });
    expect(result).toMatchObject({ timedOut: true, reason: 'stopped', received: 2, acked: 1, requeued: 1 });
    expect(aborted).toBe(true);
    // Nothing lost: the requeued message is back in its queue.
    expect((await channel.checkQueue('work-q')).messageCount).toBe(1);
    await connection.close();
  });

  test('runOnce - a run that finishes in time says it did not time out', async () => {
    const processor = worker();
    const { connection } = await queued(processor, ['ok']);
    const result = await processor.runOnce({ idleMs: 10 });
    expect(result).toMatchObject({ timedOut: false, received: 1, acked: 1 });
    await expect(processor.runOnce({ timeoutMs: 0 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await connection.close();
  });

  test('rpc outcomes - an RPC handler returning an Outcome: deadLetter answers an error naming the reason, requeue answers on a later delivery, ack without a reply answers an error', async () => {
    const processor = worker();
    let tries = 0;
    processor.registerHandler('command', 'refuse', () => Outcome.deadLetter('NOT_ALLOWED'), { rpc: true });
    processor.registerHandler(
      'command',
      'busy',
      () => (++tries < 2 ? Outcome.requeue({ delayMs: 0 }) : 'done'),
      {
        rpc: true,
      },
    );
    processor.registerHandler('command', 'silent', () => Outcome.ack(), { rpc: true });
    processor.registerHandler(
      'command',
      'answered',
      (_c: unknown, reply: (v: unknown) => void) => {
        reply('kept');
        return Outcome.deadLetter('AUDIT');
      },
      { rpc: true },
    );
    const client = await TestClient.for(processor);
    const refused = await client.rpc(new RpcCommand('refuse'));
    expect(refused.ok).toBe(false);
    expect(refused.message).toContain('NOT_ALLOWED');
    await until(() => client.deadLettered.length === 1, 'the dead letter');
    expect(client.deadLettered[0]?.postageReason).toBe('NOT_ALLOWED');
    const busy = await client.rpc(new RpcCommand('busy'));
    expect([busy.ok, busy.value]).toEqual([true, 'done']);
    expect(tries).toBe(2);
    const silent = await client.rpc(new RpcCommand('silent'));
    expect(silent.ok).toBe(false);
    const answered = await client.rpc(new RpcCommand('answered'));
    expect([answered.ok, answered.value]).toEqual([true, 'kept']);
    await until(() => client.deadLettered.length === 2, 'the second dead letter');
    expect(client.deadLettered[1]?.postageReason).toBe('AUDIT');
    await client.close();
  });

  test('rpc outcomes - an RPC requeued up to the delivery limit is answered with a DELIVERY_LIMIT error', async () => {
    const processor = worker({ maxDeliveries: 2 });
    processor.registerHandler('command', 'never', () => Outcome.requeue({ delayMs: 0 }), { rpc: true });
    const client = await TestClient.for(processor);
    const result = await client.rpc(new RpcCommand('never'));
    expect(result.ok).toBe(false);
    expect(result.message).toContain(ErrorCode.DELIVERY_LIMIT);
    await until(() => client.deadLettered.length === 1, 'the dead letter');
    await client.close();
  });

  test('hooks - an error of a message hook goes to the processor onError, not to the handler onError', async () => {
    const decided: string[] = [];
    const processor = worker({
      onError: () => {
        decided.push('processor');
        return true;
      },
      hooks: {
        beforeHandling: () => {
          throw new Error('hook down');
        },
      },
    });
    processor.registerHandler('command', 'own', () => undefined, {
      onError: () => {
        decided.push('handler');
        return false;
      },
    });
    const client = await TestClient.for(processor);
    expect((await client.send(new MessageCommand('own'))).outcome).toBe('ack');
    expect(decided).toEqual(['processor']);
    await client.close();
  });
});
