/**
 * Postage messages. The body (a plain dictionary) is the wire format; the classes only build
 * and read it. Layout: `{type, name, category, version: '2', fingerprint, content, _reserved}`.
 */
import { ErrorCode, RpcError, type PostageError } from '../errors';
import { fingerprintDict, type FingerprintLike } from './fingerprint';
import {
  Category,
  ResultType,
  isResultContent,
  type MessageBody,
  type ReceivedBody,
  type ResultContent,
} from './schema';

/** The envelope version postage writes. */
export const MESSAGE_VERSION = '2';

/** Fields of the envelope a message class sets. */
export interface MessageInit<C> {
  type?: string;
  name?: string | null;
  category?: Category;
  content?: C;
  fingerprint?: FingerprintLike;
}

/**
 * The base message: type `none`, name `none`, category `message`. Subclass it for your own
 * message types, or use the command, status and result classes below.
 *
 * @example
 * ```ts
 * class MessageAlert extends Message {
 *   constructor(text: string) { super({ type: 'alert', name: 'fire', content: { text } }); }
 * }
 * ```
 */
export class Message<C = Record<string, unknown>> {
  /** The dictionary form, exactly as it is sent. */
  readonly body: MessageBody<C>;

  constructor(init: MessageInit<C> = {}) {
    this.body = {
      type: init.type ?? 'none',
      name: init.name === undefined ? 'none' : init.name,
      category: init.category ?? Category.message,
      version: MESSAGE_VERSION,
      fingerprint: fingerprintDict(init.fingerprint),
      content: init.content ?? ({} as C),
      _reserved: {},
    };
  }

  /**
   * A base message carrying positional and keyword values as postage's `Message(*args, **kwds)`
   * did: content `{args: [...], kwds: {...}}`, each key present only when non-empty.
   */
  static fromArgs(args: readonly unknown[] = [], kwds: Readonly<Record<string, unknown>> = {}): Message {
    const content: Record<string, unknown> = {};
    if (args.length > 0) content['args'] = [...args];
    if (Object.keys(kwds).length > 0) content['kwds'] = { ...kwds };
    return new Message({ content });
  }

  /**
   * Rebuilds the right class from a received (validated) body, keeping every field, the
   * fingerprint included: a command becomes a MessageCommand or RpcCommand, a status a
   * MessageStatus, a result a MessageResult / MessageResultError / MessageResultException.
   */
  static fromBody(body: ReceivedBody): Message<unknown> {
    let message: Message<unknown>;
    if (body.type === 'command' && typeof body.name === 'string') {
      const parameters = (body.content as { parameters?: unknown }).parameters;
      message =
        body.category === Category.rpc
          ? new RpcCommand(body.name, parameters)
          : new MessageCommand(body.name, parameters);
    } else if (body.type === 'result' && isResultContent(body.content)) {
      return resultFromBody({ ...body, content: body.content });
    } else if (body.type === 'status' && typeof body.name === 'string') {
      message = new MessageStatus(body.name);
    } else {
      message = new Message({ type: body.type, name: body.name, category: body.category });
    }
    return keepReceived(message, body);
  }

  get type(): string {
    return this.body.type;
  }
  get name(): string | null {
    return this.body.name;
  }
  get category(): Category {
    return this.body.category;
  }
  get content(): C {
    return this.body.content;
  }
  get fingerprint(): Record<string, string> {
    return this.body.fingerprint;
  }

  /** Postage's truth value: false only for error and exception results. */
  get ok(): boolean {
    return true;
  }

  /** Merges a fingerprint into the message (postage's `fingerprint(**kwds)`); returns this. */
  setFingerprint(fingerprint: FingerprintLike): this {
    Object.assign(this.body.fingerprint, fingerprintDict(fingerprint));
    return this;
  }

  /** True when both bodies are equal (deep comparison). */
  equals(other: Message<unknown>): boolean {
    return deepEqual(this.body, other.body);
  }

  toJSON(): MessageBody<C> {
    return this.body;
  }

  toString(): string {
    return JSON.stringify(this.body);
  }
}

/** A fire-and-forget command: type `command`, content `{parameters}`. */
export class MessageCommand<P = unknown> extends Message<{ parameters: P }> {
  constructor(command: string, parameters?: P) {
    // A fresh {} per message: postage shared one mutable default between all commands.
    super({ type: 'command', name: String(command), content: { parameters: parameters ?? ({} as P) } });
  }

  /** The command's parameters. */
  get parameters(): P {
    return this.body.content.parameters;
  }
}

/** A command that expects a reply: category `rpc`. */
export class RpcCommand<P = unknown> extends MessageCommand<P> {
  constructor(command: string, parameters?: P) {
    super(command, parameters);
    this.body.category = Category.rpc;
  }
}

