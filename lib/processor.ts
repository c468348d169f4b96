import { spawn } from 'node:child_process';

import type { Connection } from './connection';
import { GenericConsumer, type ConsumerOptions, type Eqk } from './consumer';
import type { Encoder } from './encoder';
import {
  ErrorCode,
  FilterError,
  PostageError,
  RejectMessage,
  ValidationError,
  toPostageError,
} from './errors';
import { SafeEmitter } from './events';
import { fingerprintDict, type FingerprintLike } from './fingerprint';
import {
  DefaultHandler,
  Handler,
  collectHandlers,
  type HandlerContext,
  type HandlerEntry,
  type HandlerOptions,
  type MessageFilterFunction,
  type ReplyFunction,
} from './handlers';
import { Message, MessageResult, MessageResultError, MessageResultException } from './message';
import { Category, assertEnvelope, compileSchema, type ReceivedBody } from './schema';
import type { MessageFields, MessageProperties, TransportMessage } from './transport/types';

/** Why a processor stopped. */
export type StopReason = 'quit' | 'restart' | 'stopped';

/** What {@link MessageProcessor.run} resolves to. */
export interface RunResult {
  readonly reason: StopReason;
}

/** Lifecycle of a processor, as a discriminated union on `type`. */
export type ProcessorStatus =
  | { type: 'consuming'; queues: readonly string[] }
  | { type: 'stopping'; reason: StopReason }
  | { type: 'stopped'; reason: StopReason };

/** Events of a {@link MessageProcessor}. */
export interface ProcessorEvents {
  status: [status: ProcessorStatus];
  error: [error: PostageError];
}

/** Options of {@link MessageProcessor}. */
export interface ProcessorOptions extends ConsumerOptions {
  /** The processor's fingerprint, set on its RPC replies. */
  fingerprint?: FingerprintLike;
  /** Bindings: a list of (Exchange, [(queue, key), ...]). @default the class's static `eqk` */
  eqk?: Eqk;
}

/** Options of {@link MessageProcessor.registerHandler}. */
export interface RegisterOptions extends HandlerOptions {
  /** An RPC handler (gets `(content, reply, context)`). @default false */
  rpc?: boolean;
  /** Pass the full body instead of the content. @default false */
  fullBody?: boolean;
  /** Filters, applied in order. */
  filters?: ReadonlyArray<MessageFilterFunction | readonly [MessageFilterFunction, ...unknown[]]>;
}

/** A function handler: `(data, context)`, or `(data, reply, context)` for RPC. */
export type HandlerFunction = (data: never, ...rest: never[]) => unknown;

type HandlerClass = new (
  processor: MessageProcessor,
  data: unknown,
  reply: ReplyFunction | undefined,
  context: HandlerContext,
) => Handler;

interface Route {
  readonly label: string;
  readonly fullBody: boolean;
  readonly filters: HandlerEntry['filters'];
  readonly validate: ((value: unknown) => void) | undefined;
  readonly invoke: (data: unknown, reply: ReplyFunction | undefined, context: HandlerContext) => unknown;
}

/**
 * Processes incoming messages with handlers keyed by (type, name): decorate methods with
 * `@MessageHandler`, `@RpcHandler` or `@MessageHandlerFullBody`, or register functions with
 * {@link MessageProcessor.registerHandler}. `command quit` and `command restart` have default
 * handlers; declare your own for those messages to replace them.
 *
 * Outcomes: a message is acked after its handlers ran; a handler that throws, or throws
 * RejectMessage, gets it rejected without requeue (dead-lettered if the queue has a DLX); an
 * RPC is always answered (a throw replies MessageResultException, no handler replies
 * MessageResultError); a body that is not JSON or not a postage envelope is logged and
 * rejected without requeue; an unknown fire-and-forget message is acked and logged at debug.
 *
 * @example
 * ```ts
 * class EchoReceiveProcessor extends MessageProcessor {
 *   static override eqk: Eqk = [[EchoExchange, [['echo-queue', 'echo-rk']]]];
 *   @MessageHandler('command', 'echo')
 *   msgEcho(content: { parameters: unknown }) { console.log(content.parameters); }
 *   @RpcHandler('command', 'add')
 *   add(content: { parameters: [number, number] }) { return content.parameters[0] + content.parameters[1]; }
 * }
 * await new EchoReceiveProcessor({ fingerprint: new Fingerprint('echo_receive', 'controller') }).run();
 * ```
 */
