/**
 * Handler registration: the decorators MessageHandler, RpcHandler, MessageHandlerFullBody and
 * MessageFilter, and class-based handlers. The decorators work as standard (TC39) decorators
 * and as TypeScript's `experimentalDecorators` (NestJS, TypeORM): they tell the two calling
 * conventions apart at run time.
 *
 * Registries are per class (postage shared one registry between every processor class, so
 * handlers leaked across classes): each decorator writes into its class's decorator metadata
 * (standard decorators) or into a registry keyed by the class (legacy ones), and a processor
 * collects its own class chain, base classes first, each in declaration order.
 */
import type { Message } from '../messages/message';
import type { ErrorHandler } from './outcome';
import type { MessageProcessor } from './processor';
import { Category, type ReceivedBody } from '../messages/schema';
import type { MessageFields, MessageProperties } from '../transport/types';

// Decorator metadata needs Symbol.metadata, which Node 20 lacks; TypeScript's and esbuild's
// decorator helpers use it when it exists when a class is defined (after postage is imported).
(Symbol as { metadata?: symbol }).metadata ??= Symbol.for('Symbol.metadata');

/** What every handler gets besides the content: the whole envelope and the delivery. */
export interface HandlerContext {
  /** The processor running the handler. */
  readonly processor: MessageProcessor;
  /** The whole received envelope (fingerprint included). */
  readonly body: ReceivedBody;
  /** The envelope as a message instance (MessageCommand, MessageStatus...). */
  readonly message: Message<unknown>;
  /**
   * Delivery information: redelivered, routingKey, exchange, deliveryTag. After a counted
   * requeue on a classic queue this delivery came through the default exchange (`exchange` is
   * '' and `routingKey` the queue name): {@link HandlerContext.exchange} and
   * {@link HandlerContext.routingKey} keep the originals.
   */
  readonly fields: MessageFields;
  /** The exchange the message was first published to (kept across postage's counted requeues). */
  readonly exchange: string;
  /** The routing key the message was first published with (kept across postage's counted requeues). */
  readonly routingKey: string;
  /** AMQP properties: messageId, correlationId, replyTo, headers... */
  readonly properties: MessageProperties;
  /** The queue the message came from. */
  readonly queue: string;
  /** Which delivery of this message this is (1 the first time; counted across requeues). */
  readonly deliveries: number;
  /** Aborted when the processor's shutdown deadline passes: stop work and return. */
  readonly signal: AbortSignal;
  /** Per-message state shared by the beforeHandling and afterHandling hooks and the handlers. */
  readonly state: Record<string, unknown>;
}

/** A matcher's predicate over a received message (its envelope and delivery). */
export type MessagePredicate = (body: ReceivedBody, context: HandlerContext) => boolean;

/**
 * Sends an RPC reply: a MessageResult (or MessageResultError / MessageResultException), or any
 * other value, which is sent as `MessageResult(value)`. Only the first reply is sent.
 */
export type ReplyFunction = (result: unknown) => void;

/** A filter: gets the data (content or full body) and returns the data the handler gets; throws FilterError to skip the handler. */
export type MessageFilterFunction = (data: unknown, ...args: readonly unknown[]) => unknown;

/** Options of a handler. */
export interface HandlerOptions {
  /**
   * A JSON schema the content must match (compiled once). A message that does not match is
   * rejected without requeue (dead-lettered); an RPC gets a MessageResultError.
   */
  schema?: object;
  /**
   * Decides what happens when this handler throws (before the processor's `onError`).
   * @default the processor's onError, then log and dead-letter
   */
  onError?: ErrorHandler;
}

/** A registration, as collected by a processor. @internal */
export interface HandlerEntry {
  /** Declaration order across all classes. */
  readonly seq: number;
  readonly category: Category;
  readonly type: string;
  readonly name: string | null;
  readonly fullBody: boolean;
  /** The method or static field holding the handler. */
  readonly member: string | symbol;
  /** True for a static field holding a Handler class. */
  readonly isStatic: boolean;
  readonly options: HandlerOptions;
  /** A default (quit, restart): used only when the class chain has no handler of its own. */
  readonly fallback: boolean;
  /** Position of the declaring class in the chain (0 = the base-most); set when collected. */
  depth: number;
  /** The filters of the member, in application order (nearest the member first). */
  filters: Array<{ fn: MessageFilterFunction; args: readonly unknown[] }>;
  /** For a matcher: its predicate (type and name are then unused). */
  readonly matcher?: MessagePredicate;
}

/**
 * The base of class-based handlers: postage's `Handler`. The processor creates one instance per
 * message and awaits {@link Handler.call}.
 *
 * @example
 * ```ts
 * class EchoHandler extends Handler<EchoProcessor> {
 *   call() { console.log(this.data, this.processor.fingerprint); }
 * }
 * class EchoProcessor extends MessageProcessor {
 *   @MessageHandler('command', 'echo') static Echo = EchoHandler;
 * }
 * ```
 */
