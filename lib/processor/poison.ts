/**
 * Poison messages: the dead-letter exchange and queue of a processor, quorum queues, and the
 * delivery count that bounds how often one message is handled.
 */
import { createHash } from 'node:crypto';

import { v4 as uuid } from 'uuid';

import type { Connection } from '../connection/connection';
import type { Eqk, QueueFlags, QueueSpec } from '../connection/consumer';
import { ErrorCode, PostageError } from '../errors';
import type { MessageProperties, PublishOptions, TransportMessage } from '../transport/types';

/** Header counting deliveries on classic queues (quorum queues have x-delivery-count). */
export const DELIVERIES_HEADER = 'x-postage-deliveries';
/** Header of a dead letter: why it was dead-lettered (e.g. HANDLER_FAILED, DELIVERY_LIMIT). */
export const REASON_HEADER = 'x-postage-reason';
/** Header of a dead letter: the error (name: message) that led to it, when there was one. */
export const ERROR_HEADER = 'x-postage-error';
/** Header of a dead letter: the queue it was consumed from. */
export const QUEUE_HEADER = 'x-postage-queue';
/** Header of a copy requeued (or dead-lettered) by postage: the exchange it was first published to. */
export const EXCHANGE_HEADER = 'x-postage-exchange';
/** Header of a copy requeued (or dead-lettered) by postage: the routing key it was first published with. */
export const ROUTING_KEY_HEADER = 'x-postage-routing-key';
/**
 * Header of a dead letter: the original's `expiration`. The dead letter has none (it would
 * expire out of the dead-letter queue), as RabbitMQ's own dead-lettering keeps it in x-death's
 * `original-expiration` only.
 */
export const ORIGINAL_EXPIRATION_HEADER = 'x-postage-original-expiration';
/**
 * Header of a copy: the original's `user_id` when it is not the processor's own user (the
 * broker refuses a publish whose user_id is not the publishing user's).
 */
export const ORIGINAL_USER_ID_HEADER = 'x-postage-original-user-id';
/** Header of a copy: the original's `CC` routing keys (routed by them, the copy would reach those queues again). */
export const ORIGINAL_CC_HEADER = 'x-postage-original-cc';
/**
 * Header of a copy: the broker's x-death entries the original carried (newest first), then
 * those of the copies before it, one entry per queue and reason. The copy carries no x-death
 * of its own: since 3.13 RabbitMQ ignores an x-death a client publishes (4.0 writes only its own
 * history when it dead-letters the copy; 3.10 continued it), so the history travels here.
 */
export const DEATHS_HEADER = 'x-postage-deaths';
/** The broker's dead-letter headers: a copy leaves them out (its x-death goes to {@link DEATHS_HEADER}). */
const DEATH_HEADERS = [
  'x-death',
  'x-first-death-reason',
  'x-first-death-queue',
  'x-first-death-exchange',
  'x-last-death-reason',
  'x-last-death-queue',
  'x-last-death-exchange',
] as const;
/**
 * The largest header table a copy may have, in encoded bytes: amqplib encodes a table in a
 * 64 KiB buffer (RabbitMQ's default frame_max, 128 KiB, holds more). A larger copy is not made.
 */
export const MAX_COPY_HEADERS_BYTES = 65_536;

/** Where a processor dead-letters. */
export interface DeadLetterOptions {
  /** The dead-letter exchange (fanout, durable). @default '<first queue>.dlx' */
  exchange?: string;
  /** The queue bound to it that keeps dead letters (durable). @default '<first queue>.dlq' */
  queue?: string;
}

/** Default bound on deliveries of one message. */
export const DEFAULT_MAX_DELIVERIES = 10;

/** The dead-letter settings of a processor, resolved (`processor.deadLetter`). */
export interface DeadLetterTarget {
  readonly exchange: string;
  readonly queue: string | undefined;
}

/** How a queue of a processor settles: where it dead-letters, whether it is a quorum queue. @internal */
export interface QueueRules {
  readonly deadLetterExchange: string | undefined;
  /**
   * True for a quorum queue (the broker counts returns in x-delivery-count), false for one
   * postage declares without a queue type, undefined when unknown (a passive declaration).
   */
  readonly quorum: boolean | undefined;
  /** A quorum queue's declared `x-delivery-limit` (undefined: the broker's default applies). */
  readonly deliveryLimit: number | undefined;
}

