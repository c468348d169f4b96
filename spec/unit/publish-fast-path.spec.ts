/**
 * The publish fast path: once an exchange is declared on the current connection, a publish goes
 * straight to the channel (no declaration lookup, no buffer). A producer whose first act is a
 * publish (no connect() first) must get there too.
 */
import { Exchange, Fingerprint, GenericProducer, MessageCommand, RpcCommand } from '../../lib';
import type { ExchangeDefinition } from '../../lib/messages/exchange';
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

describe('publish ledger (unit)', () => {
  function ledgerSetup(confirmTimeout?: number) {
    const transport = new FakeTransport();
    const producer = FastProducer.create({
      transport,
      fingerprint: new Fingerprint('tester', 'unit', { pid: 1, host: 'h', user: 'u', vhost: '/' }),
      ...(confirmTimeout === undefined ? {} : { confirmTimeout }),
    });
    return { transport, producer };
  }

  it('publish ledger - among many in flight, only the returned publishes fail UNROUTABLE, the others resolve', async () => {
    const { transport, producer } = ledgerSetup();
    transport.unroutableKeys.add('nowhere');
    await producer.message_note('warm-up');
    transport.confirmMode = 'manual';
    const outcomes = Array.from({ length: 30 }, (_, i) =>
      producer.message_note(`n${i}`, { _key: i % 7 === 3 ? 'nowhere' : 'fast-rk' }).then(
        () => 'ok',
        (err: { code?: string }) => err.code,
      ),
    );
    await new Promise((r) => setImmediate(r));
    for (const channel of transport.channels) channel.release();
    const settled = await Promise.all(outcomes);
    expect(settled).toEqual(Array.from({ length: 30 }, (_, i) => (i % 7 === 3 ? 'UNROUTABLE' : 'ok')));
    await producer.close();
  });

  it('publish ledger - each publish left without a confirm fails CONFIRM_TIMEOUT; later ones still resolve', async () => {
    const { transport, producer } = ledgerSetup(80);
    await producer.message_note('warm-up');
    transport.confirmMode = 'manual';
    const first = Array.from({ length: 5 }, (_, i) =>
      producer.message_note(`a${i}`).catch((err: { code?: string }) => err.code),
    );
    await new Promise((r) => setTimeout(r, 40));
    let secondSettled = 0;
    const second = Array.from({ length: 5 }, (_, i) =>
      producer
        .message_note(`b${i}`)
        .catch((err: { code?: string }) => err.code)
        .finally(() => secondSettled++),
    );
    expect(await Promise.all(first)).toEqual(Array(5).fill('CONFIRM_TIMEOUT'));
    // The first batch timed out on its own deadline; the second batch, 40 ms younger, still waits.
    expect(secondSettled).toBe(0);
    for (const channel of transport.channels) channel.release();
    expect(await Promise.all(second)).toEqual(Array(5).fill(undefined));
    await producer.close();
  });
});