export abstract class Handler<P extends MessageProcessor = MessageProcessor, D = unknown> {
  constructor(
    /** The processor (postage's `self.processor`). */
    readonly processor: P,
    /** The content, or the full body for full-body handlers (postage's `self.data`). */
    readonly data: D,
    /** The reply function for RPC handlers (postage's `self.reply_func`). */
    readonly reply: ReplyFunction | undefined,
    /** The envelope and delivery. */
    readonly context: HandlerContext,
  ) {}

  /** Alias of {@link Handler.reply} for postage users. */
  get reply_func(): ReplyFunction | undefined {
    return this.reply;
  }

  /** Handles the message. For RPC, call `this.reply(...)` or return the value to reply with. */
  abstract call(): unknown;
}

const HANDLERS = Symbol('postage.handlers');
const FILTERS = Symbol('postage.filters');
let nextSeq = 0;

type Metadata = Record<symbol, unknown>;

/**
 * The decorator the handler decorators return: on a method, or on a static field holding a
 * Handler class. It has both signatures, so it compiles with standard decorators and with
 * `experimentalDecorators`.
 */
export interface HandlerDecorator {
  /** A standard (TC39) decorator. */
  (value: unknown, context: ClassMethodDecoratorContext | ClassFieldDecoratorContext): void;
  /** A legacy decorator (`experimentalDecorators`): a method's prototype or a static field's class. */
  (target: object, propertyKey: string | symbol, descriptor?: PropertyDescriptor): void;
}

/** What a decorator needs to know of the member it decorates, from either calling convention. */
interface MemberInfo {
  readonly kind: string;
  readonly name: string | symbol;
  readonly static: boolean;
  readonly private: boolean;
  readonly metadata: Metadata;
}

/** Legacy decorators have no metadata object: theirs, per class. */
const legacyMetadata = new WeakMap<object, Metadata>();

function legacyMember(
  target: object,
  key: string | symbol,
  descriptor: PropertyDescriptor | undefined,
): MemberInfo {
  // A static member gets the class itself, an instance member the class's prototype.
  const isStatic = typeof target === 'function';
  const owner = isStatic ? target : (target as { constructor: object }).constructor;
  let metadata = legacyMetadata.get(owner);
  if (metadata === undefined) {
    metadata = {};
    legacyMetadata.set(owner, metadata);
  }
  const kind =
    descriptor === undefined ? 'field' : typeof descriptor.value === 'function' ? 'method' : 'accessor';
  return { kind, name: key, static: isStatic, private: false, metadata };
}

/** A decorator that works in both conventions: `apply` gets the member, however it was called. */
function memberDecorator(apply: (member: MemberInfo) => void): HandlerDecorator {
  return (value: unknown, contextOrKey: unknown, descriptor?: PropertyDescriptor): void => {
    if (typeof contextOrKey === 'string' || typeof contextOrKey === 'symbol') {
      apply(legacyMember(value as object, contextOrKey, descriptor));
      return;
    }
    const context = contextOrKey as ClassMethodDecoratorContext | ClassFieldDecoratorContext;
    apply({
      kind: context.kind,
      name: context.name,
      static: context.static,
      private: context.private,
      metadata: context.metadata as Metadata,
    });
  };
}

function ownList<T>(metadata: Metadata, key: symbol, make: () => T): T {
  if (!Object.hasOwn(metadata, key)) metadata[key] = make();
  return metadata[key] as T;
}

function registration(
  category: Category,
  type: string,
  name: string | null,
  fullBody: boolean,
  options: HandlerOptions,
  fallback = false,
  matcher?: MessagePredicate,
): HandlerDecorator {
  // Decorator factories run in document order (application order puts methods before fields);
  // with experimentalDecorators, TypeScript runs a class's instance members' first.
  const seq = ++nextSeq;
  return memberDecorator((member) => {
    if (member.private) throw new TypeError('postage handlers cannot be #private members');
    if (member.kind !== 'method' && member.kind !== 'field') {
      throw new TypeError('postage handlers decorate methods, or static fields holding a Handler class');
    }
    if (member.kind === 'field' && !member.static) {
      throw new TypeError('a handler field must be static and hold a Handler class');
    }
    ownList<HandlerEntry[]>(member.metadata, HANDLERS, () => []).push({
      seq,
      category,
      type,
      name,
      fullBody,
      member: member.name,
      isStatic: member.static,
      options,
      fallback,
      depth: 0,
      filters: [],
      ...(matcher === undefined ? {} : { matcher }),
    });
  });
}

/**
 * Handles fire-and-forget messages of a type and name; the method gets `(content, context)`.
 * `name` omitted matches messages whose name is null, as in postage. Several handlers may
 * handle one message: all run, base classes first, in declaration order.
 */
export function MessageHandler(
  type: string,
  name: string | null = null,
  options: HandlerOptions = {},
): HandlerDecorator {
  return registration(Category.message, type, name, false, options);
}

