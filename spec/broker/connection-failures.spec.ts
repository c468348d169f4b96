/**
 * Connection failures against RabbitMQ: a refusal (wrong password, missing vhost) fails at once
 * with a typed error that says what happened; a refused port is retried within connectTimeout,
 * each attempt logged at warn without the password; a processor whose run() failed can run
 * again once the broker is reachable.
 */
import net from 'node:net';

import {
  Connection,
  ConnectionError,
  ErrorCode,
  GenericProducer,
  MessageCommand,
  MessageProcessor,
  PostageError,
  type ExchangeDefinition,
  type ProcessorStatus,
} from '../../lib';
import { freePort } from '../../scripts/rabbit-node';
import { rawConnection, testUrl, uid, waitFor, withRawChannel } from '../helpers/broker';
import { MemoryLogger } from '../helpers/memory-logger';

const SECRET = 'pw-Do-Not-Print-7f3a';

function urlWith(changes: { password?: string; vhost?: string; port?: number }): string {
  const url = new URL(testUrl());
  if (changes.password !== undefined) url.password = changes.password;
  if (changes.vhost !== undefined) url.pathname = `/${encodeURIComponent(changes.vhost)}`;
  if (changes.port !== undefined) {
    url.hostname = '127.0.0.1';
    url.port = String(changes.port);
  }
  return url.toString();
}

async function failure(promise: Promise<unknown>): Promise<PostageError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof PostageError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** Connection attempts the logger saw (each is logged at warn). */
function attempts(logger: MemoryLogger): number {
  return logger.at('warn').filter((l) => l.message.startsWith('connect failed')).length;
}

/** Forwards connections on `port` to the test broker (a broker that "comes up" on that port). */
async function forwarder(port: number): Promise<{ close(): Promise<void> }> {
  const target = new URL(testUrl());
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('connection failures (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it('connect - a wrong password fails at once with ACCESS_REFUSED (one attempt, not retried for connectTimeout), naming the user but never the password', async () => {
    const logger = new MemoryLogger();
    const connection = new Connection({ url: urlWith({ password: SECRET }), connectTimeout: 20_000, logger });
    cleanup.push(() => connection.close());
    const error = await failure(connection.open());
    console.log('wrong password:', error.code, error.message);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.code).toBe(ErrorCode.ACCESS_REFUSED);
    expect(error.message).toContain("'guest'");
    expect(error.message).not.toContain(SECRET);
    expect(attempts(logger)).toBe(0);
    expect(logger.text()).not.toContain(SECRET);
    // A processor and a producer built on it say the same.
    const processor = new MessageProcessor({
      url: urlWith({ password: SECRET }),
      connectTimeout: 20_000,
      logger,
    });
    cleanup.push(() => processor.close());
    expect((await failure(processor.run())).code).toBe(ErrorCode.ACCESS_REFUSED);
    const producer = new GenericProducer({
      url: urlWith({ password: SECRET }),
      connectTimeout: 20_000,
      logger,
    });
    cleanup.push(() => producer.close());
    expect((await failure(producer.send(new MessageCommand('x', 1)))).code).toBe(ErrorCode.ACCESS_REFUSED);
    expect(logger.text()).not.toContain(SECRET);
  }, 30_000);

  it('connect - a missing vhost fails at once with NOT_ALLOWED naming the vhost', async () => {
    const vhost = uid('no-such-vhost');
    const logger = new MemoryLogger();
    const connection = new Connection({ url: urlWith({ vhost }), connectTimeout: 20_000, logger });
    cleanup.push(() => connection.close());
    const error = await failure(connection.open());
    console.log('missing vhost:', error.code, error.message);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.code).toBe(ErrorCode.NOT_ALLOWED);
    expect(error.message).toContain(`'${vhost}'`);
    expect(error.message).not.toContain('ConnectionOpenOk');
    expect(attempts(logger)).toBe(0);
  }, 30_000);

  it('connect - a refused port is retried within connectTimeout, each attempt logged at warn without the password, then CONNECTION_FAILED', async () => {
    const port = await freePort();
    const logger = new MemoryLogger();
    const connection = new Connection({
      url: urlWith({ password: SECRET, port }),
      connectTimeout: 1500,
      reconnect: { initialDelay: 100, maxDelay: 200 },
      logger,
    });
    cleanup.push(() => connection.close());
    const error = await failure(connection.open());
    console.log('refused port:', error.code, 'retries logged at warn:', attempts(logger));
    expect(error.code).toBe(ErrorCode.CONNECTION_FAILED);
    expect(attempts(logger)).toBeGreaterThanOrEqual(2);
    const warned = logger.at('warn').find((l) => l.message.startsWith('connect failed'));
    expect(warned?.fields).toMatchObject({ attempt: 1, endpoint: `amqp://guest@127.0.0.1:${port}/` });
    expect(logger.text()).not.toContain(SECRET);
    expect(error.message).not.toContain(SECRET);
  }, 30_000);

  it('processor - run() that failed because the broker was unreachable can run again once it is reachable, and then consumes and closes', async () => {
    const port = await freePort();
    const ex: ExchangeDefinition = {
      name: uid('ex'),
      exchange_type: 'direct',
      passive: false,
      durable: false,
      auto_delete: true,
    };
    const queue = uid('q.rerun');
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(queue)));
    const processor = new MessageProcessor({
      url: urlWith({ port }),
      connectTimeout: 800,
      eqk: [[ex, [[queue, 'rk']]]],
      logger: new MemoryLogger(),
    });
    cleanup.push(() => processor.close());
    const statuses: ProcessorStatus['type'][] = [];
    processor.on('status', (s) => statuses.push(s.type));
    const handled: unknown[] = [];
    processor.registerHandler('command', 'work', (content: { parameters: unknown }) => {
      handled.push(content.parameters);
    });
    const first = await failure(processor.run());
    expect(first.code).toBe(ErrorCode.CONNECTION_FAILED);
    // The broker "comes up" on that port.
    const forward = await forwarder(port);
    cleanup.push(() => forward.close());
    const running = processor.run();
    await waitFor(() => statuses.includes('consuming'), {
      timeoutMs: 10_000,
      what: 'the processor consuming',
    });
    const connection = await rawConnection();
    try {
      const ch = await connection.createConfirmChannel();
      ch.sendToQueue(queue, Buffer.from(JSON.stringify(new MessageCommand('work', 'after').body)));
      await ch.waitForConfirms();
    } finally {
      await connection.close();
    }
    await waitFor(() => handled.includes('after'), { what: 'the message handled' });
    await processor.close();
    expect(await running).toEqual({ reason: 'stopped' });
    expect(statuses).toEqual(['consuming', 'stopping', 'stopped']);
  }, 30_000);
});
