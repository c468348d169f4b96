import type { Channel, ConsumeMessage } from 'amqplib';

import {
  ErrorCode,
  GenericProducer,
  MessageProcessor,
  MessageResult,
  MessageResultError,
  MessageResultException,
  RpcHandler,
  RpcTimeoutError,
  type Eqk,
  type ExchangeDefinition,
  type ReplyFunction,
} from '../../lib';
import { rawConnection, testUrl, uid, waitFor } from '../helpers/broker';

type Raw = Awaited<ReturnType<typeof rawConnection>>;

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: true };
}

function resultBody(content: { type: string; value: unknown; message: string }): Buffer {
  return Buffer.from(
    JSON.stringify({
      type: 'result',
      name: 'none',
      category: 'message',
      version: '2',
      fingerprint: {},
      content,
      _reserved: {},
    }),
  );
}

/**
 * A responder written with plain amqplib on its own connection: it records every request and
 * answers as `answer` decides (undefined: no reply).
 */
async function responder(
  ex: ExchangeDefinition,
  key: string,
  answer: (request: ConsumeMessage, index: number) => Buffer | undefined | Promise<Buffer | undefined>,
  options: { consume?: boolean } = {},
): Promise<{
  requests: ConsumeMessage[];
  queue: string;
  channel: Channel;
  start(): Promise<void>;
  connection: Raw;
}> {
  const connection = await rawConnection();
  const channel = await connection.createChannel();
  await channel.assertExchange(ex.name, 'direct', { durable: false, autoDelete: true });
  const queue = uid('rpcq');
  await channel.assertQueue(queue, { exclusive: true });
  await channel.bindQueue(queue, ex.name, key);
  const requests: ConsumeMessage[] = [];
  const start = async (): Promise<void> => {
    await channel.consume(queue, (message) => {
      if (message === null) return;
      const index = requests.push(message) - 1;
      void Promise.resolve(answer(message, index)).then((reply) => {
        if (reply !== undefined) {
          channel.sendToQueue(message.properties.replyTo as string, reply, {
            correlationId: message.properties.correlationId as string,
          });
        }
        channel.ack(message);
      });
    });
  };
  if (options.consume !== false) await start();
  return { requests, queue, channel, start, connection };
}

function parameters(message: ConsumeMessage): unknown {
  return (JSON.parse(message.content.toString()) as { content: { parameters: unknown } }).content.parameters;
}