/** Like {@link MessageHandler}, but the method gets the full body (fingerprint included). */
export function MessageHandlerFullBody(
  type: string,
  name: string | null = null,
  options: HandlerOptions = {},
): HandlerDecorator {
  return registration(Category.message, type, name, true, options);
}

/**
 * Handles RPC calls of a type and name; the method gets `(content, reply, context)`. Call
 * `reply(result)`, or return the value (or a MessageResult) to reply with. A throw replies
 * `MessageResultException(error name, message)`. Returning an `Outcome` settles the
 * request instead: a reply already sent stands, otherwise deadLetter answers a
 * MessageResultError naming its reason, ack one saying no value was given, and requeue answers
 * on a later delivery. One RPC handler per (type, name): a subclass's handler replaces its base
 * class's.
 */
export function RpcHandler(
  type: string,
  name: string | null = null,
  options: HandlerOptions = {},
): HandlerDecorator {
  return registration(Category.rpc, type, name, false, options);
}

/**
 * Handles every fire-and-forget message the predicate accepts, besides (type, name) handlers:
 * all matching handlers run, keyed ones first. The method gets `(content, context)`.
 */
export function MessageMatcher(predicate: MessagePredicate, options: HandlerOptions = {}): HandlerDecorator {
  return registration(Category.message, '', null, false, options, false, predicate);
}

/**
 * Handles the RPC calls the predicate accepts. An RPC needs exactly one handler: when a keyed
 * handler and a matcher (or two matchers) accept one call, the caller gets a MessageResultError
 * naming them, and no handler runs.
 */
export function RpcMatcher(predicate: MessagePredicate, options: HandlerOptions = {}): HandlerDecorator {
  return registration(Category.rpc, '', null, false, options, false, predicate);
}

/** A default handler (quit, restart): replaced by any handler the class chain declares for the same message. @internal */
export function DefaultHandler(type: string, name: string): HandlerDecorator {
  return registration(Category.message, type, name, false, {}, true);
}

/**
 * Runs `filter(data, ...args)` before the handler and gives the handler what it returns. A
 * filter that throws {@link FilterError} skips the handler (the message is still acked).
 * Filters run in decorator order nearest the member first, as in postage.
 */
export function MessageFilter(filter: MessageFilterFunction, ...args: readonly unknown[]): HandlerDecorator {
  return memberDecorator((member) => {
    if (member.private) throw new TypeError('postage filters cannot be on #private members');
    const filters = ownList<Map<string | symbol, HandlerEntry['filters']>>(
      member.metadata,
      FILTERS,
      () => new Map(),
    );
    const list = filters.get(member.name) ?? [];
    list.push({ fn: filter, args });
    filters.set(member.name, list);
  });
}

/**
 * The handlers of a processor class, base classes first, each class in declaration order.
 * An entry a subclass redeclares (same member, same message) replaces its base's.
 * @internal
 */
export function collectHandlers(constructor: abstract new (...args: never[]) => unknown): HandlerEntry[] {
  // Each class's own metadata (standard decorators define it on the class they decorate; a
  // class without decorators inherits its base's), then its legacy registry; base classes first.
  const metadataKey = (Symbol as { metadata?: symbol }).metadata as symbol;
  const chain: Metadata[][] = [];
  for (let c: unknown = constructor; typeof c === 'function'; c = Object.getPrototypeOf(c)) {
    const own: Metadata[] = [];
    if (Object.hasOwn(c, metadataKey)) {
      const metadata = (c as unknown as Record<symbol, Metadata | undefined>)[metadataKey];
      if (metadata !== undefined && metadata !== null) own.push(metadata);
    }
    const legacy = legacyMetadata.get(c);
    if (legacy !== undefined) own.push(legacy);
    chain.unshift(own);
  }
  const entries: HandlerEntry[] = [];
  const filtersOf = (member: string | symbol): HandlerEntry['filters'] => {
    for (let i = chain.length - 1; i >= 0; i--) {
      for (const own of chain[i] as Metadata[]) {
        if (!Object.hasOwn(own, FILTERS)) continue;
        const list = (own[FILTERS] as Map<string | symbol, HandlerEntry['filters']>).get(member);
        if (list !== undefined) return list;
      }
    }
    return [];
  };
  for (const [depth, owns] of chain.entries()) {
    const list = owns
      .flatMap((own) => (Object.hasOwn(own, HANDLERS) ? (own[HANDLERS] as HandlerEntry[]) : []))
      .sort((a, b) => a.seq - b.seq);
    for (const entry of list) {
      const same = entries.findIndex(
        (e) =>
          e.member === entry.member &&
          e.category === entry.category &&
          // A subclass redeclaring a matcher member replaces it, whatever its predicate.
          (entry.matcher !== undefined
            ? e.matcher !== undefined
            : e.matcher === undefined && e.type === entry.type && e.name === entry.name),
      );
      if (same >= 0) entries.splice(same, 1);
      entries.push({ ...entry, depth, filters: filtersOf(entry.member) });
    }
  }
  return entries;
}
