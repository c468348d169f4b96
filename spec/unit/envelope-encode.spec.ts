import { Fingerprint, Message, MessageCommand, MessageResult, RpcCommand } from '../../lib';
import { encodeEnvelopeJson } from '../../lib/messages/encoder';

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

  it('envelope encode - the same bytes for any _reserved, name and type, past the string cache', () => {
    const hidden = {};
    Object.defineProperty(hidden, 'toJSON', { value: () => ({ from: 'toJSON' }), enumerable: false });
    const reserved: unknown[] = [{}, { trace: 'abc', n: [1] }, hidden, Object.create(null) as object];
    for (const value of reserved) {
      const body = stamped(new MessageCommand('echo', { a: 1 }), fingerprint);
      body['_reserved'] = value;
      expect(encodeEnvelopeJson(body, fingerprint, fingerprintJson)?.toString('utf8')).toBe(
        JSON.stringify(body),
      );
    }
    // More distinct strings than the quoted-string cache holds, some long, some to be escaped.
    for (let i = 0; i < 2_500; i++) {
      const name = i % 7 === 0 ? `long-${'x'.repeat(80)}-${i}` : `name "${i}" \u2028 ${'é'.repeat(i % 3)}`;
      const message = new Message({ type: `type-${i % 1_500}`, name, category: 'message' });
      const body = stamped(message, fingerprint);
      body['version'] = `v${i % 2_000}`;
      expect(encodeEnvelopeJson(body, fingerprint, fingerprintJson)?.toString('utf8')).toBe(
        JSON.stringify(body),
      );
    }
  });

  it('envelope encode - producers with different fingerprints sending the same command, interleaved', () => {
    const a = Object.freeze(new Fingerprint('a', 'application').asDict());
    const b = Object.freeze(new Fingerprint('b', 'application').asDict());
    for (let i = 0; i < 50; i++) {
      for (const [fp, version] of [
        [a, '2'],
        [b, '2'],
        [b, '3'],
      ] as const) {
        const body = stamped(new MessageCommand('same', { i }), fp);
        body['version'] = version;
        expect(encodeEnvelopeJson(body, fp, JSON.stringify(fp))?.toString('utf8')).toBe(JSON.stringify(body));
      }
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