/**
 * Whether a requeue may be a plain reject with requeue, counted by the broker (x-delivery-count):
 * only on a quorum queue whose declared delivery limit cannot end the message before
 * `maxDeliveries`. Otherwise (classic queues; quorum queues without a declared limit, where
 * RabbitMQ 4.0 dead-letters or drops after 20 returns; queues declared passively) postage
 * republishes a counted copy. @internal
 */
export function brokerCountsRequeues(rules: QueueRules | undefined, maxDeliveries: number): boolean {
  return rules?.quorum === true && rules.deliveryLimit !== undefined && rules.deliveryLimit >= maxDeliveries;
}

/**
 * Adds the processor's queue arguments to its bindings: `x-dead-letter-exchange`, and for
 * quorum queues `x-queue-type` and `x-delivery-limit` (quorum queues are durable). Explicit
 * queue arguments win. @internal
 */
export function applyQueueRules(
  eqk: Eqk,
  deadLetter: DeadLetterTarget | undefined,
  quorum: boolean,
  maxDeliveries: number,
): Eqk {
  if (deadLetter === undefined && !quorum) return eqk;
  const extra: Record<string, unknown> = {};
  if (deadLetter !== undefined) extra['x-dead-letter-exchange'] = deadLetter.exchange;
  if (quorum) {
    extra['x-queue-type'] = 'quorum';
    // The broker's backstop for what postage's counting never sees (a process crashing mid-handler).
    extra['x-delivery-limit'] = maxDeliveries;
  }
  return eqk.map(([exchange, pairs]) => [
    exchange,
    pairs.map(([queue, key]): readonly [QueueSpec, string] => {
      const spec = typeof queue === 'string' ? { name: queue, flags: {} as QueueFlags } : queue;
      const flags: QueueFlags = {
        ...spec.flags,
        ...(quorum ? { durable: true, exclusive: false, autoDelete: false, auto_delete: false } : {}),
        arguments: { ...extra, ...spec.flags?.arguments },
      };
      return [{ name: spec.name, flags }, key];
    }),
  ]);
}

/** The rules of each named queue of the bindings. @internal */
export function queueRules(eqk: Eqk): Map<string, QueueRules> {
  const rules = new Map<string, QueueRules>();
  for (const [, pairs] of eqk) {
    for (const [queue] of pairs) {
      if (typeof queue === 'string') {
        rules.set(queue, { deadLetterExchange: undefined, quorum: false, deliveryLimit: undefined });
        continue;
      }
      const args = queue.flags?.arguments ?? {};
      const dlx = args['x-dead-letter-exchange'];
      const limit = args['x-delivery-limit'];
      rules.set(queue.name, {
        deadLetterExchange: typeof dlx === 'string' ? dlx : undefined,
        quorum: args['x-queue-type'] === 'quorum' ? true : queue.flags?.passive === true ? undefined : false,
        deliveryLimit: typeof limit === 'number' ? limit : undefined,
      });
    }
  }
  return rules;
}

/** The first named queue of the bindings (to name the dead-letter exchange and queue). @internal */
export function firstQueueName(eqk: Eqk): string | undefined {
  for (const [, pairs] of eqk) {
    for (const [queue] of pairs) {
      const name = typeof queue === 'string' ? queue : queue.name;
      if (name !== '') return name;
    }
  }
  return undefined;
}

/**
 * Which delivery of the message this is (1 for the first): x-postage-deliveries counts the
 * deliveries of the copies postage requeued before this one, and a quorum queue counts this
 * copy's returns in x-delivery-count (e.g. after a crash mid-handler); the sum is the count.
 * On a queue known to be classic an x-delivery-count can only come from a client (a replayed
 * dead letter, a copy): it is not the broker's count and is ignored. @internal
 * @param quorum - the queue's {@link QueueRules.quorum}
 */
export function deliveryNumber(properties: MessageProperties, quorum?: boolean): number {
  const headers = properties.headers;
  if (headers === undefined) return 1;
  const counted = quorum === false ? undefined : headers['x-delivery-count'];
  const own = headers[DELIVERIES_HEADER];
  return 1 + (typeof counted === 'number' ? counted : 0) + (typeof own === 'number' ? own : 0);
}

