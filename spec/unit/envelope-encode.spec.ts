import { Fingerprint, Message, MessageCommand, MessageResult, RpcCommand } from '../../lib';
import { encodeEnvelopeJson } from '../../lib/encoder';

/** The producer's fast path must write exactly the bytes JSON.stringify writes. */
function stamped(message: Message<unknown>, fingerprint: Record<string, string>): Record<string, unknown> {
  message.body.fingerprint = fingerprint;
  return message.body as unknown as Record<string, unknown>;
}

describe('envelope encode fast path', () => {
  const fingerprint = Object.freeze(new Fingerprint('bench "quoted" é', 'application').asDict());
  const fingerprintJson = JSON.stringify(fingerprint);

  it('envelope encode - the same bytes as JSON.stringify for every message kind', () => {
    const bodies = [
      stamped(new MessageCommand('echo', { text: 'ünïcode \u2028 "q"', n: [1, 2.5, null] }), fingerprint),
      stamped(new RpcCommand('add', [2, 3]), fingerprint),
      stamped(new MessageCommand('none'), fingerprint),
      stamped(new Message({ type: 'status', name: null }), fingerprint),
      stamped(new MessageResult({ nested: { date: new Date(0) } }, 'ok'), fingerprint),
    ];
    for (const body of bodies) {
      const fast = encodeEnvelopeJson(body, fingerprint, fingerprintJson);
      expect(fast).toBeDefined();
      expect(fast?.toString('utf8')).toBe(JSON.stringify(body));
    }
  });

  it('envelope encode - falls back (undefined) for bodies it cannot reproduce exactly', () => {
    const other = { name: 'x' };
    const extraKey = { ...stamped(new MessageCommand('a'), fingerprint), extra: 1 };
    const reordered = { name: 'a', ...stamped(new MessageCommand('a'), fingerprint) };
    const otherFingerprint = stamped(new MessageCommand('a'), other);
    const undefinedContent = { ...stamped(new MessageCommand('a'), fingerprint), content: undefined };
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const circularContent = { ...stamped(new MessageCommand('a'), fingerprint), content: circular };
    const numericName = { ...stamped(new MessageCommand('a'), fingerprint), name: 7 };
    for (const body of [
      extraKey,
      reordered,
      otherFingerprint,
      undefinedContent,
      circularContent,
      numericName,
    ]) {
      expect(encodeEnvelopeJson(body, fingerprint, fingerprintJson)).toBeUndefined();
    }
  });
});
