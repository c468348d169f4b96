/**
 * The copies postage publishes (dead letters, counted requeues) as pure logic: which
 * properties they keep, drop or move to x-postage-original-* headers, how the size of their
 * header table is computed (checked against amqplib's own encoder) and when one is refused.
 */
import path from 'node:path';

import { ErrorCode } from '../../lib';
import {
  MAX_COPY_HEADERS_BYTES,
  copyRefusal,
  deadLetterProperties,
  deliveryNumber,
  requeueProperties,
  tableSize,
} from '../../lib/processor/poison';
import type { MessageProperties, TransportMessage } from '../../lib/transport/types';

/** amqplib's field-table encoder (what a publish really writes; not among its exports). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const codec = require(path.join(path.dirname(require.resolve('amqplib')), 'lib/codec.js')) as {
  encodeTable(buffer: Buffer, table: Record<string, unknown>, offset: number): number;
};

function message(properties: MessageProperties): TransportMessage {
  return {
    content: Buffer.from('{}'),
    fields: { deliveryTag: 1, redelivered: false, exchange: 'ex', routingKey: 'rk' },
    properties,
  };
}

/** Every property RabbitMQ can deliver, as amqplib decodes them. */
const everything: MessageProperties = {
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  headers: {
    CC: ['other-key'],
    'x-delivery-count': 4,
    'x-death': [{ count: 1, reason: 'rejected', queue: 'q0' }],
    app: 'kept',
  },
  deliveryMode: 2,
  priority: 5,
  correlationId: 'c-1',
  replyTo: 'amq.rabbitmq.reply-to.g2dkABFyYWJiaXRAbG9jYWxob3N0AAAC',
  expiration: '500',
  messageId: 'm-1',
  timestamp: 1_700_000_000,
  type: 'command',
  userId: 'alice',
  appId: 'billing',
};

describe('poison - copies', () => {
  test('copy - a dead letter drops expiration, a foreign user_id, CC and x-delivery-count, and records the originals', () => {
    const options = deadLetterProperties(
      message(everything),
      'q',
      'HANDLER_FAILED',
      new Error('x'),
      3,
      'guest',
    );
    expect(options.expiration).toBeUndefined();
    expect(options.userId).toBeUndefined();
    expect(options.headers).toEqual({
      app: 'kept',
      // The broker's x-death history, in postage's own header (3.13+ ignores a client's x-death).
      'x-postage-deaths': [{ count: 1, reason: 'rejected', queue: 'q0' }],
      'x-postage-reason': 'HANDLER_FAILED',
      'x-postage-error': 'Error: x',
      'x-postage-deliveries': 3,
      'x-postage-queue': 'q',
      'x-postage-exchange': 'ex',
      'x-postage-routing-key': 'rk',
      'x-postage-original-expiration': '500',
      'x-postage-original-user-id': 'alice',
      'x-postage-original-cc': ['other-key'],
    });
    // What the broker does not act on stays as it was.
    expect(options).toMatchObject({
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
      priority: 5,
      correlationId: 'c-1',
      replyTo: everything.replyTo,
      messageId: 'm-1',
      timestamp: 1_700_000_000,
      type: 'command',
      appId: 'billing',
      mandatory: true,
    });
    // The original is untouched.
    expect(everything.headers?.['CC']).toEqual(['other-key']);
  });

  test("copy - the processor's own user_id is kept (the broker accepts it); a counted requeue keeps expiration", () => {
    const own = deadLetterProperties(
      message({ ...everything, userId: 'guest' }),
      'q',
      'R',
      undefined,
      1,
      'guest',
    );
    expect(own.userId).toBe('guest');
    expect(own.headers?.['x-postage-original-user-id']).toBeUndefined();
    const requeue = requeueProperties(message(everything), 2, 'guest');
    expect(requeue.expiration).toBe('500');
    expect(requeue.userId).toBeUndefined();
    expect(requeue.headers).toMatchObject({
      'x-postage-deliveries': 2,
      'x-postage-original-user-id': 'alice',
      'x-postage-original-cc': ['other-key'],
    });
    expect(requeue.headers?.['CC']).toBeUndefined();
    expect(requeue.headers?.['x-delivery-count']).toBeUndefined();
    expect(requeue.headers?.['x-postage-original-expiration']).toBeUndefined();
  });

  test('copy - a message without properties gets a message id and nothing else', () => {
    const options = deadLetterProperties(message({}), 'q', 'R', undefined, 1, 'guest');
    expect(options.messageId).toEqual(expect.any(String));
    expect(Object.keys(options.headers ?? {}).sort()).toEqual([
      'x-postage-deliveries',
      'x-postage-exchange',
      'x-postage-queue',
      'x-postage-reason',
      'x-postage-routing-key',
    ]);
  });

  test('delivery count - x-delivery-count counts on a quorum (or unknown) queue, not on a known classic one', () => {
    // One delivery of an earlier copy, four returns of this one: this is the sixth delivery.
    const properties = { headers: { 'x-delivery-count': 4, 'x-postage-deliveries': 1 } };
    expect(deliveryNumber(properties, true)).toBe(6);
    expect(deliveryNumber(properties, undefined)).toBe(6);
    expect(deliveryNumber(properties, false)).toBe(2);
    expect(deliveryNumber({}, false)).toBe(1);
  });
});