/** A short description of an error for a header (bounded: headers travel with every copy). */
export function describeError(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  const text =
    error instanceof Error
      ? `${error.name}: ${error.message}`
      : typeof error === 'string'
        ? error
        : JSON.stringify(error);
  return text.length > 1000 ? `${text.slice(0, 997)}...` : text;
}

/**
 * The exchange and routing key a message was first published with: a copy requeued by postage
 * on a classic queue comes back through the default exchange (routing key = the queue), so the
 * originals travel in headers. @internal
 */
export function originalRoute(message: TransportMessage): { exchange: string; routingKey: string } {
  const headers = message.properties.headers;
  const exchange = headers?.[EXCHANGE_HEADER];
  const routingKey = headers?.[ROUTING_KEY_HEADER];
  return {
    exchange: typeof exchange === 'string' ? exchange : message.fields.exchange,
    routingKey: typeof routingKey === 'string' ? routingKey : message.fields.routingKey,
  };
}

/**
 * The options of a copy postage publishes (dead letter or counted requeue), built from the
 * original's properties without what the broker would act on again or refuse:
 * - `CC` / `BCC` headers: routing keys; routed by them the copy would reach other queues again
 *   (CC is kept in x-postage-original-cc; BCC never reaches a consumer);
 * - `x-delivery-count`: the broker's count in the source queue, not the copy's (postage counts
 *   in x-postage-deliveries);
 * - `user_id`, unless it is the processor's own user: the broker refuses (406) a publish with
 *   another user's (kept in x-postage-original-user-id);
 * - `expiration`, in a dead letter: it would expire out of the dead-letter queue (kept in
 *   x-postage-original-expiration). A counted requeue keeps it: the message goes back to its
 *   queue and still expires there as its publisher asked (its clock starts again);
 * - x-death, x-first-death-* and x-last-death-*: the broker's own; RabbitMQ 3.13+ ignores them
 *   on publish (4.0 writes only its own history), so the copy carries the x-death history in
 *   x-postage-deaths instead, the same on every release.
 * The copy is mandatory (an unroutable copy must fail, not vanish) and has a message id:
 * publisher confirms match a basic.return by message id, so a message without one gets a fresh
 * one.
 */
function copyOptions(
  message: TransportMessage,
  headers: Record<string, unknown>,
  kind: 'requeue' | 'deadLetter',
  user: string | undefined,
): PublishOptions {
  const route = originalRoute(message);
  headers[EXCHANGE_HEADER] = route.exchange;
  headers[ROUTING_KEY_HEADER] = route.routingKey;
  const cc = headers['CC'];
  if (cc !== undefined) {
    headers[ORIGINAL_CC_HEADER] = cc;
    delete headers['CC'];
  }
  delete headers['BCC'];
  delete headers['x-delivery-count'];
  const deaths = headers['x-death'];
  for (const name of DEATH_HEADERS) delete headers[name];
  if (Array.isArray(deaths) && deaths.length > 0) {
    headers[DEATHS_HEADER] = mergeDeaths(deaths, headers[DEATHS_HEADER]);
  }
  const { expiration, userId, ...kept } = message.properties;
  const options: PublishOptions = {
    ...kept,
    headers,
    messageId: message.properties.messageId ?? uuid(),
    mandatory: true,
  };
  if (userId !== undefined) {
    if (userId === user) options.userId = userId;
    else headers[ORIGINAL_USER_ID_HEADER] = userId;
  }
  if (expiration !== undefined) {
    if (kind === 'requeue') options.expiration = expiration;
    else headers[ORIGINAL_EXPIRATION_HEADER] = String(expiration);
  }
  return options;
}

/**
 * The x-death entries, newest first, then the earlier ones: entries of the same queue and
 * reason become one with their counts added (as the broker keeps them), so the header stays
 * bounded however often a message goes round.
 */
