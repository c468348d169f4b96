/**
 * Errors the in-process broker raises, shaped as amqplib shapes RabbitMQ's: the same messages
 * and a numeric `code` (the AMQP reply code), so `toPostageError` maps both the same way.
 */

const REPLY_NAMES: Readonly<Record<number, string>> = {
  312: 'NO-ROUTE',
  320: 'CONNECTION-FORCED',
  403: 'ACCESS-REFUSED',
  404: 'NOT-FOUND',
  405: 'RESOURCE-LOCKED',
  406: 'PRECONDITION-FAILED',
  530: 'NOT-ALLOWED',
  541: 'INTERNAL-ERROR',
};

/** The AMQP method that failed, as amqplib names it in "Operation failed: <method>". */
export type MethodName =
  | 'ExchangeDeclare'
  | 'ExchangeDelete'
  | 'ExchangeBind'
  | 'ExchangeUnbind'
  | 'QueueDeclare'
  | 'QueueBind'
  | 'QueueUnbind'
  | 'QueuePurge'
  | 'QueueDelete'
  | 'BasicQos'
  | 'BasicConsume'
  | 'BasicCancel'
  | 'BasicGet'
  | 'BasicPublish'
  | 'BasicAck';

/** A channel- or connection-level exception, before it becomes an Error. */
export class AmqpException {
  constructor(
    readonly code: number,
    readonly text: string,
    readonly method: MethodName,
  ) {}

  /** "404 (NOT-FOUND) with message "NOT_FOUND - ..."", as amqplib formats a close frame. */
  describe(): string {
    return `${this.code} (${REPLY_NAMES[this.code] ?? 'UNKNOWN'}) with message "${this.text}"`;
  }

  /** The error the failed operation's promise rejects with. */
  forOperation(): Error {
    return this.toError(`Operation failed: ${this.method}; ${this.describe()}`);
  }

  /** The error the channel emits on 'error'. */
  forChannel(): Error {
    return this.toError(`Channel closed by server: ${this.describe()}`);
  }

  /** The error a connection emits on 'error' when the broker closes it. */
  forConnection(): Error {
    return this.toError(`Connection closed: ${this.describe()}`);
  }

  private toError(message: string): Error {
    return Object.assign(new Error(message), { code: this.code });
  }
}

const VHOST = "in vhost '/'";

export const notFound = (kind: 'exchange' | 'queue', name: string, method: MethodName): AmqpException =>
  new AmqpException(404, `NOT_FOUND - no ${kind} '${name}' ${VHOST}`, method);

export const preconditionFailed = (text: string, method: MethodName): AmqpException =>
  new AmqpException(406, `PRECONDITION_FAILED - ${text}`, method);

export const accessRefused = (text: string, method: MethodName): AmqpException =>
  new AmqpException(403, `ACCESS_REFUSED - ${text}`, method);

export const resourceLocked = (queue: string, method: MethodName): AmqpException =>
  new AmqpException(
    405,
    `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue}' ${VHOST}. It could be ` +
      'originally declared on another connection or the exclusive property value does not match that ' +
      'of the original declaration.',
    method,
  );

export const inequivalent = (
  what: 'exchange' | 'queue',
  name: string,
  arg: string,
  received: unknown,
  current: unknown,
  method: MethodName,
): AmqpException =>
  preconditionFailed(
    `inequivalent arg '${arg}' for ${what} '${name}' ${VHOST}: received ${show(received)} but current is ${show(current)}`,
    method,
  );

function show(value: unknown): string {
  return value === undefined ? 'none' : `'${String(value)}'`;
}

/** Thrown by operations on a closed channel, as amqplib's IllegalOperationError. */
export function channelClosed(): Error {
  return new Error('Channel closed');
}
