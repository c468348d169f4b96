import {
  ErrorCode,
  Exchange,
  Fingerprint,
  GenericProducer,
  MessageCommand,
  MessageStatus,
  PublishError,
  RpcCommand,
  ValidationError,
} from '../../lib';
import { FakeTransport } from '../helpers/fake-transport';

class EchoExchange extends Exchange {
  static override name = 'echo-exchange';
}
class OtherExchange extends Exchange {
  static override name = 'other-exchange';
  static override exchange_type = 'fanout';
  static override durable = false;
}

class EchoProducer extends GenericProducer<{ echo: string; add: [number, number]; ping: void }> {
  static override eks = [
    [EchoExchange, 'echo-rk'],
    [OtherExchange, 'other-rk'],
  ] as const;
  build_message_status_online() {
    return new MessageStatus('online');
  }
  build_message_sum(a: number, b: number) {
    return new MessageCommand('sum', { a, b });
  }
  build_rpc_sum(a: number, b: number) {
    return new RpcCommand('sum', { a, b });
  }
  async build_message_later(text: string) {
    await new Promise((r) => setImmediate(r));
    return new MessageCommand('later', text);
  }
  build_rpc_wrong() {
    return new MessageCommand('wrong');
  }
}

function setup(options: { eks?: ConstructorParameters<typeof EchoProducer>[0] } = {}) {
  const transport = new FakeTransport();
  const producer = EchoProducer.create({
    transport,
    fingerprint: new Fingerprint('tester', 'unit', { pid: 1, host: 'h', user: 'u', vhost: '/' }),
    ...options.eks,
  });
  return { transport, producer };
}