function mergeDeaths(newer: readonly unknown[], earlier: unknown): Record<string, unknown>[] {
  const merged = new Map<string, Record<string, unknown>>();
  for (const entry of [...newer, ...(Array.isArray(earlier) ? (earlier as unknown[]) : [])]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const death = entry as Record<string, unknown>;
    const key = `${String(death['queue'])}\u0000${String(death['reason'])}`;
    const seen = merged.get(key);
    if (seen === undefined) merged.set(key, { ...death });
    else seen['count'] = Number(seen['count'] ?? 0) + Number(death['count'] ?? 0);
  }
  return [...merged.values()];
}

/**
 * The options of a dead letter postage publishes itself (with its reason).
 * @param user - the processor's broker user (a user_id of that user is kept)
 * @internal
 */
export function deadLetterProperties(
  message: TransportMessage,
  queue: string,
  reason: string,
  error: unknown,
  deliveries: number,
  user?: string,
): PublishOptions {
  const headers: Record<string, unknown> = {
    ...message.properties.headers,
    [REASON_HEADER]: reason,
    [DELIVERIES_HEADER]: deliveries,
    [QUEUE_HEADER]: queue,
  };
  const described = describeError(error);
  if (described !== undefined) headers[ERROR_HEADER] = described;
  return copyOptions(message, headers, 'deadLetter', user);
}

/**
 * The options of a copy requeued on a classic queue: the delivery count goes up, the original
 * exchange and routing key are kept in headers.
 * @param user - the processor's broker user (a user_id of that user is kept)
 * @internal
 */
export function requeueProperties(
  message: TransportMessage,
  deliveries: number,
  user?: string,
): PublishOptions {
  return copyOptions(
    message,
    { ...message.properties.headers, [DELIVERIES_HEADER]: deliveries },
    'requeue',
    user,
  );
}

/**
 * Why a copy cannot be published at all, or undefined when it can: a header table larger than
 * {@link MAX_COPY_HEADERS_BYTES} (MESSAGE_TOO_LARGE) or with a value AMQP cannot encode
 * (ENCODE_FAILED). Checked before publishing: such a copy fails the same way every time.
 * @internal
 */
export function copyRefusal(options: PublishOptions): PostageError | undefined {
  const size = tableSize(options.headers ?? {});
  if (Number.isNaN(size)) {
    return new PostageError(ErrorCode.ENCODE_FAILED, 'the copy has a header AMQP cannot encode');
  }
  if (size > MAX_COPY_HEADERS_BYTES) {
    return new PostageError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `the copy's header table would take ${size} bytes, more than the ${MAX_COPY_HEADERS_BYTES} a publish can carry`,
    );
  }
  return undefined;
}

/**
 * Bytes of an AMQP field table as amqplib encodes it (4 bytes of length, then per entry a
 * short-string key, a type tag and the value); NaN when a value cannot be encoded. @internal
 */
export function tableSize(table: Readonly<Record<string, unknown>>): number {
  let size = 4;
  for (const key in table) {
    const value = table[key];
    if (value === undefined) continue;
    const keyBytes = Buffer.byteLength(key);
    if (keyBytes > 255) return Number.NaN;
    size += 1 + keyBytes + valueSize(value);
  }
  return size;
}

/** Tag and width of the types a value can be given as `{ '!': type, value }`. */
const TYPED_WIDTH: Readonly<Record<string, number>> = {
  double: 9,
  float64: 9,
  float: 5,
  byte: 2,
  int8: 2,
  unsignedbyte: 2,
  uint8: 2,
  short: 3,
  int16: 3,
  unsignedshort: 3,
  uint16: 3,
  int: 5,
  int32: 5,
  unsignedint: 5,
  uint32: 5,
  long: 9,
  int64: 9,
  timestamp: 9,
  decimal: 6,
  boolean: 2,
};

function valueSize(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 5 + Buffer.byteLength(value);
    case 'boolean':
      return 2;
    case 'number':
      return numberSize(value);
    case 'object': {
      if (value === null) return 1;
      if (Buffer.isBuffer(value)) return 5 + value.length;
      if (Array.isArray(value)) {
        let size = 5;
        for (const item of value as unknown[]) size += valueSize(item);
        return size;
      }
      if (Object.hasOwn(value, '!')) {
        const typed = value as { '!': unknown; value?: unknown };
        if (typed['!'] === 'string' && typeof typed.value === 'string') return valueSize(typed.value);
        return typeof typed['!'] === 'string' ? (TYPED_WIDTH[typed['!']] ?? Number.NaN) : Number.NaN;
      }
      return 1 + tableSize(value as Record<string, unknown>);
    }
    default:
      // undefined (in an array), bigint, symbol, function: amqplib throws.
      return Number.NaN;
  }
}