export class MessageProcessor extends SafeEmitter<ProcessorEvents> {
  /** Default bindings. */
  static eqk: Eqk = [];

  /** The consumer (postage's `self.consumer`). */
  readonly consumer: GenericConsumer;
  /** The processor's fingerprint (dictionary form). */
  readonly fingerprint: Readonly<Record<string, string>>;
  readonly encoder: Encoder;
  /**
   * When true (set by {@link MicroScheduler}), a restart only stops this processor: the
   * scheduler restarts the program once every processor has stopped.
   */
  managedRestart = false;
  readonly #routes = new Map<string, Route[]>();
  readonly #debug: boolean;
  #inFlight = 0;
  #idle: (() => void) | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<RunResult> | undefined;
  #finished: Promise<RunResult>;
  #finish!: (result: RunResult) => void;
  #fail!: (error: PostageError) => void;

  constructor(options: ProcessorOptions = {}) {
    const consumer = new GenericConsumer({
      ...options,
      eqk: options.eqk ?? (new.target as typeof MessageProcessor).eqk,
    });
    super(options.logger ?? consumer.logger);
    this.consumer = consumer;
    this.encoder = consumer.encoder;
    this.#debug = consumer.connection.config.debug;
    this.fingerprint = Object.freeze(fingerprintDict(options.fingerprint));
    this.#finished = new Promise<RunResult>((resolve, reject) => {
      this.#finish = resolve;
      this.#fail = reject;
    });
    // Nobody may await run(): an unobserved rejection must not crash the process.
    this.#finished.catch(() => undefined);
    this.consumer.on('lost', (error) => this.#onLost(error));
    this.consumer.on('error', (error) => this.reportError(error, 'consumer'));
    this.#buildRoutes(collectHandlers(new.target));
  }

  /** The connection the processor consumes on. */
  get connection(): Connection {
    return this.consumer.connection;
  }

  /** Messages being handled right now. */
  get handling(): number {
    return this.#inFlight;
  }

  /**
   * Registers a function handler (the plain alternative to the decorators). A function gets
   * `(data, context)`, or `(data, reply, context)` for RPC; `this` is the processor.
   */
  registerHandler(
    type: string,
    name: string | null,
    handler: HandlerFunction | HandlerClass,
    options: RegisterOptions = {},
  ): this {
    const category = options.rpc === true ? Category.rpc : Category.message;
    const key = routeKey(category, type, name);
    const existing = this.#routes.get(key) ?? [];
    if (category === Category.rpc && existing.length > 0) {
      throw new PostageError(
        ErrorCode.AMBIGUOUS_HANDLER,
        `an RPC handler for ${type} '${String(name)}' exists already`,
      );
    }
    const filters = (options.filters ?? []).map((f) =>
      typeof f === 'function' ? { fn: f, args: [] } : { fn: f[0], args: f.slice(1) },
    );
    existing.push(
      this.#route(`${type} '${String(name)}'`, handler, options.fullBody === true, filters, options),
    );
    this.#routes.set(key, existing);
    return this;
  }

  /** Declares the bindings and starts consuming; resolves once every queue is consumed. */
  start(): Promise<void> {
    this.#starting ??= (async () => {
      await this.consumer.startConsuming((message, queue) => this.#onDelivery(message, queue));
      this.emit('status', { type: 'consuming', queues: this.consumer.queueNames });
    })();
    return this.#starting;
  }

  /**
   * Starts and runs until the processor quits, restarts or is stopped. Rejects if it cannot
   * start or loses its channel.
   */
  async run(): Promise<RunResult> {
    try {
      await this.start();
    } catch (err) {
      const error = toPostageError(err, ErrorCode.CONNECTION_FAILED, 'processor start');
      await this.stop('stopped').catch(() => undefined);
      throw error;
    }
    return this.#finished;
  }

  /** Resolves when the processor has stopped (whatever started it). */
  get done(): Promise<RunResult> {
    return this.#finished;
  }

  /** Stops: cancels its consumers, waits for the handlers in flight, closes. Idempotent. */
  stop(reason: StopReason = 'stopped'): Promise<RunResult> {
    this.#stopping ??= this.#doStop(reason);
    return this.#stopping;
  }

  /** Alias of {@link MessageProcessor.stop}. */
  close(): Promise<RunResult> {
    return this.stop('stopped');
  }

  /** Stops the processor (what the `quit` command does). Returns at once. */
  quit(): void {
    void this.stop('quit');
  }

  /**
   * Stops the processor cleanly, then runs the same program again in a new process (what the
   * `restart` command does). Returns at once.
   */
  restart(): void {
    void this.stop('restart').then((result) => {
      if (result.reason === 'restart' && !this.managedRestart) this.restartProcess();
    });
  }

  /**
   * Starts the replacement process: the same Node binary, flags, script, arguments, working
   * directory and environment, sharing this terminal. Override to hand restarts to a supervisor.
   */
  restartProcess(): void {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      cwd: process.cwd(),
      env: process.env,
    });
    child.on('error', (err) => this.logger.error('restart failed', { error: err }));
    // The replacement must outlive this process.
    child.unref();
    this.logger.info('restarted', { pid: child.pid });
  }

  /** The default `command quit` handler. */
  @DefaultHandler('command', 'quit')
  msg_quit(): void {
    this.quit();
  }

  /** The default `command restart` handler. */
  @DefaultHandler('command', 'restart')
  msg_restart(): void {
    this.restart();
  }

  async #doStop(reason: StopReason): Promise<RunResult> {
    this.emit('status', { type: 'stopping', reason });
    await this.#starting?.catch(() => undefined);
    await this.consumer.stopConsuming();
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
    }
    await this.consumer.close();
    const result: RunResult = { reason };
    this.emit('status', { type: 'stopped', reason });
    this.#finish(result);
    return result;
  }

  #onLost(error: PostageError): void {
    if (this.#stopping !== undefined) return;
    this.reportError(error, 'processor lost its channel');
    this.#fail(error);
    void this.stop('stopped');
  }

  #onDelivery(message: TransportMessage | null, queue: string): void {
    if (message === null) {
      this.reportError(
        new PostageError(
          ErrorCode.NOT_FOUND,
          `the broker cancelled the consumer of queue '${queue}' (deleted?)`,
        ),
        'processor',
      );
      return;
    }
    this.#inFlight++;
    void this.#dispatch(message, queue);
  }

  async #dispatch(message: TransportMessage, queue: string): Promise<void> {
    try {
      let body: unknown;
      try {
        body = this.encoder.decode(message.content);
        assertEnvelope(body);
      } catch (err) {
        this.#badMessage(message, queue, err);
        return;
      }
      if (this.#debug) {
        this.logger.debug('<-- receive', {
          queue,
          type: body.type,
          name: body.name,
          category: body.category,
        });
      }
      if (body.category === Category.rpc) await this.#dispatchRpc(message, queue, body);
      else await this.#dispatchMessage(message, queue, body);
    } catch (err) {
      // Only a bug in postage gets here; never lose the message silently, never crash.
      this.logger.error('dispatch failed', { error: err, queue });
      this.consumer.reject(message, false);
    } finally {
      if (--this.#inFlight === 0 && this.#idle !== undefined) {
        const idle = this.#idle;
        this.#idle = undefined;
        idle();
      }
    }
  }

  async #dispatchMessage(message: TransportMessage, queue: string, body: ReceivedBody): Promise<void> {
    const routes = this.#routes.get(routeKey(Category.message, body.type, body.name));
    if (routes === undefined) {
      this.logger.debug('no handler for message: acked', { type: body.type, name: body.name, queue });
      this.consumer.ack(message);
      return;
    }
    const context = new DeliveryContext(this, body, message, queue);
    let rejected = false;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i] as Route;
      // Handlers must not see each other's changes: copies for all but the last one.
      const source = route.fullBody ? body : body.content;
      const copy = i < routes.length - 1 ? structuredClone(source) : source;
      try {
        const data = this.#prepare(route, copy);
        await route.invoke(data, undefined, context);
      } catch (err) {
        if (err instanceof FilterError) continue;
        rejected = true;
        if (err instanceof InvalidContent) {
          this.logger.error('invalid content: message rejected', {
            handler: route.label,
            reason: err.error.message,
          });
        } else if (err instanceof RejectMessage) {
          this.logger.info('message rejected by its handler', { handler: route.label, reason: err.message });
        } else {
          this.logger.error('handler failed: message rejected', { handler: route.label, error: err });
        }
      }
    }
    if (rejected) this.consumer.reject(message, false);
    else this.consumer.ack(message);
  }

  async #dispatchRpc(message: TransportMessage, queue: string, body: ReceivedBody): Promise<void> {
    const routes = this.#routes.get(routeKey(Category.rpc, body.type, body.name));
    const label = `${body.type} '${String(body.name)}'`;
    let replied = false;
    const reply: ReplyFunction = (result) => {
      if (replied) {
        this.logger.warn('second reply to one RPC call ignored', { handler: label });
        return;
      }
      replied = true;
      this.#sendReply(message, result);
    };
    const route = routes?.[routes.length - 1];
    if (route === undefined) {
      reply(new MessageResultError(`no handler for rpc ${label}`));
      this.logger.debug('no handler for rpc: answered with an error', {
        type: body.type,
        name: body.name,
        queue,
      });
      this.consumer.ack(message);
      return;
    }
    const context = new DeliveryContext(this, body, message, queue);
    try {
      const data = this.#prepare(route, route.fullBody ? body : body.content);
      const returned = await route.invoke(data, reply, context);
      if (!replied) {
        reply(
          returned === undefined
            ? new MessageResultError(`the rpc handler for ${label} returned without replying`)
            : returned,
        );
      }
      this.consumer.ack(message);
    } catch (err) {
      if (err instanceof FilterError) {
        if (!replied) reply(new MessageResultError(`rpc ${label} filtered out: ${err.message}`));
        this.consumer.ack(message);
        return;
      }
      if (err instanceof InvalidContent) {
        // Bad input is the caller's error, not an exception of the handler.
        if (!replied) reply(new MessageResultError(`invalid content for rpc ${label}: ${err.error.message}`));
        this.logger.warn('rpc with invalid content: answered with an error', {
          handler: label,
          reason: err.error.message,
        });
        this.consumer.reject(message, false);
        return;
      }
      const error = err instanceof Error ? err : new Error(String(err));
      if (!replied) reply(new MessageResultException(error.name, error.message));
      if (err instanceof RejectMessage) {
        this.logger.info('rpc rejected by its handler', { handler: label, reason: error.message });
      } else {
        this.logger.error('rpc handler failed: replied with the exception', { handler: label, error });
      }
      this.consumer.reject(message, false);
    }
  }

  /** Runs the filters, then the schema check (its failure is an {@link InvalidContent}). */
  #prepare(route: Route, data: unknown): unknown {
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

  #sendReply(request: TransportMessage, result: unknown): void {
    const replyTo = request.properties.replyTo;
    if (typeof replyTo !== 'string' || replyTo === '') {
      this.logger.warn('rpc request without reply_to: reply dropped', {
        messageId: request.properties.messageId,
      });
      return;
    }
    const reply = result instanceof Message ? result : new MessageResult(result);
    reply.setFingerprint(this.fingerprint);
    let content: Buffer;
    try {
      content = this.encoder.encode(reply.body);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      content = this.encoder.encode(new MessageResultException(error.name, error.message).body);
    }
    const properties: Record<string, unknown> = { contentType: this.encoder.contentType };
    const correlationId = request.properties.correlationId;
    if (correlationId !== undefined) properties['correlationId'] = correlationId;
    try {
      this.consumer.publish('', replyTo, content, properties);
      if (this.#debug) this.logger.debug('--> reply', { replyTo, correlationId });
    } catch (err) {
      this.logger.warn('rpc reply not sent: channel closed', { error: err });
    }
  }

  #badMessage(message: TransportMessage, queue: string, err: unknown): void {
    const error =
      err instanceof PostageError ? err : new ValidationError(ErrorCode.DECODE_FAILED, String(err));
    this.logger.error('bad message rejected', {
      queue,
      code: error.code,
      reason: error.message,
      messageId: message.properties.messageId,
      bytes: message.content.length,
    });
    // A caller waiting on an RPC gets an answer at once instead of a timeout.
    if (typeof message.properties.replyTo === 'string' && message.properties.replyTo !== '') {
      this.#sendReply(message, new MessageResultError(`invalid message: ${error.message}`));
    }
    this.consumer.reject(message, false);
  }

  #buildRoutes(entries: HandlerEntry[]): void {
    const byKey = new Map<string, HandlerEntry[]>();
    for (const entry of entries) {
      const key = routeKey(entry.category, entry.type, entry.name);
      const list = byKey.get(key) ?? [];
      list.push(entry);
      byKey.set(key, list);
    }
    for (const [key, list] of byKey) {
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
      this.#routes.set(
        key,
        chosen.map((entry) => {
          const handler = entry.isStatic
            ? (this.constructor as unknown as Record<string | symbol, unknown>)[entry.member]
            : (this as unknown as Record<string | symbol, unknown>)[entry.member];
          if (typeof handler !== 'function') {
            throw new PostageError(
              ErrorCode.INVALID_ARGUMENT,
              `handler ${String(entry.member)} is not a function or class`,
            );
          }
          return this.#route(
            `${String(entry.member)} (${entry.type} '${String(entry.name)}')`,
            handler as HandlerFunction | HandlerClass,
            entry.fullBody,
            entry.filters,
            entry.options,
          );
        }),
      );
    }
  }

  #route(
    label: string,
    handler: HandlerFunction | HandlerClass,
    fullBody: boolean,
    filters: HandlerEntry['filters'],
    options: HandlerOptions,
  ): Route {
    const validate = options.schema === undefined ? undefined : compileSchema(options.schema);
    let invoke: Route['invoke'];
    if (isHandlerClass(handler)) {
      invoke = (data, reply, context) => new handler(this, data, reply, context).call();
    } else {
      const fn = handler as (...args: unknown[]) => unknown;
      invoke = (data, reply, context) =>
        reply === undefined ? fn.call(this, data, context) : fn.call(this, data, reply, context);
    }
    return { label, fullBody, filters, validate, invoke };
  }
}

/** A content that fails its handler's schema. */
class InvalidContent {
  constructor(readonly error: ValidationError) {}
}

function isHandlerClass(value: unknown): value is HandlerClass {
  return typeof value === 'function' && value.prototype instanceof Handler;
}

function routeKey(category: Category, type: string, name: string | null): string {
  return name === null ? `${category}\u0000${type}\u0001` : `${category}\u0000${type}\u0000${name}`;
}

/** The per-message context handlers get. The message instance is built only if asked for. */
class DeliveryContext implements HandlerContext {
  private built: Message<unknown> | undefined;

  constructor(
    readonly processor: MessageProcessor,
    readonly body: ReceivedBody,
    private readonly delivery: TransportMessage,
    readonly queue: string,
  ) {}

  get message(): Message<unknown> {
    this.built ??= Message.fromBody(this.body);
    return this.built;
  }
  get fields(): MessageFields {
    return this.delivery.fields;
  }
  get properties(): MessageProperties {
    return this.delivery.properties;
  }
}
