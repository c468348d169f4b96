/**
 * An RPC no handler takes (issue 13, point 6): a tap bound to `#` on the server's exchange must
 * not answer the server's calls, while a server still fails a typo'd name fast. Both are the
 * processor's `unknownRpc` option; the default depends on whether it serves RPCs.
 */
import {
  ErrorCode,
  GenericProducer,
  MessageMatcher,
  MessageProcessor,
  MessageResultError,
  RpcHandler,
  type ExchangeDefinition,
  type ProcessorOptions,
} from '../../lib';
import { uid } from '../helpers/broker';
import { contractUrl, target } from '../helpers/contract';

function topic(name: string): ExchangeDefinition {
  return { name, exchange_type: 'topic', passive: false, durable: false, auto_delete: true };
}

class Pricing extends MessageProcessor {
  @RpcHandler('command', 'price')
  async price(content: { parameters: string }): Promise<number> {
    // A real server takes a moment: a tap that answered at once would always win the race.
    await new Promise((resolve) => setTimeout(resolve, 10));
    return content.parameters.length * 100;
  }
}

/** Records every fire-and-forget message it sees; serves no RPC. */
class Audit extends MessageProcessor {
  readonly seen: string[] = [];

  @MessageMatcher(() => true)
  record(content: unknown, context: { routingKey: string }): void {
    void content;
    this.seen.push(context.routingKey);
  }
}

describe(`unknown RPCs (contract, ${target})`, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  async function setUp(auditOptions: ProcessorOptions = {}) {
    const ex = topic(uid('shop'));
    const pricing = new Pricing({
      url: contractUrl(),
      eqk: [[ex, [[{ name: uid('q.pricing'), flags: { auto_delete: true } }, 'pricing.#']]]],
    });
    const audit = new Audit({
      url: contractUrl(),
      eqk: [[ex, [[{ name: uid('q.audit'), flags: { auto_delete: true } }, '#']]]],
      ...auditOptions,
    });
    cleanup.push(
      () => pricing.close(),
      () => audit.close(),
    );
    await Promise.all([pricing.start(), audit.start()]);
    class Shop extends GenericProducer<{ price: string; prcie: string; sold: string }> {
      static override eks = [[ex, 'pricing.quote']] as const;
    }
    const shop = Shop.create({ url: contractUrl() });
    cleanup.push(() => shop.close());
    return { shop, audit };
  }

  it('unknown rpc - with an audit tap bound to # on the same exchange, 20 of 20 calls get the real answer', async () => {
    const { shop, audit } = await setUp();
    const replies = [];
    for (let i = 0; i < 20; i++) replies.push(await shop.rpc_price('x'.repeat(i + 1), { _timeout: 10 }));
    expect(replies.filter((r) => r.ok)).toHaveLength(20);
    expect(replies.map((r) => r.value)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 100));
    // The tap still sees the fire-and-forget traffic.
    await shop.message_sold('x', { _key: 'sales.sold' });
    const deadline = Date.now() + 5_000;
    while (!audit.seen.includes('sales.sold') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(audit.seen).toContain('sales.sold');
  });

  it("unknown rpc - a typo'd call to a processor that serves RPCs fails fast with NO_HANDLER", async () => {
    const { shop } = await setUp();
    const reply = await shop.rpc_prcie('x', { _timeout: 30, _max_retry: 4 });
    expect(reply).toBeInstanceOf(MessageResultError);
    expect(reply.message).toContain('no handler');
    expect(() => reply.unwrap()).toThrow(expect.objectContaining({ code: ErrorCode.NO_HANDLER }));
  });

  it("unknown rpc - a tap set to unknownRpc 'reply-error' answers every call it does not serve (the old behaviour)", async () => {
    const { shop } = await setUp({ unknownRpc: 'reply-error' });
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => shop.rpc_price('abc', { _timeout: 10 })),
    );
    // The tap answers at once, before the server: its answer is the one each call gets.
    expect(replies.every((r) => r.error?.code === ErrorCode.NO_HANDLER)).toBe(true);
  });

  it("unknown rpc - a server set to unknownRpc 'ignore' leaves a typo'd call unanswered (it times out)", async () => {
    const ex = topic(uid('shop'));
    const pricing = new Pricing({
      url: contractUrl(),
      unknownRpc: 'ignore',
      eqk: [[ex, [[{ name: uid('q.pricing'), flags: { auto_delete: true } }, 'pricing.#']]]],
    });
    cleanup.push(() => pricing.close());
    await pricing.start();
    class Shop extends GenericProducer<{ prcie: string }> {
      static override eks = [[ex, 'pricing.quote']] as const;
    }
    const shop = Shop.create({ url: contractUrl() });
    cleanup.push(() => shop.close());
    const reply = await shop.rpc_prcie('x', { _timeout: 0.3, _max_retry: 0 });
    expect(reply.error?.code).toBe(ErrorCode.RPC_TIMEOUT);
  });

  it('unknown rpc - an invalid unknownRpc value is an INVALID_ARGUMENT', () => {
    expect(() => new MessageProcessor({ url: contractUrl(), unknownRpc: 'drop' as never })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
