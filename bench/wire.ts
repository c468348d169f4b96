/**
 * What the benchmark's messages are, for postage and for every client it is compared with: the
 * payload, the postage envelope a thin wrapper builds per message, the AMQP properties postage
 * sends, and the check of a reply. spec/broker/bench-parity.spec.ts holds the wrappers to what
 * postage puts on the wire (body bytes and properties), so that the peers cannot drift from it.
 */
import { randomUUID } from 'node:crypto';

import type { Options } from 'amqplib';

import { Fingerprint, GenericProducer, type ExchangeDefinition, type FingerprintDict } from '../lib';

/** The producer the cases use: `message_bench(...)` and `rpc_bench(...)`. */
export class BenchProducer extends GenericProducer<{ bench: unknown }> {}

export const FINGERPRINT = new Fingerprint('bench', 'application');

/** The fingerprint on the wire: postage's producer sends its fingerprint's dictionary. */
const FINGERPRINT_DICT: FingerprintDict = FINGERPRINT.asDict();

/** The RPC timeout of postage's cases (seconds), and the TTL every other client's requests carry (ms). */
export const RPC_TIMEOUT_S = 10;
export const RPC_TIMEOUT_MS = String(RPC_TIMEOUT_S * 1000);

/** A plain, non-durable direct exchange (what the responder declares too). */
export function benchExchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: false, auto_delete: false };
}

/** The parameters of every benchmark message: a small order (envelope ~300 B). */
export function payload(i: number): Record<string, unknown> {
  return { order: i, sku: 'A-1042', qty: 3, price: 19.9, tags: ['bench', 'postage'] };
}

/** The parameters of the message-size curve: the small order plus a blob of `bytes` characters. */
export function sizedPayload(i: number, blob: string): Record<string, unknown> {
  return { order: i, sku: 'A-1042', qty: 3, price: 19.9, tags: ['bench', 'postage'], blob };
}

/** A postage envelope's category: a plain message or an RPC request. */
export type Category = 'message' | 'rpc';

/**
 * The envelope postage sends for `message_bench(parameters)` / `rpc_bench(parameters)`, built
 * as a thin wrapper would: one object literal and one `JSON.stringify` per message.
 */
export function envelopeJson(category: Category, parameters: unknown): string {
  return JSON.stringify({
    type: 'command',
    name: 'bench',
    category,
    version: '2',
    fingerprint: FINGERPRINT_DICT,
    content: { parameters },
    _reserved: {},
  });
}

/** {@link envelopeJson} as the bytes amqplib publishes. */
export function envelope(category: Category, parameters: unknown): Buffer {
  return Buffer.from(envelopeJson(category, parameters));
}

/** Pre-made bytes for the reference rows (built once): the envelope of `payload(0)`. */
export function envelopeBytes(rpc: boolean): Buffer {
  return envelope(rpc ? 'rpc' : 'message', payload(0));
}

/** What a thin wrapper checks of an RPC reply: a postage result envelope whose result is a success. */
export function checkReply(text: string): unknown {
  return checkResult(JSON.parse(text));
}

/** {@link checkReply} of a reply the client parsed already; the result's value. */
export function checkResult(body: unknown): unknown {
  const content = (body as { content?: { type?: unknown; value?: unknown } } | null)?.content;
  if (content?.type !== 'success') throw new Error(`rpc failed: ${JSON.stringify(body)}`);
  return content.value;
}

/**
 * The properties of a publish, built per message as a user's own code would. `same`: what
 * postage sends for `message_bench()`: its content type, a fresh message id (what consumers
 * deduplicate on), transient delivery, mandatory and the message type. `bare`: the same without
 * the message id, for reference only: RabbitMQ 3.10 takes longer over a message whose properties
 * are larger (a 36-character id costs it ~10 % of its publish rate on this machine, in any
 * property), which is the broker's cost of the message, not the client's.
 */
export function rawPublishOptions(kind: 'same' | 'bare'): () => Options.Publish {
  return kind === 'same'
    ? () => ({
        contentType: 'application/json',
        messageId: randomUUID(),
        deliveryMode: 1,
        mandatory: true,
        type: 'command',
      })
    : () => ({ contentType: 'application/json', deliveryMode: 1, mandatory: true, type: 'command' });
}

/**
 * The properties of an RPC request, per call. `same`: what postage sends for `rpc_bench()`
 * with a 10 s timeout: content type, one fresh id as message and correlation id, transient,
 * mandatory (an unroutable request comes back at once), the type, direct reply-to and the
 * timeout as per-message TTL (a request nobody took in time is not served late). `bare`: only
 * content type, reply-to and correlation id, for reference.
 */
export function rawRequestOptions(kind: 'same' | 'bare'): (id: string) => Options.Publish {
  return kind === 'same'
    ? (id) => ({
        contentType: 'application/json',
        messageId: id,
        deliveryMode: 1,
        mandatory: true,
        type: 'command',
        replyTo: 'amq.rabbitmq.reply-to',
        correlationId: id,
        expiration: RPC_TIMEOUT_MS,
      })
    : (id) => ({ contentType: 'application/json', replyTo: 'amq.rabbitmq.reply-to', correlationId: id });
}
