/**
 * RPC calls around a recovery (issue 12, point 6), on the in-process broker: after a broker
 * restart the producer reconnects before the server has declared its (non-durable) queue
 * again. Within `rpcRecoveryWindow` of its connection's recovery, a request that comes back
 * unroutable is sent again with backoff while the call has time left; on a stable connection
 * (or once the window has passed) UNROUTABLE is returned at once. spec/faults/outage.spec.ts
 * runs the same story through a kill -9 of a RabbitMQ node.
 */
import {
  ErrorCode,
  GenericProducer,
  MemoryBroker,
  MessageProcessor,
  MessageResult,
  RpcHandler,
  type ConnectionStatus,
  type ExchangeDefinition,
  type ProducerOptions,
  type ReplyFunction,
  type RpcResult,
} from '../../lib';

let n = 0;
const brokerName = (): string => `rpc-recovery-${process.pid}-${++n}`;
const ex: ExchangeDefinition = {
  name: 'rrx',
  exchange_type: 'direct',
  passive: false,
  durable: true,
  auto_delete: false,
};

class Echo extends MessageProcessor {
  @RpcHandler('command', 'echo') echo(content: { parameters: unknown }, reply: ReplyFunction) {
    reply(new MessageResult(content.parameters));
  }
}

class Caller extends GenericProducer<{ echo: number }> {
  static override eks = [[ex, 'echo']] as const;
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!predicate()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function codeOf(result: RpcResult): string | number {
  try {
    return result.unwrap() as number;
  } catch (err) {
    return String((err as { code?: unknown }).code);
  }
}

describe('RPC around a recovery (in-process broker)', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  afterAll(() => MemoryBroker.resetAll());

  /**
   * A server on a non-durable queue whose connection comes back 500 ms after a restart, and a
   * producer whose connection comes back at once: calls made in between meet no queue.
   */
  async function restartedBroker(options: Partial<ProducerOptions> = {}) {
    const name = brokerName();
    const broker = MemoryBroker.named(name);
    const server = new Echo({
      url: `memory://${name}`,
      eqk: [[ex, [['echo-queue', 'echo']]]],
      reconnect: { initialDelay: 500, maxDelay: 500, jitter: 0 },
    });
    await server.start();
    cleanup.push(() => server.stop());
    const producer = Caller.create({
      url: `memory://${name}`,
      reconnect: { initialDelay: 10, maxDelay: 10, jitter: 0 },
      ...options,
    });
    cleanup.push(() => producer.close());
    expect(codeOf(await producer.rpc_echo(0, { _timeout: 5 }))).toBe(0);
    const statuses: ConnectionStatus[] = [];
    producer.connection.on('status', (s) => statuses.push(s));
    let serverBack = false;
    server.consumer.on('recovered', () => (serverBack = true));
    broker.restart();
    await until(() => statuses.some((s) => s.type === 'connected' && s.recovered));
    return { broker, producer, isServerBack: () => serverBack };
  }

  test.each(['direct', 'per-call'] as const)(
    'rpc - %s: a call made after the producer recovered, before the server declared its queue again, is answered',
    async (mode) => {
      const { producer, isServerBack } = await restartedBroker({ rpcReplyMode: mode });
      expect(isServerBack()).toBe(false);
      const calls = await Promise.all([1, 2, 3].map((i) => producer.rpc_echo(i, { _timeout: 5 })));
      expect(calls.map(codeOf)).toEqual([1, 2, 3]);
      expect(isServerBack()).toBe(true);
    },
  );

  test('rpc - within the window, a queue that never comes back fails UNROUTABLE when the call has no time left', async () => {
    const { producer } = await restartedBroker();
    const result = await producer.rpc_echo(1, { _key: 'nobody', _timeout: 0.4, _max_retry: 1 });
    expect(codeOf(result)).toBe(ErrorCode.UNROUTABLE);
  });

  test('rpc - once the window has passed, UNROUTABLE comes back at once (before the server is back)', async () => {
    const { producer, isServerBack } = await restartedBroker({ rpcRecoveryWindow: 50 });
    await new Promise((r) => setTimeout(r, 100));
    const result = await producer.rpc_echo(1, { _timeout: 30 });
    expect(codeOf(result)).toBe(ErrorCode.UNROUTABLE);
    expect(isServerBack()).toBe(false);
  });

  test('rpc - rpcRecoveryWindow 0: UNROUTABLE at once after a recovery too', async () => {
    const { producer, isServerBack } = await restartedBroker({ rpcRecoveryWindow: 0 });
    const result = await producer.rpc_echo(1, { _timeout: 30 });
    expect(codeOf(result)).toBe(ErrorCode.UNROUTABLE);
    expect(isServerBack()).toBe(false);
  });

  test('rpc - on a connection that never recovered, a call nobody can take fails UNROUTABLE at once', async () => {
    const name = brokerName();
    const producer = Caller.create({ url: `memory://${name}` });
    cleanup.push(() => producer.close());
    const server = new Echo({ url: `memory://${name}`, eqk: [[ex, [['late-queue', 'echo']]]] });
    cleanup.push(() => server.stop());
    // The server starts only once the call has failed: a call that waited would be answered.
    const result = await producer.rpc_echo(1, { _timeout: 30 });
    expect(codeOf(result)).toBe(ErrorCode.UNROUTABLE);
    await server.start();
    expect(codeOf(await producer.rpc_echo(2, { _timeout: 5 }))).toBe(2);
  });
});
