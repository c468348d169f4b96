/**
 * Issue 13, point 11: control options checked on every entry point, boolean environment
 * variables read one way (with a warning for what is not understood), one confirmTimeout default.
 */
import {
  Connection,
  DEFAULT_CONFIRM_TIMEOUT,
  ErrorCode,
  Exchange,
  GenericProducer,
  MemoryBroker,
  MessageCommand,
  MessageProcessor,
  RpcCommand,
} from '../../lib';
import { resolveConnectionConfig } from '../../lib/connection/config';
import { MemoryLogger } from '../helpers/memory-logger';

class SmallExchange extends Exchange {
  static override name = 'small-exchange';
}

class SmallProducer extends GenericProducer<{ echo: string }> {
  static override eks = [[SmallExchange, 'rk']] as const;
}

describe('small things', () => {
  afterEach(() => MemoryBroker.resetAll());

  describe('control options', () => {
    const producer = SmallProducer.create({ url: 'memory://small' });
    afterAll(() => producer.close());
    // What a JavaScript caller can pass: nothing checks these keys at compile time there.
    const typo = { _timout: 1 } as unknown as Record<string, never>;

    it('control options - call() rejects an unknown control option with INVALID_ARGUMENT, as rpc_x() does', async () => {
      await expect(producer.call(new RpcCommand('echo', 'x'), typo)).rejects.toMatchObject({
        code: ErrorCode.INVALID_ARGUMENT,
      });
      await expect(producer.rpc_echo('x', typo)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    });

    it('control options - send() and forward() reject an unknown option, and an RPC-only one', async () => {
      await expect(producer.send(new MessageCommand('echo', 'x'), typo)).rejects.toMatchObject({
        code: ErrorCode.INVALID_ARGUMENT,
      });
      const rpcOnly = { _timeout: 1 } as unknown as Record<string, never>;
      await expect(producer.send(new MessageCommand('echo', 'x'), rpcOnly)).rejects.toMatchObject({
        code: ErrorCode.INVALID_ARGUMENT,
      });
      await expect(producer.forward({ any: 'body' }, { key: 'rk' } as never)).rejects.toMatchObject({
        code: ErrorCode.INVALID_ARGUMENT,
      });
      await expect(producer.send(new MessageCommand('echo', 'x'), null as never)).rejects.toMatchObject({
        code: ErrorCode.INVALID_ARGUMENT,
      });
    });

    it('control options - the message names the unknown key and the allowed ones', async () => {
      const error = await producer.call(new RpcCommand('echo', 'x'), typo).catch((e: unknown) => e);
      expect(String((error as Error).message)).toContain('_timout');
      expect(String((error as Error).message)).toContain('_timeout');
    });
  });

  describe('boolean environment variables', () => {
    it.each(['1', 'true', 'TRUE', 'yes', 'Yes', 'on', ' true '])(
      'environment - POSTAGE_DEBUG_MODE=%j turns debug on',
      (value) => {
        expect(resolveConnectionConfig({}, { POSTAGE_DEBUG_MODE: value }).debug).toBe(true);
      },
    );

    it.each(['0', 'false', 'No', 'off', ''])('environment - POSTAGE_DEBUG_MODE=%j leaves it off', (value) => {
      const logger = new MemoryLogger();
      expect(resolveConnectionConfig({ logger }, { POSTAGE_DEBUG_MODE: value }).debug).toBe(false);
      expect(logger.lines).toEqual([]);
    });

    it('environment - a value that is not understood is ignored with a warning naming the variable, once', () => {
      const logger = new MemoryLogger();
      expect(resolveConnectionConfig({ logger }, { POSTAGE_DEBUG_MODE: 'enabled' }).debug).toBe(false);
      expect(resolveConnectionConfig({ logger }, { POSTAGE_DEBUG_MODE: 'enabled' }).debug).toBe(false);
      const warnings = logger.at('warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.fields).toMatchObject({ variable: 'POSTAGE_DEBUG_MODE', value: 'enabled' });
      expect(warnings[0]?.message).toContain('POSTAGE_DEBUG_MODE');
    });

    it('environment - the debug option wins over the variable', () => {
      expect(resolveConnectionConfig({ debug: false }, { POSTAGE_DEBUG_MODE: '1' }).debug).toBe(false);
    });
  });

  describe('confirmTimeout', () => {
    it('confirmTimeout - producers and processors have one default', async () => {
      const producer = SmallProducer.create({ url: 'memory://small' });
      const processor = new MessageProcessor({ url: 'memory://small' });
      try {
        expect(producer.connection.config.confirmTimeout).toBe(DEFAULT_CONFIRM_TIMEOUT);
        expect(processor.confirmTimeout).toBe(DEFAULT_CONFIRM_TIMEOUT);
      } finally {
        await producer.close();
        await processor.close();
      }
    });

    it("confirmTimeout - a processor on a shared connection takes the connection's, unless given its own", async () => {
      const connection = new Connection({ url: 'memory://small', confirmTimeout: 4_000 });
      const shared = new MessageProcessor({ connection });
      const own = new MessageProcessor({ connection, confirmTimeout: 1_500 });
      try {
        expect(shared.confirmTimeout).toBe(4_000);
        expect(own.confirmTimeout).toBe(1_500);
      } finally {
        await shared.close();
        await own.close();
        await connection.close();
      }
    });
  });
});
