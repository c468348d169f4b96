/**
 * The publish fast path: once an exchange is declared on the current connection, a publish goes
 * straight to the channel (no declaration lookup, no buffer). A producer whose first act is a
 * publish (no connect() first) must get there too.
 */
import { Exchange, Fingerprint, GenericProducer, MessageCommand, RpcCommand } from '../../lib';
import type { ExchangeDefinition } from '../../lib/exchange';
import { FakeTransport } from '../helpers/fake-transport';

class FastExchange extends Exchange {
  static override name = 'fast-exchange';
}

class FastProducer extends GenericProducer<{ note: string }> {
  static override eks = [[FastExchange, 'fast-rk']] as const;
  build_message_note(text: string) {
    return new MessageCommand('note', { text });
  }
  build_rpc_ask(text: string) {
    return new RpcCommand('ask', { text });
  }
}

function setup() {
  const transport = new FakeTransport();
  const producer = FastProducer.create({
    transport,
    fingerprint: new Fingerprint('tester', 'unit', { pid: 1, host: 'h', user: 'u', vhost: '/' }),
  });
  const declare = jest.spyOn(producer.connection, 'declareExchange');
  return { transport, producer, declare };
}

describe('publish fast path (unit)', () => {
  it('publish fast path - the first publish, with no connect() before it, marks its exchange declared', async () => {
    const { producer, declare } = setup();
    await producer.message_note('first');
    expect(declare).toHaveBeenCalledTimes(1);
    const definition = declare.mock.calls[0]?.[0] as ExchangeDefinition;
    expect(definition.name).toBe('fast-exchange');
    expect(producer.connection.isExchangeDeclared(definition)).toBe(true);
    await producer.close();
  });

  it('publish fast path - publishes after the first one never ask for a declaration again', async () => {
    const { transport, producer, declare } = setup();
    await producer.message_note('first');
    await Promise.all(Array.from({ length: 50 }, (_, i) => producer.message_note(`n${i}`)));
    for (let i = 0; i < 20; i++) await producer.message_note(`s${i}`);
    expect(declare).toHaveBeenCalledTimes(1);
    expect(transport.calls.filter((c) => c.method === 'assertExchange')).toHaveLength(1);
    expect(transport.published).toHaveLength(71);
    await producer.close();
  });

  it('publish fast path - an RPC as first act marks its exchange declared for later publishes', async () => {
    const { producer, declare } = setup();
    const result = await producer.rpc_ask('hello', { _timeout: 0.05, _max_retry: 0 });
    expect(result).toBeDefined();
    const definition = declare.mock.calls[0]?.[0] as ExchangeDefinition;
    expect(producer.connection.isExchangeDeclared(definition)).toBe(true);
    await producer.message_note('after');
    expect(declare).toHaveBeenCalledTimes(1);
    await producer.close();
  });
});
