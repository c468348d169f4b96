/**
 * No public object prints its password: util.inspect (console.log), util.format's %o and %j,
 * JSON.stringify and String() of a connection, a producer, a consumer, a processor, a
 * scheduler, a resolved configuration and its endpoints, built from a URL, from options and
 * from the environment, before and after connecting (in-process broker).
 */
import { inspect, format } from 'node:util';

import {
  Connection,
  GenericConsumer,
  GenericProducer,
  MessageProcessor,
  MicroScheduler,
  resolveConnectionConfig,
  type ExchangeDefinition,
} from '../../lib';
import { redactCredentials } from '../../lib/errors';

const SECRET = 'pw-Do-Not-Print-91c2';
const work: ExchangeDefinition = {
  name: 'redact-work',
  exchange_type: 'direct',
  passive: false,
  durable: false,
  auto_delete: false,
};

/** Every way a user prints an object. */
function printed(value: unknown): string[] {
  return [
    inspect(value),
    inspect(value, { depth: Infinity, showHidden: true }),
    format('%o', value),
    format('%j', value),
    format('%s', value),
    String(value),
    JSON.stringify(value) ?? '',
  ];
}

function expectNoSecret(name: string, value: unknown): void {
  for (const [i, text] of printed(value).entries()) {
    if (text.includes(SECRET))
      throw new Error(`${name}: printing way #${i} shows the password:\n${text.slice(0, 2000)}`);
  }
}

describe('redaction', () => {
  const closing: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of closing.splice(0)) await close();
  });

  const sources = {
    url: { url: `amqp://bob:${SECRET}@localhost:5672/v` },
    options: { host: 'localhost', user: 'bob', password: SECRET },
    'url list': { url: `amqp://bob:${SECRET}@h1:5672/v, amqp://bob:${SECRET}@h2:5673/v` },
  };

  for (const [source, options] of Object.entries(sources)) {
    it(`redaction - objects built with a password (${source}) never print it`, () => {
      const config = resolveConnectionConfig(options, {});
      expect(config.endpoints[0]?.password).toBe(SECRET);
      expectNoSecret('config', config);
      expectNoSecret('endpoint', config.endpoints[0]);
      const connection = new Connection(options);
      closing.push(() => connection.close());
      expectNoSecret('connection', connection);
      expect(inspect(connection)).toContain('amqp://bob@');
      const producer = new GenericProducer({ ...options, eks: [[work, 'k']] });
      closing.push(() => producer.close());
      expectNoSecret('producer', producer);
      const consumer = new GenericConsumer({ ...options, eqk: [[work, [['redact-q', 'k']]]] });
      closing.push(() => consumer.close());
      expectNoSecret('consumer', consumer);
      const processor = new MessageProcessor({
        ...options,
        eqk: [[work, [['redact-q', 'k']]]],
        deadLetter: true,
      });
      closing.push(() => processor.close());
      expectNoSecret('processor', processor);
      const scheduler = new MicroScheduler().add(processor);
      expectNoSecret('scheduler', scheduler);
    });
  }

  it('redaction - the environment (POSTAGE_URL, POSTAGE_PASSWORD) is not printed either', () => {
    const fromUrl = resolveConnectionConfig({}, { POSTAGE_URL: `amqps://carol:${SECRET}@broker/prod` });
    const fromPassword = resolveConnectionConfig({}, { POSTAGE_PASSWORD: SECRET });
    expectNoSecret('config from POSTAGE_URL', fromUrl);
    expectNoSecret('config from POSTAGE_PASSWORD', fromPassword);
  });

  it('redaction - a connected connection, producer and processor (in-process broker) never print it', async () => {
    const options = { url: 'memory://redaction', password: SECRET };
    const connection = new Connection(options);
    closing.push(() => connection.close());
    await connection.open();
    expect(connection.isOpen).toBe(true);
    expectNoSecret('open connection', connection);
    const producer = new GenericProducer({ connection, eks: [[work, 'k']] });
    closing.push(() => producer.close());
    await producer.send(new (await import('../../lib')).MessageCommand('ping', 1)).catch(() => undefined);
    expectNoSecret('producer that published', producer);
    const processor = new MessageProcessor({ connection, eqk: [[work, [['redact-q2', 'k']]]] });
    closing.push(() => processor.close());
    await processor.start();
    expectNoSecret('started processor', processor);
  });

  it('redaction - URLs with user:password@ in text are redacted; the password is what goes, the rest stays', () => {
    expect(redactCredentials(`cannot connect to amqp://bob:${SECRET}@h:5672/v (refused)`)).toBe(
      'cannot connect to amqp://bob:***@h:5672/v (refused)',
    );
    expect(redactCredentials(`a: amqps://x:${SECRET}@h1, b: amqp://y:z@h2/`)).toBe(
      'a: amqps://x:***@h1, b: amqp://y:***@h2/',
    );
    expect(redactCredentials('amqp://bob@h:5672/ and memory://t')).toBe('amqp://bob@h:5672/ and memory://t');
  });
});