/** The status of a component: type `status`, the status as the name. */
export class MessageStatus extends Message {
  constructor(status: unknown) {
    super({ type: 'status', name: typeof status === 'string' ? status : JSON.stringify(status) });
  }

  /** The status (the message name). */
  get status(): string {
    return this.body.name ?? '';
  }
}

/**
 * The result of an RPC call. Success: `ok` is true and `value` holds the value. The two
 * subclasses carry failures; {@link MessageResult.unwrap} turns them into typed errors.
 *
 * @example
 * ```ts
 * const reply = await producer.rpc_add(2, 3);
 * if (reply.ok) console.log(reply.value); else console.log('RPC failed:', reply.message);
 * const sum = reply.unwrap(); // the value, or throws RpcError with code RPC_ERROR / RPC_EXCEPTION / RPC_TIMEOUT ...
 * ```
 */
export class MessageResult<T = unknown> extends Message<ResultContent> {
  /**
   * A local cause, when the failure was decided on this side (timeout, unroutable request,
   * lost connection): what {@link MessageResult.unwrap} throws. Never sent.
   */
  error: PostageError | undefined;

  constructor(value: T, message = '') {
    super({ type: 'result', content: { type: ResultType.success, value, message } });
    this.error = undefined;
  }

  /** `success`, `error` or `exception`. */
  get resultType(): ResultType {
    return this.body.content.type;
  }
  /** The value (null for errors, the exception's name for exceptions). */
  get value(): T {
    return this.body.content.value as T;
  }
  /** The result's text. */
  get message(): string {
    return this.body.content.message ?? '';
  }
  override get ok(): boolean {
    return this.body.content.type === ResultType.success;
  }

  /** The value of a success; otherwise throws the typed error this result stands for. */
  unwrap(): T {
    if (this.ok) return this.value;
    if (this.error !== undefined) throw this.error;
    if (this.resultType === ResultType.exception) {
      throw new RpcError(ErrorCode.RPC_EXCEPTION, `remote ${String(this.value)}: ${this.message}`);
    }
    throw new RpcError(ErrorCode.RPC_ERROR, this.message);
  }
}

/** An error in a call: value null. */
export class MessageResultError extends MessageResult<null> {
  constructor(message: string) {
    super(null, message);
    this.body.content.type = ResultType.error;
  }
}

/** An exception raised by the remote component: the value is the exception's name. */
export class MessageResultException extends MessageResult<string> {
  constructor(name: string, message: string) {
    super(name, message);
    this.body.content.type = ResultType.exception;
  }

  /** The exception's name. */
  get exceptionName(): string {
    return String(this.value);
  }
}

/** Any result an RPC call resolves to. */
export type RpcResult<T = unknown> = MessageResult<T> | MessageResultError | MessageResultException;

/**
 * Rebuilds a received result message, keeping its fingerprint and every other field
 * (postage's consume_rpc dropped them).
 */
export function resultFromBody(body: ReceivedBody & { content: ResultContent }): RpcResult {
  const result = keepReceived(resultFromContent(body.content), body);
  // A postage processor marks its "no handler" answer (Python postage ignores _reserved).
  if (body._reserved?.['code'] === ErrorCode.NO_HANDLER && result.resultType === ResultType.error) {
    result.error = new RpcError(ErrorCode.NO_HANDLER, result.message);
  }
  return result;
}

/** Copies a received dictionary into a message as it is (extra keys, content, fingerprint). */
function keepReceived<M extends Message<unknown>>(message: M, body: ReceivedBody): M {
  const kept = Object.assign(message.body, body);
  // Set one by one: no third object per received message.
  kept.version = body.version ?? MESSAGE_VERSION;
  kept.fingerprint = body.fingerprint ?? {};
  kept._reserved = body._reserved ?? {};
  return message;
}

/** Builds the result class a result content stands for (postage's consume_rpc mapping). */
export function resultFromContent(content: ResultContent): RpcResult {
  switch (content.type) {
    case ResultType.success:
      return new MessageResult(content.value, content.message ?? '');
    case ResultType.error:
      return new MessageResultError(content.message ?? '');
    case ResultType.exception:
      return new MessageResultException(String(content.value), content.message ?? '');
  }
}

/**
 * A failure decided locally (timeout, unroutable, connection lost) as the result postage
 * would have returned: a MessageResultException named after the error, which `unwrap()` throws.
 * @internal
 */
export function localFailure(error: PostageError, exceptionName: string): MessageResultException {
  const result = new MessageResultException(exceptionName, error.message);
  result.error = error;
  return result;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const key of ka) {
    if (!Object.hasOwn(b, key)) return false;
    if (!deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false;
  }
  return true;
}
