/**
 * Every failure postage reports is a {@link PostageError} with a stable `code`.
 * Callers (and specs) branch on `code`, never on message text.
 */

/** The codes a {@link PostageError} can carry. */
export const ErrorCode = {
  /** A received body could not be decoded (e.g. it is not JSON). */
  DECODE_FAILED: 'DECODE_FAILED',
  /** A value could not be encoded (e.g. a circular structure or a BigInt). */
  ENCODE_FAILED: 'ENCODE_FAILED',
  /** A decoded body is not a postage envelope (it fails the envelope schema). */
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  /** An encoded message is larger than the configured limit. */
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  /** An argument given to a postage API is not valid. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The configuration (environment or options) is not valid. */
  INVALID_CONFIG: 'INVALID_CONFIG',
  /** A handler registration is ambiguous (e.g. two RPC handlers for one message in one class). */
  AMBIGUOUS_HANDLER: 'AMBIGUOUS_HANDLER',
  /** No handler exists for an RPC call. */
  NO_HANDLER: 'NO_HANDLER',
  /** An RPC call got no reply within its timeout, after all its retries. */
  RPC_TIMEOUT: 'RPC_TIMEOUT',
  /** The remote side answered an RPC call with a MessageResultError. */
  RPC_ERROR: 'RPC_ERROR',
  /** The remote handler threw: the reply is a MessageResultException. */
  RPC_EXCEPTION: 'RPC_EXCEPTION',
  /** An RPC reply is not a valid result message. */
  RPC_MALFORMED_REPLY: 'RPC_MALFORMED_REPLY',
  /** A mandatory publish routed to no queue (the broker returned it). */
  UNROUTABLE: 'UNROUTABLE',
  /** The broker refused a publish (basic.nack). */
  NACKED: 'NACKED',
  /** The broker's confirm did not arrive in time. */
  CONFIRM_TIMEOUT: 'CONFIRM_TIMEOUT',
  /** The outage buffer is full. */
  BUFFER_FULL: 'BUFFER_FULL',
  /** The channel closed before the operation completed. */
  CHANNEL_CLOSED: 'CHANNEL_CLOSED',
  /** The connection could not be opened. */
  CONNECTION_FAILED: 'CONNECTION_FAILED',
  /** The connection was lost or closed while the operation was pending. */
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  /** The component (producer, consumer, processor) is closing or closed. */
  CLOSED: 'CLOSED',
  /** Broker reply 404: an exchange or queue does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** Broker reply 406: e.g. a redeclare with other arguments, or an unknown delivery tag. */
  PRECONDITION_FAILED: 'PRECONDITION_FAILED',
  /** Broker reply 405: e.g. an exclusive queue of another connection. */
  RESOURCE_LOCKED: 'RESOURCE_LOCKED',
  /** Broker reply 403: e.g. a login refused (wrong user name or password), or no permission. */
  ACCESS_REFUSED: 'ACCESS_REFUSED',
  /**
   * Broker reply 530: the broker refused to open the virtual host (it does not exist, the user
   * has no permission on it, or a connection limit is reached).
   */
  NOT_ALLOWED: 'NOT_ALLOWED',
  /** Any other broker error. */
  BROKER_ERROR: 'BROKER_ERROR',
  /** A processing hook (beforeHandling, afterHandling, beforeProcessing...) threw. */
  HOOK_FAILED: 'HOOK_FAILED',
  /** A message translator could not turn a foreign body into a postage message. */
  TRANSLATION_FAILED: 'TRANSLATION_FAILED',
  /** A handler threw and its error handlers decided to dead-letter the message. */
  HANDLER_FAILED: 'HANDLER_FAILED',
  /** A message was delivered the maximum number of times: it is dead-lettered. */
  DELIVERY_LIMIT: 'DELIVERY_LIMIT',
  /** A publish made while disconnected, with the buffer policy 'fail-fast'. */
  DISCONNECTED: 'DISCONNECTED',
  /** The connection gave up reconnecting (reconnect.maxAttempts). */
  RECONNECT_FAILED: 'RECONNECT_FAILED',
} as const;

/** A literal union of every error code. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options accepted by every postage error. */
export interface PostageErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * The base class of every error postage raises or reports.
 *
 * @example
 * ```ts
 * try { await producer.message_echo('hi'); }
 * catch (err) { if (err instanceof PostageError && err.code === 'UNROUTABLE') { ... } }
 * ```
 */
export class PostageError extends Error {
  /** A stable, machine-readable code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: PostageErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** Bad data: a body that does not decode, an invalid envelope, a value that does not encode. */
export class ValidationError extends PostageError {
  /** Human-readable schema problems, when the failure comes from a schema. */
  readonly issues: readonly string[];

