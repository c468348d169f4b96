import Ajv from 'ajv';

import { ErrorCode, ValidationError, assertEnvelope, isEnvelope } from '../../lib';
import { envelopeSchema, isWellFormedEnvelope } from '../../lib/messages/schema';

/**
 * The receive path checks envelopes by hand and asks ajv only on a rejection: the hand-written
 * check must give the schema's verdict for every body, never accept one the schema refuses.
 */
const ajvVerdict = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true }).compile(envelopeSchema);

const valid = {
  type: 'command',
  name: 'echo',
  category: 'message',
  version: '2',
  fingerprint: { name: 'a', type: 'application' },
  content: { parameters: { text: 'hi' } },
  _reserved: {},
};

const FIELDS = ['type', 'name', 'category', 'version', 'fingerprint', 'content', '_reserved', 'extra'];
const MISSING = Symbol('missing');
const VALUES: unknown[] = [
  MISSING,
  undefined,
  null,
  '',
  'x',
  'message',
  'rpc',
  'MESSAGE',
  0,
  1.5,
  true,
  [],
  ['message'],
  {},
  { a: 1 },
  new Date(0),
  Object.create(null) as object,
];

function withField(base: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  const body = { ...base };
  if (value === MISSING) delete body[field];
  else body[field] = value;
  return body;
}

describe('envelope check', () => {
  it('envelope check - the hand-written check gives ajv’s verdict on every one- and two-field variation', () => {
    let accepted = 0;
    let refused = 0;
    for (const field of FIELDS) {
      for (const value of VALUES) {
        const once = withField(valid, field, value);
        for (const other of FIELDS) {
          for (const second of [MISSING, null, 'rpc', 7, {}, []]) {
            const body = other === field ? once : withField(once, other, second);
            const expected = ajvVerdict(body) === true;
            expect([field, value, other, second, isWellFormedEnvelope(body)]).toEqual([
              field,
              value,
              other,
              second,
              expected,
            ]);
            expect(isEnvelope(body)).toBe(expected);
            if (expected) accepted++;
            else refused++;
          }
        }
      }
    }
    // Both verdicts were exercised, many times.
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  it('envelope check - the fast path refuses each kind of invalid envelope, and the error is typed', () => {
    const invalid: unknown[] = [
      null,
      undefined,
      'text',
      42,
      [],
      [valid],
      {},
      withField(valid, 'type', MISSING),
      withField(valid, 'type', 3),
      withField(valid, 'name', MISSING),
      withField(valid, 'name', undefined),
      withField(valid, 'name', 1),
      withField(valid, 'category', 'event'),
      withField(valid, 'category', null),
      withField(valid, 'content', MISSING),
      withField(valid, 'content', null),
      withField(valid, 'content', []),
      withField(valid, 'content', 'text'),
      withField(valid, 'version', 2),
      withField(valid, 'version', null),
      withField(valid, 'fingerprint', 'fp'),
      withField(valid, 'fingerprint', []),
      withField(valid, '_reserved', null),
      withField(valid, '_reserved', [1]),
    ];
    for (const body of invalid) {
      expect(ajvVerdict(body)).toBe(false);
      expect(isWellFormedEnvelope(body)).toBe(false);
      let caught: unknown;
      try {
        assertEnvelope(body);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      expect(caught).toMatchObject({ code: ErrorCode.INVALID_MESSAGE });
      expect((caught as ValidationError).issues.length).toBeGreaterThan(0);
    }
  });

  it('envelope check - what JSON.parse makes of a well-formed envelope passes the fast path', () => {
    const decoded: unknown = JSON.parse(JSON.stringify(valid));
    expect(isWellFormedEnvelope(decoded)).toBe(true);
    expect(isWellFormedEnvelope({ type: 't', name: null, category: 'rpc', content: {} })).toBe(true);
  });
});
