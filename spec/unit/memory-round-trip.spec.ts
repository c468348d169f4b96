/**
 * The in-process broker applies a method (declare, bind, consume...) a turn of the event loop
 * after it is called, as RabbitMQ applies it a round trip later, so that it shows the startup
 * race RabbitMQ shows instead of hiding it (issue 13, point 7).
 */
import {
  ErrorCode,
  GenericProducer,
  MemoryBroker,
  MessageHandler,
  MessageProcessor,
  runAll,
  type ExchangeDefinition,
} from '../../lib';
import { memoryTransport } from '../../lib/transport/memory';
import type { TransportChannel, TransportMessage } from '../../lib/transport/types';

let n = 0;
const brokerName = (): string => `round-trip-${process.pid}-${++n}`;

async function open(name: string, confirm = false): Promise<TransportChannel> {
  const connection = await memoryTransport.connect(
    { protocol: 'memory', host: name, port: 0, vhost: '/', user: '', password: '' },
    { heartbeat: 0, connectTimeout: 0, connectionName: 'unit' },
  );
  connection.on('error', () => undefined);
  const ch = confirm ? await connection.createConfirmChannel() : await connection.createChannel();
  ch.on('error', () => undefined);
  return ch;
}

/** Publishes mandatory on a confirm channel: resolves 'returned', 'routed' or the error. */
function publish(ch: TransportChannel, exchange: string, key: string): Promise<string> {
  return new Promise((resolve) => {
    let returned = false;
    const onReturn = (): void => {
      returned = true;
    };
    ch.on('return', onReturn);
    ch.publish(exchange, key, Buffer.from('x'), { mandatory: true }, (err) => {
      ch.removeListener('return', onReturn);
      resolve(err !== null && err !== undefined ? String(err) : returned ? 'returned' : 'routed');
    });
  });
}

class Echo extends MessageProcessor {
  @MessageHandler('command', 'echo') echo(): void {}
}

describe('in-process broker round trips', () => {
  afterAll(() => MemoryBroker.resetAll());

  it('memory broker - runAll() then a publish from a new producer is unroutable, as on RabbitMQ (20 of 20)', async () => {
    const name = brokerName();
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const ex: ExchangeDefinition = {
        name: `race-${i}`,
        exchange_type: 'direct',
        passive: false,
        durable: false,
        auto_delete: true,
      };
      const processor = new Echo({ url: `memory://${name}`, eqk: [[ex, [[`race-q-${i}`, 'rk']]]] });
      const running = runAll([processor]);
      class Sender extends GenericProducer<{ echo: string }> {
        static override eks = [[ex, 'rk']] as const;
      }
      const sender = Sender.create({ url: `memory://${name}` });
      outcomes.push(
        await sender.message_echo('right away').then(
          () => 'routed',
          (err: { code: string }) => err.code,
        ),
      );
      await running.ready;
      await sender.message_echo('after ready'); // routed now: it would reject otherwise
      await sender.close();
      await running.close();
      await running;
    }
    expect(outcomes).toEqual(Array.from({ length: 20 }, () => ErrorCode.UNROUTABLE));
  });

  it('memory broker - a queue declared on one channel is not there for another channel until the declare returns', async () => {
    const name = brokerName();
    const declarer = await open(name);
    const publisher = await open(name, true);
    const declared = declarer.assertQueue('q1');
    // Published in the same turn as the declare, on another channel: the queue is not there yet.
    expect(await publish(publisher, '', 'q1')).toBe('returned');
    await declared;
    expect(await publish(publisher, '', 'q1')).toBe('routed');
  });

  it("memory broker - a channel's methods and publishes take effect in order, as RabbitMQ handles a channel's frames", async () => {
    const name = brokerName();
    const ch = await open(name, true);
    const setUp = [
      ch.assertExchange('ordered', 'direct'),
      ch.assertQueue('q2'),
      ch.bindQueue('q2', 'ordered', 'k'),
    ];
    // Sent after the bind, not awaited: it routes, the bind having taken effect first.
    const published = publish(ch, 'ordered', 'k');
    await Promise.all(setUp);
    expect(await published).toBe('routed');
    const got = await ch.get('q2', { noAck: true });
    expect((got as TransportMessage).content.toString()).toBe('x');
  });

  it('memory broker - close() lets the methods and publishes sent before it take effect first', async () => {
    const name = brokerName();
    const ch = await open(name, true);
    const declared = ch.assertQueue('q3');
    const published = publish(ch, '', 'q3');
    await ch.close();
    await declared;
    expect(await published).toBe('routed');
    const other = await open(name);
    expect((await other.checkQueue('q3')).messageCount).toBe(1);
  });
});
