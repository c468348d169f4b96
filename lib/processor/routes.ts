/**
 * Routes: a handler with its filters, schema, error handler and (for matchers) predicate; how
 * they are built from the decorators; the per-message context; RPC replies.
 */
import type { Encoder } from '../messages/encoder';
import { ErrorCode, PostageError, type ValidationError } from '../errors';
import {
  Handler,
  type HandlerContext,
  type HandlerEntry,
  type HandlerOptions,
  type MessageFilterFunction,
  type MessagePredicate,
  type ReplyFunction,
} from './handlers';
import type { Logger } from '../logger';
import { Message, MessageResult, MessageResultException } from '../messages/message';
import type { ErrorHandler } from './outcome';
import { originalRoute } from './poison';
import type { MessageProcessor } from './processor';
import { Category, compileSchema, type ReceivedBody } from '../messages/schema';
import type { MessageFields, MessageProperties, TransportMessage } from '../transport/types';

/** A function handler: `(data, context)`, or `(data, reply, context)` for RPC. */
export type HandlerFunction = (data: never, ...rest: never[]) => unknown;

/** A class-based handler. */
export type HandlerClass = new (
  processor: MessageProcessor,
  data: unknown,
  reply: ReplyFunction | undefined,
  context: HandlerContext,
) => Handler;

/** A registered handler, ready to run. @internal */
export interface Route {
  readonly label: string;
  readonly fullBody: boolean;
  readonly filters: HandlerEntry['filters'];
  readonly validate: ((value: unknown) => void) | undefined;
  readonly onError: ErrorHandler | undefined;
  readonly matcher: MessagePredicate | undefined;
  readonly invoke: (data: unknown, reply: ReplyFunction | undefined, context: HandlerContext) => unknown;
}

/** Builds a route for a function or a Handler class (`this` is the processor). @internal */
export function buildRoute(
  processor: MessageProcessor,
  label: string,
  handler: HandlerFunction | HandlerClass,
  fullBody: boolean,
  filters: HandlerEntry['filters'],
  options: HandlerOptions,
  matcher: MessagePredicate | undefined,
): Route {
  const validate = options.schema === undefined ? undefined : compileSchema(options.schema);
  let invoke: Route['invoke'];
  if (isHandlerClass(handler)) {
    invoke = (data, reply, context) => new handler(processor, data, reply, context).call();
  } else {
    const fn = handler as (...args: unknown[]) => unknown;
    invoke = (data, reply, context) =>
      reply === undefined ? fn.call(processor, data, context) : fn.call(processor, data, reply, context);
  }
  return { label, fullBody, filters, validate, onError: options.onError, matcher, invoke };
}

/** Filters as given to a registration: a function, or a function with its extra arguments. @internal */
export function normalizeFilters(
  filters: ReadonlyArray<MessageFilterFunction | readonly [MessageFilterFunction, ...unknown[]]> | undefined,
): HandlerEntry['filters'] {
  return (filters ?? []).map((f) =>
    typeof f === 'function' ? { fn: f, args: [] } : { fn: f[0], args: f.slice(1) },
  );
}

/** A content that fails its handler's schema. @internal */
export class InvalidContent {
  constructor(readonly error: ValidationError) {}
}

/** Runs the filters, then the schema check (its failure is an {@link InvalidContent}). @internal */
export function prepare(route: Route, data: unknown): unknown {
  let filtered = data;
  for (const filter of route.filters) filtered = filter.fn(filtered, ...filter.args);
  if (route.validate !== undefined) {
    try {
      route.validate(route.fullBody ? (filtered as ReceivedBody).content : filtered);
    } catch (err) {
      throw new InvalidContent(err as ValidationError);
    }
  }
  return filtered;
}

function isHandlerClass(value: unknown): value is HandlerClass {
  return typeof value === 'function' && value.prototype instanceof Handler;
}

/** The key of (category, type, name) handlers (to group registrations). @internal */
export function routeKey(category: Category, type: string, name: string | null): string {
  return name === null ? `${category}\u0000${type}\u0001` : `${category}\u0000${type}\u0000${name}`;
}

/**
 * Handlers by (category, type, name). Nested maps, so that the lookup of every message builds no
 * key string (a concatenated key cost as much as the rest of the routing). @internal
 */
export class RouteTable {
  readonly #byCategory: Record<Category, Map<string, Map<string | null, Route[]>>> = {
    message: new Map(),
    rpc: new Map(),
  };

  get(category: Category, type: string, name: string | null): Route[] | undefined {
    return this.#byCategory[category].get(type)?.get(name);
  }

  /** True when some handler of the category is registered. */
  has(category: Category): boolean {
    for (const byName of this.#byCategory[category].values()) {
      for (const routes of byName.values()) if (routes.length > 0) return true;
    }
    return false;
  }

  set(category: Category, type: string, name: string | null, routes: Route[]): void {
    const byType = this.#byCategory[category];
    let byName = byType.get(type);
    if (byName === undefined) {
      byName = new Map();
      byType.set(type, byName);
    }
    byName.set(name, routes);
  }
}

