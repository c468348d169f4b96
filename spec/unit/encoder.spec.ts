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
});
