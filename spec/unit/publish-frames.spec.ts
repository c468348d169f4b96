/**
 * The fast publish encoder against amqplib's own encoders: for every option set it covers, the
 * bytes must be exactly the ones amqplib would send, and they must decode back to the options.
 * What it does not cover must come back undefined (the caller then uses amqplib).
 */
import { dirname, join } from 'node:path';

import { FRAME_OVERHEAD, encodePublish } from '../../lib/transport/amqp/publish-frames';
import type { PublishOptions } from '../../lib/transport/types';

/** amqplib's own modules: its package exports only the API, so they are reached by path. */
const AMQPLIB = dirname(require.resolve('amqplib'));
/* eslint-disable @typescript-eslint/no-require-imports -- amqplib's encoders are not in its public API or types */
const defs = require(join(AMQPLIB, 'lib/defs')) as {
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(id: number, channel: number, fields: unknown): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: unknown): Buffer;
  decode(id: number, payload: Buffer): Record<string, unknown>;
};
const frame = require(join(AMQPLIB, 'lib/frame')) as {
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
};
const args = require(join(AMQPLIB, 'lib/api_args')) as {
  publish(exchange: string, routingKey: string, options?: unknown): Record<string, unknown>;
};
/* eslint-enable @typescript-eslint/no-require-imports */

const MAX_BODY = 131_072 - FRAME_OVERHEAD;

/** What amqplib 2 writes for the same publish (connection.sendMessage, single-chunk case). */
function amqplibBytes(
  channel: number,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: PublishOptions,
): Buffer {
  const fields = args.publish(exchange, routingKey, options);
  return Buffer.concat([
    defs.encodeMethod(defs.BasicPublish, channel, fields),
    defs.encodeProperties(defs.BasicProperties, channel, content.length, fields),
    frame.makeBodyFrame(channel, content),
  ]);
}

/** Splits frames: [type, channel, payload] each, checking the frame-end octets. */
function frames(bytes: Buffer): Array<[number, number, Buffer]> {
  const out: Array<[number, number, Buffer]> = [];
  let at = 0;
  while (at < bytes.length) {
    const size = bytes.readUInt32BE(at + 3);
    expect(bytes[at + 7 + size]).toBe(0xce);
    out.push([bytes[at] as number, bytes.readUInt16BE(at + 1), bytes.subarray(at + 7, at + 7 + size)]);
    at += 8 + size;
  }
  return out;
}

const ENVELOPE = Buffer.from(JSON.stringify({ type: 'command', name: 'echo', content: { text: 'héllo ✓' } }));

const CASES: ReadonlyArray<[string, PublishOptions]> = [
  ['no options', {}],
  [
    "postage's publish",
    {
      contentType: 'application/json',
      messageId: '0f8fad5b-d9cb-469f-a165-70867728950e',
      deliveryMode: 1,
      mandatory: true,
      type: 'command',
    },
  ],
  [
    "postage's RPC request",
    {
      contentType: 'application/json',
      messageId: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
      deliveryMode: 2,
      mandatory: true,
      type: 'rpc',
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: '16fd2706-8baf-433b-82eb-8c7fada847da',
      expiration: '30000',
    },
  ],
  [
    'every property it covers',
    {
      contentType: 'text/plain',
      contentEncoding: 'gzip',
      deliveryMode: 2,
      priority: 9,
      correlationId: 'c-1',
      replyTo: 'replies',
      expiration: '60000',
      messageId: 'm-1',
      timestamp: 1_764_500_000,
      type: 'status',
      userId: 'guest',
      appId: 'postage',
    },
  ],
  ['persistent: true', { persistent: true }],
  ['persistent: false wins over deliveryMode', { persistent: false, deliveryMode: 2 }],
  ['a numeric expiration', { expiration: 250 as unknown as string }],
  ['a timestamp above 2^32', { timestamp: 2 ** 40 + 12_345 }],
  ['UTF-8 strings', { messageId: 'идентификатор', appId: 'app-✓', type: 'tipo-ñ' }],
  ['null and undefined are absent', { contentType: undefined, priority: null } as unknown as PublishOptions],
];

