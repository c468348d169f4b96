/**
 * Wire compatibility with Python postage, both ways. The Python side is played by peers written
 * with plain amqplib that speak postage's wire format exactly as postage 1.2.1 does
 * (spec/helpers/python-peer.ts; spec/broker/demos.spec.ts runs a real Python program too).
 */
import type { Channel } from 'amqplib';

import {
  Fingerprint,
  GenericProducer,
  MessageHandler,
  MessageHandlerFullBody,
  MessageProcessor,
  MessageResult,
  MessageResultError,
  MessageResultException,
  RpcHandler,
  type Eqk,
  type ExchangeDefinition,
  type ReplyFunction,
} from '../../lib';
import { rawConnection, testUrl, uid, waitFor } from '../helpers/broker';
import { MemoryLogger } from '../helpers/memory-logger';
import { pythonBody, pythonFingerprint, pythonRpcCall, pythonRpcServer } from '../helpers/python-peer';

function exchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: true, auto_delete: true };
}

describe('compat with Python postage (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  async function pythonChannel(): Promise<Channel> {
    const connection = await rawConnection();
    cleanup.push(() => connection.close());
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return channel;
  }

  it("compat - a Python postage producer's command is handled by a TypeScript processor", async () => {
    const ex = exchange(uid('compat'));
    const queue = uid('q');
    class Receiver extends MessageProcessor {
      static override eqk: Eqk = [[ex, [[{ name: queue, flags: { auto_delete: true } }, 'echo-rk']]]];
      got: unknown[] = [];
      @MessageHandler('command', 'echo') echo(content: { parameters: unknown }) {
        this.got.push(content.parameters);
      }
      @MessageHandlerFullBody('command', 'echo') full(body: { fingerprint: unknown }) {
        this.got.push(body.fingerprint);
      }
    }
    const receiver = new Receiver({ url: testUrl() });
    cleanup.push(() => receiver.stop());
    await receiver.start();
    const python = await pythonChannel();
    // GenericProducer.message_echo("A test message") in Python: only content_type is set.
    python.publish(
      ex.name,
      'echo-rk',
      pythonBody('command', 'echo', 'message', { parameters: 'A test message' }),
      {
        contentType: 'application/json',
      },
    );
    await waitFor(() => receiver.got.length === 2);
    expect(receiver.got).toEqual(['A test message', pythonFingerprint]);
  });

  it('compat - a Python postage RPC client (private reply queue, no correlation id) gets its answer from a TypeScript handler', async () => {
    const ex = exchange(uid('compat'));
    class Server extends MessageProcessor {
      static override eqk: Eqk = [[ex, [[{ name: uid('q'), flags: { auto_delete: true } }, 'rk']]]];
      @RpcHandler('command', 'echo') echo(content: { parameters: string }, reply: ReplyFunction) {
        reply(new MessageResult(`got ${content.parameters}`));
      }
      @RpcHandler('command', 'fail') fail() {
        throw new TypeError('bad type');
      }
    }
    const server = new Server({ url: testUrl(), fingerprint: new Fingerprint('ts_server', 'service') });
    cleanup.push(() => server.stop());
    await server.start();
    const python = await pythonChannel();

    // Python's _rpc_send + consume_rpc: a new exclusive auto-delete queue per call, no correlation id.
    async function pythonCall(name: string, parameters: unknown): Promise<Record<string, unknown>> {
      const reply = await pythonRpcCall(python, ex.name, 'rk', name, parameters);
      expect(reply.properties.correlationId).toBeUndefined();
      return reply.body;
    }

    const ok = await pythonCall('echo', 'hi');
    // What consume_rpc reads: content.type, content.value, content.message.
    expect(ok).toMatchObject({
      type: 'result',
      category: 'message',
      version: '2',
      content: { type: 'success', value: 'got hi', message: '' },
      _reserved: {},
    });
    expect(Object.keys(ok).sort()).toEqual([
      '_reserved',
      'category',
      'content',
      'fingerprint',
      'name',
      'type',
      'version',
    ]);
    expect(ok['fingerprint']).toMatchObject({ name: 'ts_server', type: 'service' });
    const failed = await pythonCall('fail', null);
    expect(failed['content']).toEqual({ type: 'exception', value: 'TypeError', message: 'bad type' });
  });

  it('compat - a TypeScript producer in per-call mode calls a Python postage RPC server (no correlation id in replies)', async () => {
    const ex = exchange(uid('compat'));
    const python = await pythonChannel();
    // Python's rpc_reply: publish to reply_to through '' with no properties at all.
    await pythonRpcServer(python, ex.name, 'rk', ({ body }) =>
      body.name === 'echo'
        ? { type: 'success', value: `python echoes ${String(body.content.parameters)}`, message: '' }
        : body.name === 'error'
          ? { type: 'error', value: null, message: 'python error' }
          : { type: 'exception', value: 'ZeroDivisionError', message: 'integer division or modulo by zero' },
    );
    class Client extends GenericProducer<{ echo: string; error: void; divide: [number, number] }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const client = Client.create({ url: testUrl(), rpcReplyMode: 'per-call' });
    cleanup.push(() => client.close());
    const reply = await client.rpc_echo('hello', { _timeout: 5 });
    expect(reply).toBeInstanceOf(MessageResult);
    expect(reply.value).toBe('python echoes hello');
    const error = await client.rpc_error({ _timeout: 5 });
    expect(error).toBeInstanceOf(MessageResultError);
    expect(error.message).toBe('python error');
    const exception = await client.rpc_divide(1, 0, { _timeout: 5 });
    expect(exception).toBeInstanceOf(MessageResultException);
    expect([exception.value, exception.message]).toEqual([
      'ZeroDivisionError',
      'integer division or modulo by zero',
    ]);
    // Concurrent calls each get their own answer: each has its own private queue.
    const many = await Promise.all(['a', 'b', 'c'].map((v) => client.rpc_echo(v, { _timeout: 5 })));
    expect(many.map((r) => r.value)).toEqual(['python echoes a', 'python echoes b', 'python echoes c']);
    // The environment switches the mode too.
    process.env['POSTAGE_RPC_REPLY_MODE'] = 'per-call';
    try {
      const fromEnv = Client.create({ url: testUrl() });
      cleanup.push(() => fromEnv.close());
      expect(fromEnv.rpcReplyMode).toBe('per-call');
      expect((await fromEnv.rpc_echo('env', { _timeout: 5 })).value).toBe('python echoes env');
    } finally {
      delete process.env['POSTAGE_RPC_REPLY_MODE'];
    }
  });

  it('compat - in direct mode a reply without correlation id is not mistaken for another call', async () => {
    const ex = exchange(uid('compat'));
    const python = await pythonChannel();
    await pythonRpcServer(python, ex.name, 'rk', () => ({ type: 'success', value: 1, message: '' }));
    class Client extends GenericProducer<{ echo: string }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const client = Client.create({ url: testUrl() });
    cleanup.push(() => client.close());
    const reply = await client.rpc_echo('x', { _timeout: 0.3, _max_retry: 0 });
    expect(reply.value).toBe('TimeoutError');
  });

  it("compat - direct mode against a Python postage server warns once, at warn level, with the fix (rpcReplyMode: 'per-call')", async () => {
    const ex = exchange(uid('compat'));
    const python = await pythonChannel();
    const requests = await pythonRpcServer(python, ex.name, 'rk', () => ({
      type: 'success',
      value: 1,
      message: '',
    }));
    class Client extends GenericProducer<{ echo: string }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const logger = new MemoryLogger();
    const client = Client.create({ url: testUrl(), logger });
    cleanup.push(() => client.close());
    const first = await client.rpc_echo('a', { _timeout: 0.3, _max_retry: 1 });
    const second = await client.rpc_echo('b', { _timeout: 0.3, _max_retry: 1 });
    expect([first.value, second.value]).toEqual(['TimeoutError', 'TimeoutError']);
    // The server ran each call once per attempt, and each of its 4 replies was dropped...
    expect(requests.map((r) => r.body.content.parameters)).toEqual(['a', 'a', 'b', 'b']);
    await waitFor(() => logger.lines.filter((l) => l.message.includes('correlation')).length >= 4);
    // ...but the caller was told once, at warn level, what to do.
    const warnings = logger.at('warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toContain("rpcReplyMode: 'per-call'");
    expect(warnings[0]?.fields).toMatchObject({ server: { name: 'py_sender', host: 'pyhost' } });
    // The same producer in per-call mode gets the answer.
    const fixed = Client.create({ url: testUrl(), rpcReplyMode: 'per-call' });
    cleanup.push(() => fixed.close());
    expect((await fixed.rpc_echo('c', { _timeout: 5 })).value).toBe(1);
  });

  it("compat - a TypeScript producer's bytes are postage's layout as Python's json.loads sees them", async () => {
    const ex = exchange(uid('compat'));
    const python = await pythonChannel();
    await python.assertExchange(ex.name, 'direct', { durable: true, autoDelete: true });
    const { queue } = await python.assertQueue('', { exclusive: true });
    await python.bindQueue(queue, ex.name, 'rk');
    class Sender extends GenericProducer<{ echo: string }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const sender = Sender.create({
      url: testUrl(),
      fingerprint: new Fingerprint('ts_sender', 'application'),
    });
    cleanup.push(() => sender.close());
    await sender.message_echo('A test message');
    const message = await python.get(queue, { noAck: true });
    expect(message).not.toBe(false);
    if (message === false) return;
    expect(message.properties.contentType).toBe('application/json');
    const body = JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual([
      '_reserved',
      'category',
      'content',
      'fingerprint',
      'name',
      'type',
      'version',
    ]);
    expect(body).toMatchObject({
      type: 'command',
      name: 'echo',
      category: 'message',
      version: '2',
      content: { parameters: 'A test message' },
      _reserved: {},
    });
    const fingerprint = body['fingerprint'] as Record<string, unknown>;
    expect(Object.keys(fingerprint).sort()).toEqual(['host', 'name', 'pid', 'type', 'user', 'vhost']);
    for (const value of Object.values(fingerprint)) expect(typeof value).toBe('string');
  });
});