describe('poison - header table size', () => {
  const tables: Array<Record<string, unknown>> = [
    {},
    { s: 'text', e: '', u: 'é漢字' },
    { b: true, f: false, n: null, skipped: undefined },
    {
      i8: 127,
      i8n: -128,
      i16: 300,
      i16n: -32768,
      i32: 70_000,
      i32n: -(2 ** 31),
      i64: 2 ** 40,
      i64n: -(2 ** 40),
    },
    { d: 1.5, dn: -0.25, huge: 2 ** 63, big: 2 ** 52 + 0.5 },
    { buf: Buffer.from([1, 2, 3]), arr: [1, 'two', [3], { four: 4 }, null, true] },
    { nested: { deeper: { deepest: 'x' } } },
    {
      ts: { '!': 'timestamp', value: 1_700_000_000 },
      dec: { '!': 'decimal', value: { places: 2, digits: 1234 } },
      fl: { '!': 'float', value: 1.5 },
      ui: { '!': 'uint32', value: 4_000_000_000 },
    },
    { 'x-death': [{ count: 1, reason: 'rejected', queue: 'q', time: { '!': 'timestamp', value: 1 } }] },
  ];

  test.each(tables.map((t, i) => [i, t] as const))(
    'size - table %i takes what amqplib encodes',
    (_i, table) => {
      const buffer = Buffer.alloc(MAX_COPY_HEADERS_BYTES);
      expect(tableSize(table)).toBe(codec.encodeTable(buffer, table, 0));
    },
  );

  test('size - what amqplib cannot encode is NaN (ENCODE_FAILED), a table past 64 KiB MESSAGE_TOO_LARGE', () => {
    expect(tableSize({ n: Number.NaN })).toBeNaN();
    expect(tableSize({ a: [undefined] })).toBeNaN();
    expect(tableSize({ b: 10n })).toBeNaN();
    expect(tableSize({ ['k'.repeat(256)]: 1 })).toBeNaN();
    expect(copyRefusal({ headers: { b: 10n } })?.code).toBe(ErrorCode.ENCODE_FAILED);
    // 4 + (1 + 1) + (1 + 4 + n) bytes: the largest value that fits, and one byte more.
    const fits = MAX_COPY_HEADERS_BYTES - 11;
    expect(copyRefusal({ headers: { x: 'a'.repeat(fits) } })).toBeUndefined();
    expect(copyRefusal({ headers: { x: 'a'.repeat(fits + 1) } })?.code).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    // amqplib agrees on that boundary.
    expect(() =>
      codec.encodeTable(Buffer.alloc(MAX_COPY_HEADERS_BYTES), { x: 'a'.repeat(fits) }, 0),
    ).not.toThrow();
    expect(() =>
      codec.encodeTable(Buffer.alloc(MAX_COPY_HEADERS_BYTES), { x: 'a'.repeat(fits + 1) }, 0),
    ).toThrow(RangeError);
  });
});