/** Throws when a handler entry does not hold a function. @internal */
export function assertHandler(entry: HandlerEntry, handler: unknown): asserts handler is HandlerFunction {
  if (typeof handler !== 'function') {
    throw new PostageError(
      ErrorCode.INVALID_ARGUMENT,
      `handler ${String(entry.member)} is not a function or class`,
    );
  }
}

/** The per-message context handlers get. The message instance and state are built only if asked for. @internal */
export class DeliveryContext implements HandlerContext {
  private built: Message<unknown> | undefined;
  private shared: Record<string, unknown> | undefined;

  constructor(
    readonly processor: MessageProcessor,
    readonly body: ReceivedBody,
    private readonly delivery: TransportMessage,
    readonly queue: string,
    readonly deliveries: number,
    readonly signal: AbortSignal,
  ) {}

  get message(): Message<unknown> {
    this.built ??= Message.fromBody(this.body);
    return this.built;
  }
  get state(): Record<string, unknown> {
    this.shared ??= {};
    return this.shared;
  }
  get fields(): MessageFields {
    return this.delivery.fields;
  }
  get exchange(): string {
    return originalRoute(this.delivery).exchange;
  }
  get routingKey(): string {
    return originalRoute(this.delivery).routingKey;
  }
  get properties(): MessageProperties {
    return this.delivery.properties;
  }
}

/** Where replies go out (the consuming channel, so a reply always precedes the request's ack). @internal */
export interface ReplyChannel {
  publish(exchange: string, routingKey: string, content: Buffer, properties: Record<string, unknown>): void;
}

/** Sends an RPC reply for `request`, with the processor's fingerprint. @internal */
export function sendReply(
  channel: ReplyChannel,
  encoder: Encoder,
  fingerprint: Readonly<Record<string, string>>,
  logger: Logger,
  debug: boolean,
  request: TransportMessage,
  result: unknown,
): void {
  const replyTo = request.properties.replyTo;
  if (typeof replyTo !== 'string' || replyTo === '') {
    logger.warn({ messageId: request.properties.messageId }, 'rpc request without reply_to: reply dropped');
    return;
  }
  const reply = result instanceof Message ? result : new MessageResult(result);
  reply.setFingerprint(fingerprint);
  let content: Buffer;
  try {
    content = encoder.encode(reply.body);
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    content = encoder.encode(new MessageResultException(error.name, error.message).body);
  }
  const properties: Record<string, unknown> = { contentType: encoder.contentType };
  const correlationId = request.properties.correlationId;
  if (correlationId !== undefined) properties['correlationId'] = correlationId;
  try {
    channel.publish('', replyTo, content, properties);
    if (debug) logger.debug({ replyTo, correlationId }, '--> reply');
  } catch (err) {
    logger.warn({ err, replyTo }, 'rpc reply not sent: channel closed');
  }
}

/**
 * Builds the routes of a processor from its collected handler entries: (type, name) handlers
 * into `routes`, matchers into `matchers`. @internal
 */
export function buildRoutes(
  processor: MessageProcessor,
  entries: HandlerEntry[],
  routes: RouteTable,
  matchers: Record<Category, Route[]>,
): void {
  const byKey = new Map<string, HandlerEntry[]>();
  for (const entry of entries) {
    if (entry.matcher !== undefined) {
      const handler = (processor as unknown as Record<string | symbol, unknown>)[entry.member];
      assertHandler(entry, handler);
      matchers[entry.category].push(
        buildRoute(
          processor,
          `${String(entry.member)} (matcher)`,
          handler,
          entry.fullBody,
          entry.filters,
          entry.options,
          entry.matcher,
        ),
      );
      continue;
    }
    const key = routeKey(entry.category, entry.type, entry.name);
    const list = byKey.get(key) ?? [];
    list.push(entry);
    byKey.set(key, list);
  }
  for (const list of byKey.values()) {
    let chosen = list.some((e) => !e.fallback) ? list.filter((e) => !e.fallback) : list;
    if (chosen[0]?.category === Category.rpc && chosen.length > 1) {
      // The most derived class's handler wins; two in one class are ambiguous.
      const last = chosen[chosen.length - 1] as HandlerEntry;
      const sameClass = chosen.filter((e) => e.depth === last.depth);
      if (sameClass.length > 1) {
        throw new PostageError(
          ErrorCode.AMBIGUOUS_HANDLER,
          `several RPC handlers for ${last.type} '${String(last.name)}': ${sameClass.map((e) => String(e.member)).join(', ')}`,
        );
      }
      chosen = [last];
    }
    const first = list[0] as HandlerEntry;
    routes.set(
      first.category,
      first.type,
      first.name,
      chosen.map((entry) => {
        const handler = entry.isStatic
          ? (processor.constructor as unknown as Record<string | symbol, unknown>)[entry.member]
          : (processor as unknown as Record<string | symbol, unknown>)[entry.member];
        assertHandler(entry, handler);
        return buildRoute(
          processor,
          `${String(entry.member)} (${entry.type} '${String(entry.name)}')`,
          handler,
          entry.fullBody,
          entry.filters,
          entry.options,
          undefined,
        );
      }),
    );
  }
}
