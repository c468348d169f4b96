import {
  ErrorCode,
  Exchange,
  FilterError,
  Handler,
  MessageFilter,
  MessageHandler,
  MessageHandlerFullBody,
  MessageProcessor,
  RpcHandler,
  type Eqk,
  type HandlerContext,
  type ReplyFunction,
} from '../../lib';
import { FakeTransport } from '../helpers/fake-transport';

class TestExchange extends Exchange {
  static override name = 'unit-exchange';
}
const eqk: Eqk = [[TestExchange, [['unit-q', 'rk']]]];

function command(name: string, parameters: unknown, category: 'message' | 'rpc' = 'message') {
  return {
    type: 'command',
    name,
    category,
    version: '2',
    fingerprint: { name: 'sender' },
    content: { parameters },
    _reserved: {},
  };
}

async function started<P extends MessageProcessor>(make: (transport: FakeTransport) => P) {
  const transport = new FakeTransport();
  const processor = make(transport);
  await processor.start();
  return { transport, processor };
}

/** Waits until every delivery was settled (acked or rejected). */
async function settled(transport: FakeTransport, count: number): Promise<void> {
  for (let i = 0; i < 200 && transport.acked.length + transport.rejected.length < count; i++) {
    await new Promise((r) => setImmediate(r));
  }
}