  constructor(
    code: ErrorCode,
    message: string,
    options?: PostageErrorOptions & { issues?: readonly string[] },
  ) {
    super(code, message, options);
    this.issues = options?.issues ?? [];
  }
}

/** An RPC call that did not produce a successful result. */
export class RpcError extends PostageError {}

/**
 * An RPC call that got no reply in time. Its stack names the line that awaited the call (it is
 * captured again in the call's async continuation, where V8 appends the awaiting frames).
 */
export class RpcTimeoutError extends RpcError {}

/** A publish that the broker did not accept (unroutable, nacked, not confirmed). */
export class PublishError extends PostageError {}

/** A connection that could not be opened or was lost. */
export class ConnectionError extends PostageError {}

/** A broker channel error (404, 405, 406, ...). `replyCode` is the AMQP reply code. */
export class ChannelError extends PostageError {
  /** The AMQP reply code, e.g. 404 or 406, when the broker gave one. */
  readonly replyCode: number | undefined;

  constructor(code: ErrorCode, message: string, options?: PostageErrorOptions & { replyCode?: number }) {
    super(code, message, options);
    this.replyCode = options?.replyCode;
  }
}

/**
 * Thrown by a handler to reject the message without requeue (it is dead-lettered when the
 * queue has a dead-letter exchange, dropped otherwise). Not a failure: it is not logged as one.
 */
export class RejectMessage extends Error {}

/** Thrown by a filter to skip one handler; the message is still acknowledged. */
export class FilterError extends Error {}

/**
 * Thrown (or returned) by a handler to acknowledge the message and drop it: it is not
 * dead-lettered and not requeued. Not a failure: it is logged at info.
 */
export class DeleteMessage extends Error {}

// Each class's name lives on its prototype: as an instance field it was defined again on every
// error created (1.6 us of the 2.9 us an error cost here).
for (const [type, name] of [
  [PostageError, 'PostageError'],
  [ValidationError, 'ValidationError'],
  [RpcError, 'RpcError'],
  [RpcTimeoutError, 'RpcTimeoutError'],
  [PublishError, 'PublishError'],
  [ConnectionError, 'ConnectionError'],
  [ChannelError, 'ChannelError'],
  [RejectMessage, 'RejectMessage'],
  [FilterError, 'FilterError'],
  [DeleteMessage, 'DeleteMessage'],
] as const) {
  Object.defineProperty(type.prototype, 'name', { value: name, writable: true, configurable: true });
}

const REPLY_CODES: Readonly<Record<number, ErrorCode>> = {
  320: ErrorCode.CONNECTION_CLOSED,
  403: ErrorCode.ACCESS_REFUSED,
  404: ErrorCode.NOT_FOUND,
  405: ErrorCode.RESOURCE_LOCKED,
  406: ErrorCode.PRECONDITION_FAILED,
  530: ErrorCode.NOT_ALLOWED,
};

/**
 * A login or vhost refusal of the broker at connect (ACCESS_REFUSED, NOT_ALLOWED): an answer,
 * not an outage, so retrying the connect cannot help. @internal
 */
export function isRefusal(err: unknown): err is ConnectionError {
  return (
    err instanceof ConnectionError &&
    (err.code === ErrorCode.ACCESS_REFUSED || err.code === ErrorCode.NOT_ALLOWED)
  );
}

/** `scheme://user:password@`: the credentials part of a URL. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi;

/**
 * The text with the password of every `scheme://user:password@host` URL in it replaced by `***`
 * (for messages and logs that may quote a URL).
 */
export function redactCredentials(text: string): string {
  return text.includes('@') ? text.replace(URL_CREDENTIALS, '$1:***@') : text;
}

/**
 * Turns whatever amqplib (or the in-process broker) raised into a {@link PostageError}.
 * amqplib puts the AMQP reply code on `err.code` for channel and connection closes.
 * @internal
 */
export function toPostageError(err: unknown, fallback: ErrorCode, context?: string): PostageError {
  if (err instanceof PostageError) return err;
  const raw = err instanceof Error ? err : new Error(String(err));
  const prefix = context === undefined ? '' : `${context}: `;
  const replyCode = (raw as { code?: unknown }).code;
  if (typeof replyCode === 'number') {
    const code = REPLY_CODES[replyCode] ?? ErrorCode.BROKER_ERROR;
    return new ChannelError(code, prefix + raw.message, { cause: raw, replyCode });
  }
  if (/channel closed|channel ended/i.test(raw.message)) {
    return new ChannelError(ErrorCode.CHANNEL_CLOSED, prefix + raw.message, { cause: raw });
  }
  if (
    /connection closed|socket closed|ECONNRESET|EPIPE|heartbeat timeout|unexpected close/i.test(raw.message)
  ) {
    return new ConnectionError(ErrorCode.CONNECTION_CLOSED, prefix + raw.message, { cause: raw });
  }
  return new PostageError(fallback, prefix + raw.message, { cause: raw });
}
