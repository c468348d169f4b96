/**
 * What a processor that serves no RPC leaves unanswered (issue 13, point 6), seen from the test
 * client: a reply is published before the request is settled, so once `send()` resolves (and
 * the broker is idle) a reply that was sent has been recorded.
 */
import {
  Exchange,
  MemoryBroker,
  MessageHandler,
  MessageProcessor,
  RpcCommand,
  RpcHandler,
  TestClient,
  type Eqk,
} from '../../lib';

class TapExchange extends Exchange {
  static override name = 'tap-exchange';
}
const eqk: Eqk = [[TapExchange, [['tap-queue', '#']]]];
const asRpc = { properties: { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'c-1' } };

class Tap extends MessageProcessor {
  static override eqk = eqk;
  @MessageHandler('command', 'sold') sold(): void {}
}

class Server extends MessageProcessor {
  static override eqk = eqk;
  @RpcHandler('command', 'price') price(): number {
    return 100;
  }
}

describe('unknown RPCs (test client)', () => {
  afterEach(() => MemoryBroker.resetAll());

  it('unknown rpc - a tap acks an RPC it does not serve and sends no reply', async () => {
    const client = await TestClient.for(new Tap({ url: 'memory://tap' }));
    try {
      const settled = await client.send(new RpcCommand('price', 'book'), asRpc);
      expect(settled.outcome).toBe('ack');
      expect(client.replies).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('unknown rpc - a tap dead-letters a broken body with a reply_to and sends no reply; a server answers it', async () => {
    const tap = await TestClient.for(new Tap({ url: 'memory://tap' }));
    try {
      expect((await tap.send(Buffer.from('{broken'), asRpc)).outcome).toBe('reject');
      expect(tap.replies).toEqual([]);
    } finally {
      await tap.close();
    }
    const server = await TestClient.for(new Server({ url: 'memory://server' }));
    try {
      expect((await server.send(Buffer.from('{broken'), asRpc)).outcome).toBe('reject');
      expect(server.replies.map((r) => r.body.content)).toEqual([expect.objectContaining({ type: 'error' })]);
    } finally {
      await server.close();
    }
  });

  it('unknown rpc - a handler registered at runtime makes a processor a server: it then fails a typo fast', async () => {
    const tap = new Tap({ url: 'memory://tap' });
    const client = await TestClient.for(tap);
    try {
      tap.registerHandler('command', 'price', () => 100, { rpc: true });
      expect((await client.rpc(new RpcCommand('price', 'book'))).value).toBe(100);
      const typo = await client.rpc(new RpcCommand('prcie', 'book'));
      expect(typo.error?.code).toBe('NO_HANDLER');
    } finally {
      await client.close();
    }
  });
});
