/**
 * Declarations as RabbitMQ checks them: amqplib's option names turned into x-arguments, argument
 * validation, and the equivalence check of a redeclaration.
 */
import type { ExchangeOptions, QueueOptions } from '../types';
import { AmqpException, inequivalent, preconditionFailed } from './errors';
import type { MemoryExchange } from './exchange';
import type { MemoryQueue, QueueSettings } from './queue';

/** Arguments RabbitMQ compares when a queue is declared again. */
const COMPARED_QUEUE_ARGS = [
  'x-message-ttl',
  'x-expires',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-overflow',
  'x-queue-type',
  'x-delivery-limit',
  'x-single-active-consumer',
] as const;

/** amqplib's defaults: durable, not exclusive, not auto-delete; options win over `arguments`. */
export function queueArguments(options: QueueOptions): Record<string, unknown> {
  const args: Record<string, unknown> = { ...(options.arguments ?? {}) };
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) args[key] = value;
  };
  set('x-message-ttl', options.messageTtl);
  set('x-expires', options.expires);
  set('x-dead-letter-exchange', options.deadLetterExchange);
  set('x-dead-letter-routing-key', options.deadLetterRoutingKey);
  set('x-max-length', options.maxLength);
  set('x-max-priority', options.maxPriority);
  set('x-overflow', options.overflow);
  return args;
}

/** Validates a queue declaration and returns its settings, or the exception RabbitMQ raises. */
export function queueSettings(
  name: string,
  options: QueueOptions,
  owner: number | undefined,
): QueueSettings | AmqpException {
  const args = queueArguments(options);
  const durable = options.durable ?? true;
  const autoDelete = options.autoDelete ?? false;
  const bad = (arg: string, why: string): AmqpException =>
    preconditionFailed(`invalid arg '${arg}' for queue '${name}' in vhost '/': ${why}`, 'QueueDeclare');
  const int = (arg: string, min: number | undefined): number | undefined | AmqpException => {
    const value = args[arg];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value))
      return bad(arg, `{unacceptable_type,${typeof value}}`);
    if (min !== undefined && value < min)
      return bad(arg, `{value_${min === 0 ? 'negative' : 'zero'},${value}}`);
    return value;
  };
  const messageTtl = int('x-message-ttl', 0);
  const expires = int('x-expires', 1);
  const maxLength = int('x-max-length', 0);
  const maxLengthBytes = int('x-max-length-bytes', 0);
  // Any integer: RabbitMQ accepts a negative limit (4.0: no limit; 3.10: dead-letters at the first return).
  const deliveryLimit = int('x-delivery-limit', undefined);
  for (const v of [messageTtl, expires, maxLength, maxLengthBytes, deliveryLimit]) {
    if (v instanceof AmqpException) return v;
  }
  const overflow = args['x-overflow'] ?? 'drop-head';
  if (overflow !== 'drop-head' && overflow !== 'reject-publish' && overflow !== 'reject-publish-dlx') {
    return bad('x-overflow', `{unacceptable_value,${String(overflow)}}`);
  }
  const type = args['x-queue-type'] ?? 'classic';
  if (type !== 'classic' && type !== 'quorum') {
    return bad('x-queue-type', `the in-process broker has no ${String(type)} queues`);
  }
  if (type === 'quorum') {
    const refuse = (property: string): AmqpException =>
      preconditionFailed(`invalid property '${property}' for queue '${name}' in vhost '/'`, 'QueueDeclare');
    if (!durable) return refuse('non-durable');
    if (owner !== undefined) return refuse('exclusive-owner');
    if (autoDelete) return refuse('auto-delete');
    if (overflow === 'reject-publish-dlx')
      return bad('x-overflow', '{unacceptable_value,reject-publish-dlx}');
  }
  const dlx = args['x-dead-letter-exchange'];
  const dlrk = args['x-dead-letter-routing-key'];
  return {
    durable,
    autoDelete,
    owner,
    arguments: args,
    type,
    messageTtl: messageTtl as number | undefined,
    expires: expires as number | undefined,
    deadLetterExchange: typeof dlx === 'string' ? dlx : undefined,
    deadLetterRoutingKey: typeof dlrk === 'string' ? dlrk : undefined,
    maxLength: maxLength as number | undefined,
    maxLengthBytes: maxLengthBytes as number | undefined,
    overflow,
    deliveryLimit: deliveryLimit as number | undefined,
  };
}

/** The 406 of a redeclaration whose flags or compared arguments differ, or undefined. */
export function queueInequivalence(queue: MemoryQueue, wanted: QueueSettings): AmqpException | undefined {
  const have = queue.settings;
  const differ = (arg: string, received: unknown, current: unknown): AmqpException =>
    inequivalent('queue', queue.name, arg, received, current, 'QueueDeclare');
  if (have.durable !== wanted.durable) return differ('durable', wanted.durable, have.durable);
  if (have.autoDelete !== wanted.autoDelete) return differ('auto_delete', wanted.autoDelete, have.autoDelete);
  for (const arg of COMPARED_QUEUE_ARGS) {
    let received = wanted.arguments[arg];
    let current = have.arguments[arg];
    if (arg === 'x-queue-type') {
      received ??= 'classic';
      current ??= 'classic';
    }
    if (received !== current) return differ(arg, received, current);
  }
  return undefined;
}

/** Normalised exchange flags (amqplib's defaults: durable, not internal, not auto-delete). */
export interface ExchangeFlags {
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  args: Record<string, unknown>;
}

export function exchangeFlags(options: ExchangeOptions): ExchangeFlags {
  const args: Record<string, unknown> = { ...(options.arguments ?? {}) };
  if (options.alternateExchange !== undefined) args['alternate-exchange'] = options.alternateExchange;
  return {
    durable: options.durable ?? true,
    autoDelete: options.autoDelete ?? false,
    internal: options.internal ?? false,
    args,
  };
}

/** The 406 of an exchange redeclared with another type or flags, or undefined. */
export function exchangeInequivalence(
  exchange: MemoryExchange,
  type: string,
  flags: ExchangeFlags,
): AmqpException | undefined {
  const differ = (arg: string, received: unknown, current: unknown): AmqpException =>
    inequivalent('exchange', exchange.name, arg, received, current, 'ExchangeDeclare');
  if (exchange.type !== type) return differ('type', type, exchange.type);
  if (exchange.durable !== flags.durable) return differ('durable', flags.durable, exchange.durable);
  if (exchange.autoDelete !== flags.autoDelete)
    return differ('auto_delete', flags.autoDelete, exchange.autoDelete);
  if (exchange.internal !== flags.internal) return differ('internal', flags.internal, exchange.internal);
  if (exchange.args['alternate-exchange'] !== flags.args['alternate-exchange']) {
    return differ(
      'alternate-exchange',
      flags.args['alternate-exchange'],
      exchange.args['alternate-exchange'],
    );
  }
  return undefined;
}