describe('rpc (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  async function setup(answer: Parameters<typeof responder>[2], options: { consume?: boolean } = {}) {
    const ex = exchange(uid('rpcx'));
    const server = await responder(ex, 'rk', answer, options);
    cleanup.push(() => server.connection.close());
    class P extends GenericProducer<{ echo: string; add: [number, number] }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const producer = P.create({ url: testUrl() });
    cleanup.push(() => producer.close());
    return { ex, server, producer };
  }

  it('rpc - a call resolves to the MessageResult the server replied', async () => {
    const { producer, server } = await setup((request) =>
      resultBody({ type: 'success', value: `echo: ${String(parameters(request))}`, message: '' }),
    );
    const reply = await producer.rpc_echo('hello');
    expect(reply).toBeInstanceOf(MessageResult);
    expect(reply.ok).toBe(true);
    expect(reply.value).toBe('echo: hello');
    // A direct reply-to call: a correlation id, and an expiration so a late request dies in the queue.
    expect(server.requests[0]?.properties).toMatchObject({
      replyTo: expect.stringMatching(/^amq\.rabbitmq\.reply-to/),
    });
    expect(typeof server.requests[0]?.properties.correlationId).toBe('string');
    // The call's message id doubles as its correlation id (one id per call).
    expect(server.requests[0]?.properties.correlationId).toBe(server.requests[0]?.properties.messageId);
    expect(server.requests[0]?.properties.expiration).toBe('30000');
  });

  it('rpc - error and exception replies resolve to MessageResultError and MessageResultException', async () => {
    const { producer } = await setup((request) =>
      parameters(request) === 'error'
        ? resultBody({ type: 'error', value: null, message: 'bad call' })
        : resultBody({ type: 'exception', value: 'KeyError', message: "'x'" }),
    );
    const error = await producer.rpc_echo('error');
    expect(error).toBeInstanceOf(MessageResultError);
    expect([error.ok, error.message]).toEqual([false, 'bad call']);
    const exception = await producer.rpc_echo('exception');
    expect(exception).toBeInstanceOf(MessageResultException);
    expect([exception.ok, exception.value, exception.message]).toEqual([false, 'KeyError', "'x'"]);
    expect(() => exception.unwrap()).toThrow(expect.objectContaining({ code: ErrorCode.RPC_EXCEPTION }));
  });

  it('rpc - _max_retry is honoured: 1 + max_retry attempts with the same message id, then TimeoutError', async () => {
    const { producer, server } = await setup(() => undefined);
    const reply = await producer.rpc_echo('nobody answers', { _timeout: 0.2, _max_retry: 2 });
    expect(reply).toBeInstanceOf(MessageResultException);
    expect(reply.value).toBe('TimeoutError');
    expect(server.requests).toHaveLength(3);
    const ids = new Set(server.requests.map((r) => r.properties.messageId as string));
    expect(ids.size).toBe(1);
    expect(server.requests.map((r) => r.properties.expiration)).toEqual(['200', '200', '200']);
    expect(() => reply.unwrap()).toThrow(RpcTimeoutError);
  });

  it("rpc - the timeout error's stack names the caller's line", async () => {
    const { producer } = await setup(() => undefined);
    const reply = await producer.rpc_echo('x', { _timeout: 0.1, _max_retry: 0 });
    let caught: unknown;
    try {
      reply.unwrap();
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: ErrorCode.RPC_TIMEOUT });
    const stack = (caught as Error).stack ?? '';
    expect(stack).toContain('rpc.spec.ts');
    expect(stack.split('\n').slice(1).join('\n')).not.toMatch(/^\s+at .*timers/m);
  });

  it('rpc - a request that timed out is not executed late: its expiration drops it from the queue', async () => {
    const { producer, server } = await setup(
      () => resultBody({ type: 'success', value: 'late', message: '' }),
      {
        consume: false,
      },
    );
    const reply = await producer.rpc_echo('too late', { _timeout: 0.2, _max_retry: 0 });
    expect(reply.value).toBe('TimeoutError');
    await new Promise((r) => setTimeout(r, 300));
    await server.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(server.requests).toHaveLength(0);
    expect((await server.channel.checkQueue(server.queue)).messageCount).toBe(0);
  });

  it('rpc - a late reply to an earlier attempt still answers the call', async () => {
    const { producer, server } = await setup(async (request, index) => {
      if (index > 0) return undefined;
      await new Promise((r) => setTimeout(r, 350));
      return resultBody({ type: 'success', value: `late ${String(parameters(request))}`, message: '' });
    });
    const reply = await producer.rpc_echo('first', { _timeout: 0.25, _max_retry: 3 });
    expect(reply.value).toBe('late first');
    expect(server.requests.length).toBeGreaterThanOrEqual(2);
  });

  it('rpc - 300 calls in flight on one producer each get their own answer, whatever the reply order', async () => {
    const held: Array<() => void> = [];
    const { producer } = await setup(
      (request) =>
        new Promise<Buffer>((resolve) => {
          held.push(() =>
            resolve(
              resultBody({ type: 'success', value: (parameters(request) as number[])[0], message: '' }),
            ),
          );
          if (held.length === 300) for (const release of held.reverse()) release();
        }),
    );
    const calls = Array.from({ length: 300 }, (_, i) => producer.rpc_add(i, 0));
    const replies = await Promise.all(calls);
    expect(replies.map((r) => r.value)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('rpc - no timer and no pending call is left behind, whatever the outcome', async () => {
    const { producer } = await setup((request) =>
      parameters(request) === 'silent' ? undefined : resultBody({ type: 'success', value: 1, message: '' }),
    );
    await producer.rpc_echo('warm up');
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    // 30 calls of each outcome; a timer leaked per call would show as ~90 more timers.
    await Promise.all([
      ...Array.from({ length: 30 }, () => producer.rpc_echo('answered')),
      ...Array.from({ length: 30 }, () => producer.rpc_echo('silent', { _timeout: 0.1, _max_retry: 1 })),
      ...Array.from({ length: 30 }, () => producer.rpc_echo('unroutable', { _key: 'no-such-key' })),
    ]);
    // Allow for timers that are not ours (heartbeats, the runner's own).
    expect(timers() - before).toBeLessThanOrEqual(3);
    expect(producer.pendingCalls).toBe(0);
  });

  it('rpc - a call that routes nowhere resolves at once to an UnroutableError result', async () => {
    const { producer } = await setup(() => undefined);
    const reply = await producer.rpc_echo('x', { _key: 'no-such-key', _timeout: 30 });
    expect(reply.ok).toBe(false);
    expect(reply.value).toBe('UnroutableError');
    expect(() => reply.unwrap()).toThrow(expect.objectContaining({ code: ErrorCode.UNROUTABLE }));
  });

  it('rpc - among calls in flight, only those that route nowhere fail UNROUTABLE; the others get their replies', async () => {
    const { producer } = await setup((request) =>
      resultBody({ type: 'success', value: parameters(request), message: '' }),
    );
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        producer.rpc_echo(`m${i}`, { _key: i % 4 === 1 ? 'no-such-key' : 'rk', _timeout: 30 }),
      ),
    );
    expect(replies.map((r) => (r.ok ? r.value : r.value))).toEqual(
      Array.from({ length: 20 }, (_, i) => (i % 4 === 1 ? 'UnroutableError' : `m${i}`)),
    );
    expect(producer.pendingCalls).toBe(0);
  });

  it('rpc - after the broker closes the RPC channel (its exchange deleted), later calls open another and get replies', async () => {
    const { producer, server, ex } = await setup((request) =>
      resultBody({ type: 'success', value: parameters(request), message: '' }),
    );
    expect((await producer.rpc_echo('before')).value).toBe('before');
    await server.channel.deleteExchange(ex.name);
    // Published to a deleted exchange: the broker closes the channel (404); the call is not
    // answered (its retry re-declares the exchange, which has no binding now).
    const lost = await producer.rpc_echo('during', { _timeout: 0.3, _max_retry: 1 });
    expect(lost.ok).toBe(false);
    await server.channel.assertExchange(ex.name, 'direct', { durable: false, autoDelete: true });
    await server.channel.bindQueue(server.queue, ex.name, 'rk');
    const after = await Promise.all([producer.rpc_echo('a1'), producer.rpc_echo('a2')]);
    expect(after.map((r) => r.value)).toEqual(['a1', 'a2']);
  });

  it('rpc - a malformed reply is a MessageResultError, not a crash', async () => {
    const { producer } = await setup((request) =>
      parameters(request) === 'garbage'
        ? Buffer.from('{not json')
        : Buffer.from(JSON.stringify({ some: 'dict' })),
    );
    for (const kind of ['garbage', 'not a result']) {
      const reply = await producer.rpc_echo(kind);
      expect(reply).toBeInstanceOf(MessageResultError);
      expect(reply.message).toMatch(/^Malformed reply/);
      expect(() => reply.unwrap()).toThrow(expect.objectContaining({ code: ErrorCode.RPC_MALFORMED_REPLY }));
    }
  });

  it('rpc - _queue_only returns the reply queue; consume_rpc reads the results from it', async () => {
    const { producer } = await setup(() => undefined);
    const ex = exchange(uid('rpcx'));
    // A server that answers twice to the reply queue.
    const twice = await responder(ex, 'rk', () => undefined, { consume: false });
    cleanup.push(() => twice.connection.close());
    await twice.channel.consume(twice.queue, (message) => {
      if (message === null) return;
      for (const value of ['one', 'two']) {
        twice.channel.sendToQueue(
          message.properties.replyTo as string,
          resultBody({ type: 'success', value, message: '' }),
        );
      }
      twice.channel.ack(message);
    });
    const queue = await producer.rpc_echo('x', { _eks: [[ex, 'rk']], _queue_only: true });
    expect(typeof queue).toBe('string');
    const bodies: unknown[] = [];
    const results = await producer.consume_rpc(queue, {
      count: 2,
      timeout: 5,
      onReply: (body) => bodies.push(body),
    });
    expect(results.map((r) => r.value)).toEqual(['one', 'two']);
    expect(bodies).toHaveLength(2);
    // Waiting for more than came: a typed timeout that keeps the partial results.
    const again = await producer.rpc_echo('y', { _eks: [[ex, 'rk']], _queue_only: true });
    const error = await producer.consume_rpc(again, { count: 3, timeout: 0.5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcTimeoutError);
    expect((error as RpcTimeoutError & { results: MessageResult[] }).results.map((r) => r.value)).toEqual([
      'one',
      'two',
    ]);
  });

  it('rpc - a TypeScript RPC handler answers: value returned, reply(), throw, and no handler at all', async () => {
    const ex = exchange(uid('rpcx'));
    const queue = uid('rpcq');
    class Server extends MessageProcessor {
      static override eqk: Eqk = [[ex, [[{ name: queue, flags: { auto_delete: true } }, 'rk']]]];
      @RpcHandler('command', 'add') add(content: { parameters: [number, number] }) {
        return content.parameters[0] + content.parameters[1];
      }
      @RpcHandler('command', 'echo') echo(content: { parameters: string }, reply: ReplyFunction) {
        reply(new MessageResult(`echo ${content.parameters}`, 'ok'));
      }
      @RpcHandler('command', 'divide') async divide(content: { parameters: [number, number] }) {
        await new Promise((r) => setImmediate(r));
        if (content.parameters[1] === 0) throw new RangeError('division by zero');
        return content.parameters[0] / content.parameters[1];
      }
    }
    const server = new Server({ url: testUrl() });
    cleanup.push(() => server.stop());
    await server.start();
    class Client extends GenericProducer<{
      add: [number, number];
      echo: string;
      divide: [number, number];
      nothing: void;
    }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const client = Client.create({ url: testUrl() });
    cleanup.push(() => client.close());
    expect((await client.rpc_add(2, 3)).value).toBe(5);
    const echoed = await client.rpc_echo('hi');
    expect([echoed.value, echoed.message]).toEqual(['echo hi', 'ok']);
    expect((await client.rpc_divide(6, 3)).value).toBe(2);
    const thrown = await client.rpc_divide(1, 0);
    expect(thrown).toBeInstanceOf(MessageResultException);
    expect([thrown.value, thrown.message]).toEqual(['RangeError', 'division by zero']);
    // No handler: answered at once, the caller does not wait out its timeout.
    const none = await client.rpc_nothing({ _timeout: 60, _max_retry: 0 });
    expect(none).toBeInstanceOf(MessageResultError);
    expect(none.message).toContain('no handler');
    await waitFor(() => server.handling === 0);
  });
});