describe('producer (unit)', () => {
  it('producer - message_X with no builder sends the command X with its argument as parameters', async () => {
    const { transport, producer } = setup();
    await producer.message_echo('A test message', { _key: 'k' });
    await producer.message_ping();
    await producer.message_add(2, 3, { _key: 'k' });
    const bodies = transport.published.map((p) => p.body as { name: string; content: unknown; type: string });
    expect(bodies[0]).toMatchObject({
      type: 'command',
      name: 'echo',
      category: 'message',
      content: { parameters: 'A test message' },
    });
    // no argument: {}; several arguments: the array of them.
    expect(bodies.find((b) => b.name === 'ping')?.content).toEqual({ parameters: {} });
    expect(bodies.find((b) => b.name === 'add')?.content).toEqual({ parameters: [2, 3] });
    await producer.close();
  });

  it("producer - the body is exactly postage's layout with the producer fingerprint", async () => {
    const { transport, producer } = setup();
    await producer.message_echo('x', { _key: 'k' });
    expect(transport.published[0]?.body).toEqual({
      type: 'command',
      name: 'echo',
      category: 'message',
      version: '2',
      fingerprint: { name: 'tester', type: 'unit', pid: '1', host: 'h', user: 'u', vhost: '/' },
      content: { parameters: 'x' },
      _reserved: {},
    });
    expect(transport.published[0]?.options).toMatchObject({
      contentType: 'application/json',
      mandatory: true,
    });
    expect(typeof transport.published[0]?.options.messageId).toBe('string');
    await producer.close();
  });

  it("producer - the fingerprint option is merged over the producer's own", () => {
    const producer = EchoProducer.create({
      transport: new FakeTransport(),
      fingerprint: { name: 'only-name' },
    });
    expect(producer.fingerprint).toMatchObject({ name: 'only-name', type: 'None', pid: String(process.pid) });
  });

  it('producer - message_X uses build_message_X with the arguments', async () => {
    const { transport, producer } = setup();
    await producer.message_status_online({ _key: 'k' });
    await producer.message_sum(1, 2, { _key: 'k' });
    await producer.message_later('async builder', { _key: 'k' });
    expect(transport.published.map((p) => p.body)).toEqual([
      expect.objectContaining({ type: 'status', name: 'online' }),
      expect.objectContaining({ name: 'sum', content: { parameters: { a: 1, b: 2 } } }),
      expect.objectContaining({ name: 'later', content: { parameters: 'async builder' } }),
    ]);
    await producer.close();
  });

  it('producer - with neither _key nor _eks a message goes to every (exchange, key) of eks', async () => {
    const { transport, producer } = setup();
    await producer.message_echo('x');
    expect(transport.published.map((p) => [p.exchange, p.routingKey])).toEqual([
      ['echo-exchange', 'echo-rk'],
      ['other-exchange', 'other-rk'],
    ]);
    // Persistent for a durable exchange, transient otherwise.
    expect(transport.published.map((p) => p.options.deliveryMode)).toEqual([2, 1]);
    await producer.close();
  });

  it('producer - _key sends to the first exchange; _eks wins over _key', async () => {
    const { transport, producer } = setup();
    await producer.message_echo('x', { _key: 'special' });
    await producer.message_echo('y', { _key: 'ignored', _eks: [[OtherExchange, 'fan']] });
    expect(transport.published.map((p) => [p.exchange, p.routingKey])).toEqual([
      ['echo-exchange', 'special'],
      ['other-exchange', 'fan'],
    ]);
    await producer.close();
  });

  it('producer - exchanges are declared once per connection, before first use, _eks ones included', async () => {
    const { transport, producer } = setup();
    class Late extends Exchange {
      static override name = 'late-exchange';
      static override exchange_type = 'topic';
    }
    await producer.message_echo('a', { _eks: [[Late, 'a.b']] });
    await producer.message_echo('b', { _eks: [[Late, 'a.c']] });
    const declares = transport.calls.filter((c) => c.method === 'assertExchange');
    expect(declares).toEqual([
      {
        method: 'assertExchange',
        args: ['late-exchange', 'topic', expect.objectContaining({ durable: true })],
      },
    ]);
    const firstPublish = transport.published[0];
    expect(firstPublish?.exchange).toBe('late-exchange');
    await producer.close();
  });

  it('producer - a property that is no message method is undefined, and await producer does not hang', async () => {
    const { producer } = setup();
    const loose = producer as unknown as Record<string, unknown>;
    expect(loose['foo']).toBeUndefined();
    expect(loose['then']).toBeUndefined();
    expect(loose['message_']).toBeUndefined();
    expect(typeof loose['message_anything']).toBe('function');
    expect(loose['message_anything']).toBe(loose['message_anything']);
    expect(await producer).toBe(producer);
    expect(JSON.parse(JSON.stringify({ p: Object.keys(producer).length > 0 }))).toEqual({ p: true });
    expect(producer.fingerprint['name']).toBe('tester');
  });

  it("producer - the command name is what follows the prefix (postage's replace() mangled it)", async () => {
    const { transport, producer } = setup();
    const loose = producer as unknown as Record<string, (...a: unknown[]) => Promise<void>>;
    await loose['message_send_message_x']!('v', { _key: 'k' });
    expect((transport.published[0]?.body as { name: string }).name).toBe('send_message_x');
    await producer.close();
  });

  it('producer - control options are checked: typos and misplaced options are typed errors', async () => {
    const { transport, producer } = setup();
    const loose = producer as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    await expect(loose['message_echo']!('x', { _kye: 'typo' })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await expect(loose['message_echo']!('x', { _timeout: 3 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await expect(loose['message_echo']!('x', { _eks: [] })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    // A plain object that is not all control keys is data.
    await producer.message_echo({ text: 'hi', _private: 1 } as unknown as string, { _key: 'k' });
    expect((transport.published[0]?.body as { content: unknown }).content).toEqual({
      parameters: { text: 'hi', _private: 1 },
    });
    await producer.close();
  });

  it('producer - build_rpc_X must return an RPC message, otherwise no server would reply', async () => {
    const { producer } = setup();
    await expect(producer.rpc_wrong()).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await producer.close();
  });

  it('producer - a message that does not encode or is too large is a typed error, nothing is published', async () => {
    const transport = new FakeTransport();
    const producer = EchoProducer.create({ transport, maxMessageSize: 1000 });
    await expect(producer.message_echo('x'.repeat(2000), { _key: 'k' })).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    await expect(producer.message_echo(circular as unknown as string, { _key: 'k' })).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(transport.published).toHaveLength(0);
    await producer.close();
  });

  it('producer - confirms are pipelined: publishes go out before any confirm arrives', async () => {
    const { transport, producer } = setup();
    await producer.connect();
    transport.confirmMode = 'manual';
    let settled = 0;
    const sends = Array.from({ length: 50 }, (_, i) =>
      producer.message_echo(`m${i}`, { _key: 'k' }).then(() => settled++),
    );
    await new Promise((r) => setImmediate(r));
    const channel = transport.channels.find((c) => c.published.length > 0)!;
    expect(channel.published).toHaveLength(50);
    expect(channel.heldCount).toBe(50);
    expect(settled).toBe(0);
    channel.release();
    await Promise.all(sends);
    expect(settled).toBe(50);
    await producer.close();
  });

  it('producer - a returned (unroutable) mandatory publish rejects even though the broker acks it', async () => {
    const { transport, producer } = setup();
    transport.unroutableKeys.add('nowhere');
    const error = await producer.message_echo('x', { _key: 'nowhere' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    expect(error).toMatchObject({ code: ErrorCode.UNROUTABLE });
    await expect(producer.message_echo('y', { _key: 'somewhere' })).resolves.toBeUndefined();
    await producer.close();
  });

  it('producer - message() sends a generic message; forward() sends a raw body as it is', async () => {
    const { transport, producer } = setup();
    await producer.message(1, 'str', { _key: 'k' });
    await producer.forward({ any: 'body' }, { _key: 'k' });
    expect(transport.published[0]?.body).toMatchObject({
      type: 'none',
      name: 'none',
      content: { args: [1, 'str'] },
    });
    expect(transport.published[1]?.body).toEqual({ any: 'body' });
    await producer.close();
  });

  it('producer - new also returns the proxy (create only adds the types)', async () => {
    const transport = new FakeTransport();
    const producer = new EchoProducer({ transport }) as unknown as Record<
      string,
      (...a: unknown[]) => Promise<void>
    >;
    await producer['message_echo']!('via new', { _key: 'k' });
    expect(transport.published).toHaveLength(1);
    await (producer as unknown as EchoProducer).close();
  });
});