describe('publish frames', () => {
  it.each(CASES)('publish frames - %s: the same bytes as amqplib', (_name, options) => {
    for (const [exchange, key] of [
      ['', 'queue-name'],
      ['bench.publish.x.31433.1764500000000.1', 'rk'],
      ['échange', 'clé.ключ'],
    ] as const) {
      const ours = encodePublish(7, exchange, key, ENVELOPE, options, MAX_BODY);
      expect(ours).toBeInstanceOf(Buffer);
      expect((ours as Buffer).equals(amqplibBytes(7, exchange, key, ENVELOPE, options))).toBe(true);
    }
  });

  it('publish frames - the header decodes back to the given properties', () => {
    const options = CASES[3]?.[1] as PublishOptions;
    const bytes = encodePublish(3, 'x', 'k', ENVELOPE, options, MAX_BODY) as Buffer;
    const [method, header, body] = frames(bytes);
    expect(method?.[0]).toBe(1);
    expect(header?.[0]).toBe(2);
    expect(body?.[0]).toBe(3);
    expect([method?.[1], header?.[1], body?.[1]]).toEqual([3, 3, 3]);
    const fields = defs.decode(defs.BasicPublish, (method?.[2] as Buffer).subarray(4));
    expect(fields).toMatchObject({ exchange: 'x', routingKey: 'k', mandatory: false, immediate: false });
    const headerPayload = header?.[2] as Buffer;
    expect(headerPayload.readUInt32BE(8)).toBe(ENVELOPE.length);
    const properties = defs.decode(defs.BasicProperties, headerPayload.subarray(12));
    expect(properties).toMatchObject({ ...options, headers: {} });
    expect((body?.[2] as Buffer).equals(ENVELOPE)).toBe(true);
  });

  it('publish frames - what it does not cover is left to amqplib', () => {
    const at = (content: Buffer, options: PublishOptions, exchange = 'x', key = 'k'): unknown =>
      encodePublish(1, exchange, key, content, options, MAX_BODY);
    expect(at(ENVELOPE, { headers: { 'x-a': 1 } })).toBeUndefined();
    expect(at(ENVELOPE, { CC: ['a'] } as PublishOptions)).toBeUndefined();
    expect(at(ENVELOPE, { BCC: 'b' } as PublishOptions)).toBeUndefined();
    expect(at(ENVELOPE, {}, 'x'.repeat(256))).toBeUndefined();
    expect(at(ENVELOPE, {}, 'x', 'é'.repeat(128))).toBeUndefined(); // 256 bytes in UTF-8
    expect(at(ENVELOPE, { messageId: 42 as unknown as string })).toBeUndefined();
    expect(at(ENVELOPE, { deliveryMode: 300 })).toBeUndefined();
    expect(at(ENVELOPE, { priority: 1.5 })).toBeUndefined();
    expect(at(ENVELOPE, { timestamp: -1 })).toBeUndefined();
    expect(at(Buffer.alloc(0), {})).toBeUndefined();
    expect(at(Buffer.alloc(MAX_BODY + 1), {})).toBeUndefined();
    expect(at('text' as unknown as Buffer, {})).toBeUndefined();
    // The largest body that fits one frame is still encoded, and amqplib agrees on it.
    const largest = Buffer.alloc(MAX_BODY, 7);
    expect((at(largest, {}) as Buffer).equals(amqplibBytes(1, 'x', 'k', largest, {}))).toBe(true);
  });

  it('publish frames - changing the content after encoding does not change the frames', () => {
    const content = Buffer.from(ENVELOPE);
    const bytes = encodePublish(1, 'x', 'k', content, {}, MAX_BODY) as Buffer;
    const before = Buffer.from(bytes);
    content.fill(0);
    expect(bytes.equals(before)).toBe(true);
  });
});
