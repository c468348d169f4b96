/**
 * Poison messages: the dead-letter exchange and queue of a processor, quorum queues, and the
 * delivery count that bounds how often one message is handled.
 */
import { v4 as uuid } from 'uuid';

import type { Connection } from './connection';
import type { Eqk, QueueFlags, QueueSpec } from './consumer';
import { ErrorCode, PostageError } from './errors';
import type { MessageProperties, PublishOptions, TransportMessage } from './transport/types';

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
  readonly quorum: boolean;
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
        rules.set(queue, { deadLetterExchange: undefined, quorum: false });
        continue;
      }
      const args = queue.flags?.arguments ?? {};
      const dlx = args['x-dead-letter-exchange'];
      rules.set(queue.name, {
        deadLetterExchange: typeof dlx === 'string' ? dlx : undefined,
        quorum: args['x-queue-type'] === 'quorum',
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
 * Which delivery of the message this is (1 for the first): quorum queues count returns in
 * x-delivery-count, postage counts its own requeues in x-postage-deliveries. @internal
 */
export function deliveryNumber(properties: MessageProperties): number {
  const headers = properties.headers;
  if (headers === undefined) return 1;
  const quorum = headers['x-delivery-count'];
  if (typeof quorum === 'number') return quorum + 1;
  const own = headers[DELIVERIES_HEADER];
  return typeof own === 'number' ? own + 1 : 1;
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
 * A copy of the message's properties with `headers` for a republish by postage, mandatory (an
 * unroutable copy must fail, not vanish) and with a message id: publisher confirms match a
 * basic.return by message id, so a message without one gets a fresh one.
 */
function republishOptions(message: TransportMessage, headers: Record<string, unknown>): PublishOptions {
  const route = originalRoute(message);
  headers[EXCHANGE_HEADER] = route.exchange;
  headers[ROUTING_KEY_HEADER] = route.routingKey;
  return {
    ...message.properties,
    headers,
    messageId: message.properties.messageId ?? uuid(),
    mandatory: true,
  };
}

/** The options of a dead letter postage publishes itself (with its reason). @internal */
export function deadLetterProperties(
  message: TransportMessage,
  queue: string,
  reason: string,
  error: unknown,
  deliveries: number,
): PublishOptions {
  const headers: Record<string, unknown> = {
    ...message.properties.headers,
    [REASON_HEADER]: reason,
    [DELIVERIES_HEADER]: deliveries,
    [QUEUE_HEADER]: queue,
  };
  const described = describeError(error);
  if (described !== undefined) headers[ERROR_HEADER] = described;
  return republishOptions(message, headers);
}

/**
 * The options of a copy requeued on a classic queue: the delivery count goes up, the original
 * exchange and routing key are kept in headers. @internal
 */
export function requeueProperties(message: TransportMessage, deliveries: number): PublishOptions {
  return republishOptions(message, { ...message.properties.headers, [DELIVERIES_HEADER]: deliveries });
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
