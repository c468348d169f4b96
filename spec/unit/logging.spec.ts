/**
 * Logging the Node ecosystem's way: postage calls its logger `(fields, message)`, as pino and
 * bunyan take it, so a pino logger gets the error (under `err`, which pino serialises with its
 * type, message and stack), the handler and the queue as fields.
 */
import pino from 'pino';

import {
  ConsoleLogger,
  Exchange,
  MessageCommand,
  MessageHandler,
  MessageProcessor,
  MemoryBroker,
  PostageError,
  TestClient,
  messageFirstLogger,
  type Eqk,
  type Logger,
} from '../../lib';

interface PinoLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger writing its JSON lines into an array. */
function pinoInto(lines: PinoLine[]): Logger {
  return pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as PinoLine) });
}

class LogExchange extends Exchange {
  static override name = 'logging-exchange';
}

class Failing extends MessageProcessor {
  static override eqk: Eqk = [[LogExchange, [['logging-queue', 'charge']]]];

  @MessageHandler('command', 'charge')
  charge(): void {
    throw new TypeError('card declined');
  }
}

describe('logging', () => {
  afterEach(() => MemoryBroker.resetAll());

  it('logging - with pino as the logger, a failing handler logs the error, handler and queue as fields', async () => {
    const lines: PinoLine[] = [];
    const processor = new Failing({ url: 'memory://logging', logger: pinoInto(lines), deadLetter: true });
    const client = await TestClient.for(processor);
    try {
      const settled = await client.send(new MessageCommand('charge', { id: 1 }));
      expect(settled.outcome).toBe('deadLetter');
    } finally {
      await client.close();
    }
    const line = lines.find((l) => l.msg === 'handler failed: message dead-lettered');
    expect(line).toBeDefined();
    expect(line?.level).toBe(50); // pino's error level
    expect(line?.['queue']).toBe('logging-queue');
    expect(String(line?.['handler'])).toContain('charge');
    // pino's err serializer: type, message and stack.
    expect(line?.['err']).toMatchObject({ type: 'TypeError', message: 'card declined' });
    expect(String((line?.['err'] as { stack?: unknown }).stack)).toContain('card declined');
  });

  it('logging - the console logger prints one readable line: level, message, then the fields as JSON', () => {
    const written: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const logger = new ConsoleLogger('info');
      logger.warn(
        { queue: 'q1', err: new PostageError('UNROUTABLE', 'no queue is bound') },
        'reply not sent',
      );
      logger.info('consuming recovered');
      logger.debug({ queue: 'q1' }, 'below the level: not printed');
    } finally {
      spy.mockRestore();
    }
    expect(written).toEqual([
      'postage warn reply not sent {"queue":"q1","err":{"name":"PostageError","message":"no queue is bound","code":"UNROUTABLE"}}\n',
      'postage info consuming recovered\n',
    ]);
  });

  it('logging - messageFirstLogger adapts a message-first logger (winston, console): (message, meta)', () => {
    const calls: unknown[][] = [];
    const winstonLike = {
      debug: (...args: unknown[]) => calls.push(['debug', ...args]),
      info: (...args: unknown[]) => calls.push(['info', ...args]),
      warn: (...args: unknown[]) => calls.push(['warn', ...args]),
      error: (...args: unknown[]) => calls.push(['error', ...args]),
    };
    const logger = messageFirstLogger(winstonLike);
    logger.error({ queue: 'q' }, 'handler failed');
    logger.info('connected');
    expect(calls).toEqual([
      ['error', 'handler failed', { queue: 'q' }],
      ['info', 'connected'],
    ]);
  });
});
