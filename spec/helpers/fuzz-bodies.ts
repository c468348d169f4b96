/**
 * The bad bodies the fuzz specs feed a processor (fast-check): random bytes, truncated JSON,
 * envelopes with wrong types, very long strings, deep nesting, and valid envelopes with any
 * parameters. One arbitrary, shared by the in-process (spec/unit) and RabbitMQ (spec/broker) runs.
 */
import fc from 'fast-check';

import { MessageHandler, MessageProcessor } from '../../lib';

const envelope = (content: unknown) => ({
  type: 'command',
  category: 'message',
  name: 'n',
  version: '1',
  content,
  fingerprint: { name: 'fuzz', type: 'test', pid: '1', host: 'h', user: 'u', vhost: '/' },
});

/** An envelope whose parameters nest `depth` levels deep, built as text (too deep for stringify). */
function deep(depth: number): Buffer {
  const text = JSON.stringify(envelope({ parameters: '@' }));
  return Buffer.from(text.replace('"@"', `${'{"a":['.repeat(depth)}0${']}'.repeat(depth)}`));
}

export const fuzzBodies: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
  fc.tuple(fc.anything(), fc.nat()).map(([content, cut]) => {
    const text = JSON.stringify(envelope(content)) ?? '';
    return Buffer.from(text.slice(0, cut % Math.max(1, text.length)));
  }),
  fc
    .record({
      type: fc.anything(),
      category: fc.anything(),
      name: fc.anything(),
      version: fc.anything(),
      content: fc.anything(),
      fingerprint: fc.anything(),
    })
    .map((body) => Buffer.from(JSON.stringify(body) ?? 'null')),
  fc.nat({ max: 200_000 }).map((n) => Buffer.from(JSON.stringify(envelope({ parameters: 'x'.repeat(n) })))),
  fc.nat({ max: 20_000 }).map(deep),
  fc.anything().map((content) => Buffer.from(JSON.stringify(envelope({ parameters: content })) ?? 'null')),
);

/** A processor with one handler (command `n`) that counts what it handled. */
export class FuzzSink extends MessageProcessor {
  handled = 0;
  @MessageHandler('command', 'n') n(content: { parameters: unknown }) {
    if (content.parameters !== Symbol.for('never')) this.handled++;
  }
}