describe('processor (unit)', () => {
  it('processor - handlers are registered per class: they do not leak between processor classes', async () => {
    const seen: string[] = [];
    class A extends MessageProcessor {
      @MessageHandler('command', 'echo') a() {
        seen.push('A');
      }
    }
    class B extends MessageProcessor {
      @MessageHandler('command', 'echo') b() {
        seen.push('B');
      }
    }
    void A;
    const { transport, processor } = await started((t) => new B({ transport: t, eqk }));
    transport.deliver('unit-q', command('echo', 'x'));
    await settled(transport, 1);
    expect(seen).toEqual(['B']);
    await processor.stop();
  });

  it('processor - all handlers of a message run, base class first, each class in declaration order', async () => {
    const seen: string[] = [];
    class Base extends MessageProcessor {
      @MessageHandler('command', 'echo') second() {
        seen.push('base-1');
      }
      @MessageHandlerFullBody('command', 'echo') static Full = class extends Handler {
        call() {
          seen.push('base-2-class');
        }
      };
      @MessageHandler('command', 'echo') third() {
        seen.push('base-3');
      }
    }
    class Derived extends Base {
      @MessageHandler('command', 'echo') derived() {
        seen.push('derived');
      }
    }
    const { transport, processor } = await started((t) => new Derived({ transport: t, eqk }));
    transport.deliver('unit-q', command('echo', 'x'));
    await settled(transport, 1);
    expect(seen).toEqual(['base-1', 'base-2-class', 'base-3', 'derived']);
    expect(transport.acked).toHaveLength(1);
    await processor.stop();
  });

  it('processor - MessageHandler gets the content, FullBody the whole body; each handler its own copy', async () => {
    const got: unknown[] = [];
    class P extends MessageProcessor {
      @MessageHandler('command', 'echo') content(
        content: { parameters: { list: number[] } },
        context: HandlerContext,
      ) {
        content.parameters.list.push(99);
        got.push(['content', content, context.queue, context.fields.routingKey]);
      }
      @MessageHandlerFullBody('command', 'echo') full(body: { fingerprint: unknown; content: unknown }) {
        got.push(['full', body.fingerprint, body.content]);
      }
    }
    const { transport, processor } = await started((t) => new P({ transport: t, eqk }));
    transport.deliver('unit-q', command('echo', { list: [1] }));
    await settled(transport, 1);
    expect(got).toEqual([
      ['content', { parameters: { list: [1, 99] } }, 'unit-q', 'unit-q'],
      ['full', { name: 'sender' }, { parameters: { list: [1] } }],
    ]);
    await processor.stop();
  });

  it('processor - a class Handler gets processor, data and reply', async () => {
    const got: unknown[] = [];
    class EchoHandler extends Handler<RpcProcessor> {
      call() {
        got.push([this.processor.tag, this.data, typeof this.reply, this.reply === this.reply_func]);
        this.reply?.('done');
      }
    }
    class RpcProcessor extends MessageProcessor {
      tag = 'mine';
      @RpcHandler('command', 'echo') static Echo = EchoHandler;
    }
    const { transport, processor } = await started((t) => new RpcProcessor({ transport: t, eqk }));
    transport.deliver('unit-q', command('echo', 'x', 'rpc'), { replyTo: 'reply-q', correlationId: 'c1' });
    await settled(transport, 1);
    expect(got).toEqual([['mine', { parameters: 'x' }, 'function', true]]);
    const reply = transport.published.find((p) => p.routingKey === 'reply-q');
    expect(reply?.options.correlationId).toBe('c1');
    expect(reply?.body).toMatchObject({
      type: 'result',
      content: { type: 'success', value: 'done', message: '' },
    });
    await processor.stop();
  });

  it('processor - filters run nearest the handler first; FilterError skips only that handler', async () => {
    const got: unknown[] = [];
    const add = (suffix: string) => (data: unknown) => ({
      ...(data as object),
      trail: `${(data as { trail?: string }).trail ?? ''}${suffix}`,
    });
    const skip = () => {
      throw new FilterError('not for me');
    };
    class P extends MessageProcessor {
      @MessageHandler('command', 'echo')
      @MessageFilter(add('2'))
      @MessageFilter(add('1'))
      filtered(data: { trail: string }) {
        got.push(data.trail);
      }
      @MessageHandler('command', 'echo')
      @MessageFilter(skip)
      skipped() {
        got.push('skipped ran');
      }
    }
    const { transport, processor } = await started((t) => new P({ transport: t, eqk }));
    transport.deliver('unit-q', command('echo', 'x'));
    await settled(transport, 1);
    expect(got).toEqual(['12']);
    expect(transport.acked).toHaveLength(1);
    await processor.stop();
  });

  it('processor - a subclass RPC handler replaces its base; two in one class are ambiguous', async () => {
    class Base extends MessageProcessor {
      @RpcHandler('command', 'echo') base() {
        return 'base';
      }
    }
    class Derived extends Base {
      @RpcHandler('command', 'echo') derived() {
        return 'derived';
      }
    }
    const { transport, processor } = await started((t) => new Derived({ transport: t, eqk }));
    transport.deliver('unit-q', command('echo', 'x', 'rpc'), { replyTo: 'r' });
    await settled(transport, 1);
    expect(transport.published[0]?.body).toMatchObject({ content: { value: 'derived' } });
    await processor.stop();

    class Twice extends MessageProcessor {
      @RpcHandler('command', 'echo') one() {}
      @RpcHandler('command', 'echo') two() {}
    }
    expect(() => new Twice({ transport: new FakeTransport() })).toThrow(
      expect.objectContaining({ code: ErrorCode.AMBIGUOUS_HANDLER }),
    );
  });

  it('processor - overriding a decorated method keeps its registration and runs the override', async () => {
    const seen: string[] = [];
    class Base extends MessageProcessor {
      @MessageHandler('command', 'echo') onEcho() {
        seen.push('base');
      }
    }
    class Derived extends Base {
      override onEcho() {
        seen.push('override');
      }
    }
    const { transport, processor } = await started((t) => new Derived({ transport: t, eqk }));
    transport.deliver('unit-q', command('echo', 'x'));
    await settled(transport, 1);
    expect(seen).toEqual(['override']);
    await processor.stop();
  });

  it('processor - a handler of its own for quit replaces the default one', async () => {
    const seen: string[] = [];
    class P extends MessageProcessor {
      @MessageHandler('command', 'quit') myQuit() {
        seen.push('my quit');
      }
    }
    const { transport, processor } = await started((t) => new P({ transport: t, eqk }));
    transport.deliver('unit-q', command('quit', {}));
    await settled(transport, 1);
    expect(seen).toEqual(['my quit']);
    // The default would have stopped the processor: it is still consuming.
    expect(transport.methods()).not.toContain('cancel');
    await processor.stop();
  });

  it('processor - registerHandler adds function handlers; `this` is the processor', async () => {
    const got: unknown[] = [];
    const { transport, processor } = await started((t) => new MessageProcessor({ transport: t, eqk }));
    processor.registerHandler('status', 'online', function (this: MessageProcessor, content: unknown) {
      got.push([this === processor, content]);
    });
    processor.registerHandler(
      'command',
      'add',
      (content: { parameters: number[] }, reply: ReplyFunction) =>
        reply(content.parameters.reduce((a, b) => a + b, 0)),
      { rpc: true },
    );
    transport.deliver('unit-q', { type: 'status', name: 'online', category: 'message', content: {} });
    transport.deliver('unit-q', command('add', [1, 2, 3], 'rpc'), { replyTo: 'r' });
    await settled(transport, 2);
    expect(got).toEqual([[true, {}]]);
    expect(transport.published[0]?.body).toMatchObject({ content: { type: 'success', value: 6 } });
    await processor.stop();
  });

  it('processor - a handler schema rejects content that does not match; an RPC gets a MessageResultError', async () => {
    const got: unknown[] = [];
    class P extends MessageProcessor {
      @MessageHandler('command', 'add', {
        schema: {
          type: 'object',
          required: ['parameters'],
          properties: { parameters: { type: 'array', items: { type: 'number' } } },
        },
      })
      add(content: { parameters: number[] }) {
        got.push(content.parameters);
      }
      @RpcHandler('command', 'sum', {
        schema: { type: 'object', properties: { parameters: { type: 'array' } } },
      })
      sum() {
        return 1;
      }
    }
    const { transport, processor } = await started((t) => new P({ transport: t, eqk }));
    transport.deliver('unit-q', command('add', [1, 2]));
    transport.deliver('unit-q', command('add', ['one']));
    transport.deliver('unit-q', command('sum', 'not an array', 'rpc'), { replyTo: 'r' });
    await settled(transport, 3);
    expect(got).toEqual([[1, 2]]);
    expect(transport.acked).toHaveLength(1);
    expect(transport.rejected.map((r) => r.requeue)).toEqual([false, false]);
    expect(transport.published[0]?.body).toMatchObject({ content: { type: 'error', value: null } });
    expect((transport.published[0]?.body as { content: { message: string } }).content.message).toContain(
      'invalid content',
    );
    await processor.stop();
  });

  it('processor - handler methods may use any name: internals cannot collide with them', async () => {
    const seen: string[] = [];
    class P extends MessageProcessor {
      @MessageHandler('command', 'a') fail() {
        seen.push('fail');
      }
      @MessageHandler('command', 'b') finish() {
        seen.push('finish');
      }
      @MessageHandler('command', 'c') dispatch() {
        seen.push('dispatch');
      }
      @MessageHandler('command', 'd') routes() {
        seen.push('routes');
      }
      @MessageHandler('command', 'e') debug() {
        seen.push('debug');
      }
    }
    const { transport, processor } = await started((t) => new P({ transport: t, eqk }));
    for (const name of ['a', 'b', 'c', 'd', 'e']) transport.deliver('unit-q', command(name, {}));
    await settled(transport, 5);
    expect(seen).toEqual(['fail', 'finish', 'dispatch', 'routes', 'debug']);
    await processor.stop();
  });
});