/** amqplib's choice for a number: a double when it has a fraction, else the smallest signed integer. */
function numberSize(n: number): number {
  // NaN, -Infinity and integers below int64 would be written as an int64: amqplib throws.
  if (!(n >= -0x8000000000000000)) return Number.NaN;
  if (n >= 0x8000000000000000 || (Math.abs(n) < 0x4000000000000 && Math.floor(n) !== n)) return 9;
  if (n < 128 && n >= -128) return 2;
  if (n >= -0x8000 && n < 0x8000) return 3;
  if (n >= -0x80000000 && n < 0x80000000) return 5;
  return 9;
}

/** Messages whose failed copies are remembered at most (the oldest are forgotten first). */
const MAX_TRACKED_COPIES = 10_000;

/**
 * Copies (dead letter, counted requeue) that failed, per message of a classic queue. The
 * original then went back to its queue unchanged, and nothing there counts that return: it is
 * counted here, toward maxDeliveries (quorum queues count it themselves). Per process and
 * bounded: another consumer of the queue starts from the message's own count. @internal
 */
export class FailedCopies {
  readonly #failed = new Map<string, number>();

  /** Failed copies of this message so far (0 unless it came back after one). */
  of(message: TransportMessage, queue: string): number {
    // Only a returned message can have failed before: no key is computed on the common path.
    if (this.#failed.size === 0 || !message.fields.redelivered) return 0;
    return this.#failed.get(copyKey(message, queue)) ?? 0;
  }

  /** One more failed copy of this message. */
  count(message: TransportMessage, queue: string): void {
    const key = copyKey(message, queue);
    const failed = (this.#failed.get(key) ?? 0) + 1;
    // Re-inserted: the map's order is the eviction order, least recently failed first.
    this.#failed.delete(key);
    this.#failed.set(key, failed);
    if (this.#failed.size > MAX_TRACKED_COPIES) {
      const oldest = this.#failed.keys().next();
      if (oldest.done !== true) this.#failed.delete(oldest.value);
    }
  }

  /** The message is settled for good: nothing to count any more. */
  forget(message: TransportMessage, queue: string): void {
    if (this.#failed.size > 0) this.#failed.delete(copyKey(message, queue));
  }
}

/** A message's queue and id (or, without an id, a digest of its body). */
function copyKey(message: TransportMessage, queue: string): string {
  const id = message.properties.messageId;
  if (typeof id === 'string' && id !== '') return `${queue}\n${id}`;
  return `${queue}\n#${createHash('sha1').update(message.content).digest('base64')}`;
}

/** The processor's dead-letter exchange and queue from its `deadLetter` option. @internal */
export function resolveDeadLetter(
  option: boolean | DeadLetterOptions | undefined,
  eqk: Eqk,
): DeadLetterTarget | undefined {
  if (option === undefined || option === false) return undefined;
  const explicit = option === true ? {} : option;
  const first = firstQueueName(eqk);
  const exchange = explicit.exchange ?? (first === undefined ? undefined : `${first}.dlx`);
  if (exchange === undefined) {
    throw new PostageError(
      ErrorCode.INVALID_ARGUMENT,
      'deadLetter: true needs a named queue (or give the exchange)',
    );
  }
  return { exchange, queue: explicit.queue ?? (first === undefined ? undefined : `${first}.dlq`) };
}

/** Declares the processor's dead-letter exchange (durable fanout) and its queue, bound. @internal */
export async function declareDeadLetter(connection: Connection, target: DeadLetterTarget): Promise<void> {
  await connection.withTopology(async (channel) => {
    await channel.assertExchange(target.exchange, 'fanout', { durable: true });
    if (target.queue !== undefined) {
      await channel.assertQueue(target.queue, { durable: true });
      await channel.bindQueue(target.queue, target.exchange, '');
    }
  }, `declare dead-letter exchange '${target.exchange}'`);
}
