/**
 * Wire compatibility with Python postage, both ways. The Python side is played by peers written
 * with plain amqplib that speak postage's wire format exactly as postage 1.2.1 does (see
 * reference/postage-semantics.md): bodies are JSON dictionaries with seven keys, publishes set
 * only content_type, the RPC client uses a private exclusive queue per call and no correlation
 * id, and the RPC server replies to reply_to through the default exchange with no properties.
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

/** A fingerprint as Python postage builds it: six strings, 'None' for a missing name or type. */
const pythonFingerprint = {
  name: 'py_sender',
  type: 'None',
  pid: '6220',
  host: 'pyhost',
  user: 'pyuser',
  vhost: '/',
};

/** Python's json.dumps of a postage message (key order as a Python 2 dict happened to give it). */
function pythonBody(type: string, name: string, category: 'message' | 'rpc', content: object): Buffer {
  return Buffer.from(
    JSON.stringify({
      category,
      name,
      _reserved: {},
      content,
      version: '2',
      fingerprint: pythonFingerprint,
      type,
    }),
  );
}

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
      const { queue } = await python.assertQueue('', { exclusive: true, autoDelete: true });
      const replies: Array<{ body: Record<string, unknown>; properties: Record<string, unknown> }> = [];
      await python.consume(queue, (m) => {
        if (m !== null)
          replies.push({ body: JSON.parse(m.content.toString()), properties: m.properties as never });
      });
      python.publish(ex.name, 'rk', pythonBody('command', name, 'rpc', { parameters }), {
        contentType: 'application/json',
        replyTo: queue,
      });
      await waitFor(() => replies.length === 1);
      expect(replies[0]?.properties['correlationId']).toBeUndefined();
      return replies[0]?.body as Record<string, unknown>;
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
    await python.assertExchange(ex.name, 'direct', { durable: true, autoDelete: true });
    const { queue } = await python.assertQueue('', { exclusive: true });
    await python.bindQueue(queue, ex.name, 'rk');
    // Python's rpc_reply: publish to reply_to through '' with no properties at all.
    await python.consume(queue, (m) => {
      if (m === null) return;
      const body = JSON.parse(m.content.toString()) as { name: string; content: { parameters: unknown } };
      const content =
        body.name === 'echo'
          ? { type: 'success', value: `python echoes ${String(body.content.parameters)}`, message: '' }
          : body.name === 'error'
            ? { type: 'error', value: null, message: 'python error' }
            : {
                type: 'exception',
                value: 'ZeroDivisionError',
                message: 'integer division or modulo by zero',
              };
      python.publish(
        '',
        m.properties.replyTo as string,
        Buffer.from(
          JSON.stringify({
            category: 'message',
            name: 'none',
            _reserved: {},
            content,
            version: '2',
            fingerprint: {},
            type: 'result',
          }),
        ),
      );
      python.ack(m);
    });
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
    await python.assertExchange(ex.name, 'direct', { durable: true, autoDelete: true });
    const { queue } = await python.assertQueue('', { exclusive: true });
    await python.bindQueue(queue, ex.name, 'rk');
    await python.consume(queue, (m) => {
      if (m === null) return;
      python.publish(
        '',
        m.properties.replyTo as string,
        pythonBody('result', 'none', 'message', { type: 'success', value: 1, message: '' }),
      );
      python.ack(m);
    });
    class Client extends GenericProducer<{ echo: string }> {
      static override eks = [[ex, 'rk']] as const;
    }
    const client = Client.create({ url: testUrl() });
    cleanup.push(() => client.close());
    const reply = await client.rpc_echo('x', { _timeout: 0.3, _max_retry: 0 });
    expect(reply.value).toBe('TimeoutError');
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
