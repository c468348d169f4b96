import { ErrorCode, JsonEncoder, ValidationError, jsonEncoder } from '../../lib';

describe('encoder', () => {
  it('encoder - JSON round trip with content type application/json', () => {
    const value = { a: 1, b: ['x', null], c: { d: true } };
    expect(jsonEncoder.contentType).toBe('application/json');
    expect(jsonEncoder.decode(jsonEncoder.encode(value))).toEqual(value);
    expect(new JsonEncoder().encode('é').toString('utf8')).toBe('"é"');
  });

  it('encoder - a body that does not decode is a typed error, not a crash', () => {
    for (const bad of ['{not json', '', '\u0000\u0001', '{"a":1']) {
      let caught: unknown;
      try {
        jsonEncoder.decode(Buffer.from(bad));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      expect(caught).toMatchObject({ code: ErrorCode.DECODE_FAILED });
    }
  });

  it('encoder - a value that does not encode is a typed error', () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    for (const bad of [circular, { n: 10n }, undefined, () => 1]) {
      expect(() => jsonEncoder.encode(bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.ENCODE_FAILED }),
      );
    }
  });

  describe('envelope decode', () => {
    const fingerprint = (i: number): Record<string, string> => ({
      name: `svc-${i}`,
      type: 'application',
      pid: String(1000 + i),
      host: 'h é "q"',
      user: 'u',
      vhost: '/',
    });
    const envelope = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      type: 'command',
      name: i % 2 === 0 ? 'echo' : null,
      category: 'message',
      version: '2',
      fingerprint: fingerprint(i % 11),
      content: { parameters: { n: i, text: `t${i}` } },
      _reserved: {},
      ...extra,
    });
    /** Same values and the same key order as JSON.parse gives. */
    const expectParsed = (decoded: unknown, text: string): void => {
      expect(JSON.stringify(decoded)).toBe(JSON.stringify(JSON.parse(text)));
      expect(decoded).toEqual(JSON.parse(text));
    };

    it('encoder - envelopes decode exactly as JSON.parse, from many producers and repeated ones', () => {
      const encoder = new JsonEncoder();
      for (let i = 0; i < 600; i++) {
        const text = JSON.stringify(envelope(i < 300 ? i % 3 : i));
        expectParsed(encoder.decode(Buffer.from(text)), text);
      }
    });

    it('encoder - a later fingerprint key, escaped or not, or foreign layouts decode as JSON.parse', () => {
      const encoder = new JsonEncoder();
      const known = JSON.stringify(envelope(0));
      encoder.decode(Buffer.from(known)); // learned
      const texts = [
        known.slice(0, -1) + ',"fingerprint":0}',
        known.slice(0, -1) + ',"fingerprin\\u0074":{"x":"y"}}',
        known.slice(0, -1) + ',"content":{"p":"\\u00e9"},"type":"status"}',
        known.replace('"content":', '"a":1,"content":'),
        JSON.stringify(envelope(0), null, 1),
        JSON.stringify(envelope(0, { content: { big: 'x'.repeat(20_000) } })),
        JSON.stringify({ ...envelope(0), fingerprint: { name: 1, nested: { a: 'b' } } }),
        JSON.stringify([envelope(0)]),
        '"just a string"',
        '42',
        'null',
      ];
      for (const text of texts) {
        for (let round = 0; round < 20; round++) expectParsed(encoder.decode(Buffer.from(text)), text);
      }
    });

    it('encoder - each decoded envelope has its own fingerprint object', () => {
      const encoder = new JsonEncoder();
      const text = JSON.stringify(envelope(4));
      const first = encoder.decode(Buffer.from(text)) as { fingerprint: Record<string, string> };
      const second = encoder.decode(Buffer.from(text)) as { fingerprint: Record<string, string> };
      second.fingerprint['name'] = 'changed';
      const third = encoder.decode(Buffer.from(text)) as { fingerprint: Record<string, string> };
      expect(first.fingerprint['name']).toBe('svc-4');
      expect(third.fingerprint['name']).toBe('svc-4');
      expect(third.fingerprint).not.toBe(first.fingerprint);
    });

    it('encoder - a known envelope beginning with a broken rest is still a typed DECODE_FAILED', () => {
      const encoder = new JsonEncoder();
      const text = JSON.stringify(envelope(6));
      encoder.decode(Buffer.from(text));
      const cut = text.indexOf('"content"');
      for (const bad of [text.slice(0, cut + 5), text.slice(0, -1), text + 'x', text.slice(0, cut) + '}}']) {
        let caught: unknown;
        try {
          encoder.decode(Buffer.from(bad));
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(ValidationError);
        expect(caught).toMatchObject({ code: ErrorCode.DECODE_FAILED });
        let native = '';
        try {
          JSON.parse(bad);
        } catch (err) {
          native = (err as Error).message;
        }
        // The error names what JSON.parse found in the whole text, not in a rewritten one.
        expect((caught as ValidationError).message).toContain(native);
      }
    });
  });
});
