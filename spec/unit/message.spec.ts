import {
  ErrorCode,
  Fingerprint,
  Message,
  MessageCommand,
  MessageResult,
  MessageResultError,
  MessageResultException,
  MessageStatus,
  RpcCommand,
  RpcError,
  ValidationError,
  assertEnvelope,
} from '../../lib';

const empty = {
  type: 'none',
  name: 'none',
  category: 'message',
  version: '2',
  fingerprint: {},
  content: {},
  _reserved: {},
};

describe('message', () => {
  it("message - the base message has postage's dictionary layout", () => {
    expect(new Message().body).toEqual(empty);
    expect(Message.fromArgs([1, 'str'], { values: [1, 2] }).body.content).toEqual({
      args: [1, 'str'],
      kwds: { values: [1, 2] },
    });
    expect(Message.fromArgs().body.content).toEqual({});
  });

  it('message - commands carry {parameters}; rpc commands have category rpc', () => {
    expect(new MessageCommand('sum', { a: 5, b: 6 }).body).toEqual({
      ...empty,
      type: 'command',
      name: 'sum',
      content: { parameters: { a: 5, b: 6 } },
    });
    expect(new RpcCommand('sum', [1, 2]).body).toEqual({
      ...empty,
      type: 'command',
      name: 'sum',
      category: 'rpc',
      content: { parameters: [1, 2] },
    });
  });

  it('message - commands built without parameters do not share one mutable dictionary', () => {
    const a = new MessageCommand('a');
    const b = new MessageCommand('b');
    (a.parameters as Record<string, unknown>)['x'] = 1;
    expect(b.parameters).toEqual({});
  });

  it('message - status messages carry the status as their name', () => {
    expect(new MessageStatus('online').body).toEqual({ ...empty, type: 'status', name: 'online' });
  });

  it('message - results carry {type, value, message}', () => {
    expect(new MessageResult(42, 'fine').body).toEqual({
      ...empty,
      type: 'result',
      content: { type: 'success', value: 42, message: 'fine' },
    });
    expect(new MessageResultError('test_message').body.content).toEqual({
      type: 'error',
      value: null,
      message: 'test_message',
    });
    expect(new MessageResultException('KeyError', 'no key').body.content).toEqual({
      type: 'exception',
      value: 'KeyError',
      message: 'no key',
    });
  });

  it('message - ok is the truth value: false for errors and exceptions', () => {
    expect(new MessageResult(0).ok).toBe(true);
    expect(new MessageResultError('x').ok).toBe(false);
    expect(new MessageResultException('E', 'x').ok).toBe(false);
    expect(new MessageCommand('x').ok).toBe(true);
  });

  it('message - unwrap gives the value or throws a typed error', () => {
    expect(new MessageResult({ a: 1 }).unwrap()).toEqual({ a: 1 });
    expect(() => new MessageResultError('bad input').unwrap()).toThrow(
      expect.objectContaining({ code: ErrorCode.RPC_ERROR }),
    );
    let caught: unknown;
    try {
      new MessageResultException('ZeroDivisionError', 'division by zero').unwrap();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RpcError);
    expect(caught).toMatchObject({ code: ErrorCode.RPC_EXCEPTION });
    expect((caught as Error).message).toContain('ZeroDivisionError');
  });

  it('message - setFingerprint merges a fingerprint into the body', () => {
    const m = new MessageCommand('x').setFingerprint(
      new Fingerprint('me', 'app', { pid: 1, host: 'h', user: 'u', vhost: '/' }),
    );
    expect(m.body.fingerprint).toEqual({
      name: 'me',
      type: 'app',
      pid: '1',
      host: 'h',
      user: 'u',
      vhost: '/',
    });
    m.setFingerprint({ name: 'other' });
    expect(m.body.fingerprint['name']).toBe('other');
    expect(m.body.fingerprint['pid']).toBe('1');
  });

  it('message - equals compares bodies', () => {
    expect(new MessageCommand('a', { x: [1] }).equals(new MessageCommand('a', { x: [1] }))).toBe(true);
    expect(new MessageCommand('a', { x: [1] }).equals(new MessageCommand('a', { x: [2] }))).toBe(false);
  });

  it('message - a received body becomes the right class, fingerprint and extra keys kept', () => {
    const fingerprint = { name: 'py', type: 'app', pid: '1', host: 'h', user: 'u', vhost: '/' };
    const cases: Array<[object, new (...args: never[]) => Message<unknown>]> = [
      [
        { ...empty, type: 'command', name: 'echo', content: { parameters: 'hi' }, fingerprint },
        MessageCommand,
      ],
      [
        { ...empty, type: 'command', name: 'echo', category: 'rpc', content: { parameters: 'hi' } },
        RpcCommand,
      ],
      [{ ...empty, type: 'status', name: 'online' }, MessageStatus],
      [
        { ...empty, type: 'result', content: { type: 'success', value: 1, message: '' }, fingerprint },
        MessageResult,
      ],
      [
        { ...empty, type: 'result', content: { type: 'error', value: null, message: 'e' } },
        MessageResultError,
      ],
      [
        { ...empty, type: 'result', content: { type: 'exception', value: 'E', message: 'm' } },
        MessageResultException,
      ],
      [{ ...empty, type: 'log', name: 'line', content: { text: 't' }, extra: 1 }, Message],
    ];
    for (const [body, cls] of cases) {
      assertEnvelope(body);
      const message = Message.fromBody(body);
      expect(message).toBeInstanceOf(cls);
      expect(message.body).toEqual(body);
    }
    const result = Message.fromBody({
      ...empty,
      type: 'result',
      category: 'message',
      content: { type: 'success', value: 5, message: '' },
    });
    expect((result as MessageResult).value).toBe(5);
  });

  it('message - a body that is not a postage envelope fails validation with a typed error', () => {
    const bad: unknown[] = [
      null,
      42,
      'text',
      [],
      {},
      { ...empty, category: 'other' },
      { ...empty, type: 5 },
      { ...empty, content: 'not an object' },
      { type: 'command', name: 'x', category: 'message' },
    ];
    for (const value of bad) {
      let caught: unknown;
      try {
        assertEnvelope(value);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      expect(caught).toMatchObject({ code: ErrorCode.INVALID_MESSAGE });
      expect((caught as ValidationError).issues.length).toBeGreaterThan(0);
    }
    // Foreign producers may leave out version, fingerprint and _reserved.
    expect(() =>
      assertEnvelope({ type: 'command', name: 'x', category: 'message', content: {} }),
    ).not.toThrow();
  });
});
