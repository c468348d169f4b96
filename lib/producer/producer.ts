import { randomUUID } from 'node:crypto';

import type { ConnectionOptions } from '../connection/config';
import { Connection } from '../connection/connection';
import {
  CONTENT_HANDED_OVER,
  JsonEncoder,
  encodeEnvelopeJson,
  jsonEncoder,
  type Encoder,
} from '../messages/encoder';
import { ErrorCode, PostageError, RpcTimeoutError, ValidationError } from '../errors';
import { Exchange, type ExchangeDefinition, type ExchangeKey } from '../messages/exchange';
import { Fingerprint, fingerprintDict, type FingerprintLike } from '../messages/fingerprint';
import type { Logger } from '../logger';
import { Message, MessageCommand, MessageResult, RpcCommand, type RpcResult } from '../messages/message';
import {
  asProduced,
  wrapProducer,
  type COMMANDS,
  type NoCommands,
  type Produced,
  type QueueOnlyOptions,
} from './methods';
import { Publisher } from '../connection/publisher';
import { RpcClient, type RpcReplyMode } from './rpc-client';
import { Category, type MessageBody } from '../messages/schema';
import type { PublishOptions } from '../transport/types';

/**
 * Control options of `message_X(...)`, `message(...)`, `send()` and `forward()`, given as a
 * trailing object. `_eks` wins over `_key` (as postage's README states).
 */
export interface SendOptions {
  /** Publish to the first exchange of the producer's `eks` with this routing key. */
  _key?: string;
  /** Publish to exactly these (exchange, routing key) pairs, declaring the exchanges first. */
  _eks?: readonly ExchangeKey[];
}

/** Control options of `rpc_X(...)` and `call()`. */
export interface RpcOptions extends SendOptions {
  /** Seconds to wait for the reply, per attempt. @default the producer's rpcTimeout (30) */
  _timeout?: number;
  /** Attempts after the first one times out. @default the producer's maxRetry (4) */
  _max_retry?: number;
  /** Publish and return the reply queue's name at once; read it with `consume_rpc`. @default false */
  _queue_only?: boolean;
}

/** Options of {@link GenericProducer}. */
export interface ProducerOptions extends ConnectionOptions {
  /** Merged over the producer's own fingerprint (pid, host, user, vhost read now). */
  fingerprint?: FingerprintLike;
  /** Share a connection instead of opening one for this producer. */
  connection?: Connection;
  /** Default (exchange, routing key) pairs. @default the class's static `eks` */
  eks?: readonly ExchangeKey[];
  /** @default the class's static `encoder` (JSON) */
  encoder?: Encoder;
  /** Seconds to wait for an RPC reply, per attempt. @default the class's `rpc_timeout` (30) */
  rpcTimeout?: number;
  /** Retries after an RPC attempt times out. @default the class's `max_retry` (4) */
  maxRetry?: number;
  /**
   * `direct` (RabbitMQ direct reply-to with correlation ids) or `per-call` (a private reply queue
   * per call: needed to call Python postage servers, which reply without a correlation id).
   * @default POSTAGE_RPC_REPLY_MODE, else the class's `rpc_reply_mode` ('direct')
   */
  rpcReplyMode?: RpcReplyMode;
  /** Largest encoded message accepted, in bytes (RabbitMQ 3.10's own limit). @default 134_217_728 */
  maxMessageSize?: number;
  /**
   * Milliseconds `close()` waits for the publishes already made (awaited or not) to settle:
   * confirmed, returned or failed. What is still unsettled then rejects with CLOSED.
   * @default the confirmTimeout (30_000): every publish settles within it anyway
   */
  closeTimeout?: number;
  /**
   * Milliseconds after the producer's connection recovered from a loss during which an RPC
   * request that comes back unroutable is sent again with backoff (while the call has time
   * left) instead of failing: the server's queue may not be declared again yet. 0 disables.
   * @default 10_000
   */
  rpcRecoveryWindow?: number;
}

/** Default largest message: RabbitMQ 3.10's `max_message_size`. */
export const DEFAULT_MAX_MESSAGE_SIZE = 134_217_728;

/**
 * Default of {@link ProducerOptions.rpcRecoveryWindow}: a server's connection recovers on its
 * own schedule, up to `reconnect.maxDelay` (5 s, plus 20% jitter) after the producer's, and
 * then declares its queues again.
 */
export const DEFAULT_RPC_RECOVERY_WINDOW = 10_000;

const RAW = Symbol('postage.raw');

const SEND_KEYS: ReadonlySet<string> = new Set(['_key', '_eks']);
const RPC_KEYS: ReadonlySet<string> = new Set(['_key', '_eks', '_timeout', '_max_retry', '_queue_only']);

/** Anything a builder may return. */
type Built = Message<unknown> | Promise<Message<unknown>>;

/**
 * The base of message producers. Declare the default (exchange, routing key) pairs in `eks` and
 * the messages your component sends as `build_message_X` / `build_rpc_X` builders; the producer
 * then has `message_X(...)` and `rpc_X(...)` methods that build, fingerprint, encode and
 * publish them. A command with no builder is sent as a command named X with the arguments as
 * its parameters. Type the builder-less commands with the `Commands` map to have them checked.
 *
 * Create producers with `XxxProducer.create(options)` to have the generated methods typed.
 *
 * @example
 * ```ts
 * class EchoProducer extends GenericProducer<{ echo: string }> {
 *   static override eks = [[EchoExchange, 'echo-rk']] as const;
 *   build_message_status_online() { return new MessageStatus('online'); }
 * }
 * const producer = EchoProducer.create({ fingerprint: new Fingerprint('echo_send', 'application') });
 * await producer.message_echo('A test message');
 * await producer.message_status_online({ _key: 'status' });
 * const reply = await producer.rpc_echo('ping', { _timeout: 5 });
 * await producer.close();
 * ```
 */
export class GenericProducer<Commands extends object = NoCommands> {
  /** Default (exchange, routing key) pairs. */
  static eks: readonly ExchangeKey[] = [[Exchange, 'nokey']];
  /** Default encoder. */
  static encoder: Encoder = jsonEncoder;
  /** Default RPC timeout per attempt, in seconds. */
  static rpc_timeout = 30;
  /** Default retries after an RPC attempt times out. */
  static max_retry = 4;
  /** Default reply path. */
  static rpc_reply_mode: RpcReplyMode = 'direct';

  /** Phantom: carries the command map for the generated method types. */
  declare readonly [COMMANDS]?: Commands;

  /** The fingerprint added to every message this producer sends. */
  readonly fingerprint: Readonly<Record<string, string>>;
  readonly connection: Connection;
  readonly eks: readonly ExchangeKey[];
  readonly encoder: Encoder;
  /** Seconds. */
  readonly rpcTimeout: number;
  readonly maxRetry: number;
  readonly rpcReplyMode: RpcReplyMode;
  readonly maxMessageSize: number;
  protected readonly logger: Logger;
  readonly #ownsConnection: boolean;
  readonly #publisher: Publisher;
  readonly #rpcClient: RpcClient;
  readonly #debug: boolean;
  #closing: Promise<void> | undefined;
  readonly #generated = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  /** The fingerprint as JSON, when the encoder is the stock JSON one (the encode fast path). */
  readonly #fingerprintJson: string | undefined;
  /**
   * The instance behind the Proxy: hot paths run on it, not through the Proxy's trap (and
   * #private members only work on it). A symbol, so it cannot collide with a user's member.
   */
  private readonly [RAW]: this;

  constructor(options: ProducerOptions = {}) {
    const statics = this.constructor as typeof GenericProducer;
    this.#ownsConnection = options.connection === undefined;
    this.connection = options.connection ?? new Connection(options);
    this.logger = options.logger ?? this.connection.logger;
    this.#debug = this.connection.config.debug;
    const vhost = this.connection.config.endpoints[0]?.vhost;
    const own = new Fingerprint(null, null, vhost === undefined ? {} : { vhost }).asDict();
    this.fingerprint = Object.freeze({ ...own, ...fingerprintDict(options.fingerprint) });
    this.eks = options.eks ?? statics.eks;
    this.encoder = options.encoder ?? statics.encoder;
    this.rpcTimeout = positive(options.rpcTimeout ?? statics.rpc_timeout, 'rpcTimeout');
    this.maxRetry = nonNegativeInt(options.maxRetry ?? statics.max_retry, 'maxRetry');
    this.rpcReplyMode = replyMode(options.rpcReplyMode ?? envReplyMode() ?? statics.rpc_reply_mode);
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#fingerprintJson = isStockJson(this.encoder) ? JSON.stringify(this.fingerprint) : undefined;
    const closeTimeout = options.closeTimeout;
    if (closeTimeout !== undefined && !(closeTimeout >= 0)) {
      throw new PostageError(ErrorCode.INVALID_ARGUMENT, `closeTimeout must be >= 0 ms, got ${closeTimeout}`);
    }
    this.#publisher = new Publisher(this.connection, closeTimeout === undefined ? {} : { closeTimeout });
    const recoveryWindow = options.rpcRecoveryWindow ?? DEFAULT_RPC_RECOVERY_WINDOW;
    if (!(recoveryWindow >= 0)) {
      throw new PostageError(
        ErrorCode.INVALID_ARGUMENT,
        `rpcRecoveryWindow must be >= 0 ms, got ${recoveryWindow}`,
      );
    }
    this.#rpcClient = new RpcClient(
      this.#publisher,
      this.encoder,
      this.logger,
      this.connection,
      recoveryWindow,
    );
    this[RAW] = this;
    // The constructor returns the Proxy: `new XxxProducer()` has the generated methods too.
    return wrapProducer(this, (name) => this[RAW].#generatedMethod(name));
  }

  /**
   * Creates a producer typed with its generated `message_*` / `rpc_*` methods.
   * @example `const producer = EchoProducer.create({ url: 'amqp://localhost' });`
   */
  static create<T extends GenericProducer<object>, A extends unknown[]>(
    this: new (...args: A) => T,
    ...args: A
  ): Produced<T> {
    return asProduced(new this(...args));
  }

  /** RPC calls waiting for their reply. */
  get pendingCalls(): number {
    return this[RAW].#rpcClient.inFlight;
  }

  /** The first exchange of `eks` (where `_key` sends). */
  get default_exchange(): ExchangeDefinition | undefined {
    return this.eks[0]?.[0];
  }

  /** Opens the connection and the publishing channel now instead of on first use. */
  async connect(): Promise<void> {
    await this[RAW].#publisher.getChannel();
  }

  /**
   * Publishes a message to the producer's `eks` (or per `_key` / `_eks`), adding the producer's
   * fingerprint. Resolves when the broker confirmed every publish.
   * @throws {@link PublishError} UNROUTABLE when a publish reaches no queue, NACKED, or
   *   {@link ChannelError} (e.g. NOT_FOUND for a missing exchange); {@link ValidationError}
   *   when the message does not encode or is too large
   */
  send(message: Message<unknown>, options: SendOptions = {}): Promise<void> {
    const raw = this[RAW];
    return attempt(() => raw.#doSend(message, checkControl(options, SEND_KEYS, 'send()')));
  }

  /**
   * Sends an RPC message and resolves to its result (MessageResult, MessageResultError or
   * MessageResultException). After all retries time out it resolves to
   * `MessageResultException('TimeoutError')`; `result.unwrap()` throws the typed error.
   */
  call(message: Message<unknown>, options: QueueOnlyOptions): Promise<string>;
  call(message: Message<unknown>, options?: RpcOptions): Promise<RpcResult>;
  call(message: Message<unknown>, options: RpcOptions = {}): Promise<RpcResult | string> {
    const raw = this[RAW];
    return withCallerStack(attempt(() => raw.#doCall(message, checkControl(options, RPC_KEYS, 'call()'))));
  }

  /**
   * Sends a generic message (type and name `none`) whose content is `{args: [...]}`, as
   * postage's `message(*args)`. A trailing control-options object is taken off the arguments.
   */
  message(...args: unknown[]): Promise<void> {
    const raw = this[RAW];
    return attempt(() => {
      const [values, options] = splitControl(args, SEND_KEYS, 'message()');
      return raw.#doSend(Message.fromArgs(values), options);
    });
  }

  /** Publishes a raw body (a dictionary) as it is: no fingerprint is added. */
  forward(body: Readonly<Record<string, unknown>>, options: SendOptions = {}): Promise<void> {
    const raw = this[RAW];
    return attempt(() => {
      const targets = raw.#targets(checkControl(options, SEND_KEYS, 'forward()'));
      const content = raw.#encode(body);
      return raw.#publishAll(targets, content, undefined);
    });
  }

  /**
   * Reads RPC results from a reply queue returned by `rpc_X(..., {_queue_only: true})`.
   * @param options.count - results to wait for (default 1)
   * @param options.timeout - seconds (default the producer's rpcTimeout)
   * @throws {@link RpcTimeoutError} with the partial `results` when fewer came in time
   */
  consumeRpc(
    queue: string,
    options: { count?: number; timeout?: number; onReply?: (body: unknown) => void } = {},
  ): Promise<RpcResult[]> {
    const raw = this[RAW];
    return attempt(() =>
      raw.#rpcClient.consume(
        queue,
        nonNegativeInt(options.count ?? 1, 'count') || 1,
        positive(options.timeout ?? raw.rpcTimeout, 'timeout') * 1000,
        options.onReply,
      ),
    );
  }

  /** Alias of {@link GenericProducer.consumeRpc} for postage users. */
  consume_rpc(
    queue: string,
    options: { count?: number; timeout?: number; onReply?: (body: unknown) => void } = {},
  ): Promise<RpcResult[]> {
    return this.consumeRpc(queue, options);
  }

  /**
   * Closes the producer. New publishes and calls reject with CLOSED at once; publishes already
   * made, awaited or not, go out and settle first (confirmed, returned or failed, within
   * `closeTimeout`; what is left then rejects with CLOSED); pending RPC calls resolve to a
   * ConnectionError result; then the connection closes if the producer opened it. Idempotent
   * and safe to call concurrently: every call returns the same promise, which never rejects.
   */
  close(): Promise<void> {
    const raw = this[RAW];
    raw.#closing ??= raw.#shutDown();
    return raw.#closing;
  }

  async #shutDown(): Promise<void> {
    this.#rpcClient.close();
    await this.#publisher.close();
    if (this.#ownsConnection) await this.connection.close();
  }

  /** The generated method for a property name, or undefined. @internal */
  #generatedMethod(name: string): ((...args: unknown[]) => Promise<unknown>) | undefined {
    let method = this.#generated.get(name);
    if (method !== undefined) return method;
    // slice, not replace: postage's replace() turned message_send_message_x into 'send_x'.
    if (name.startsWith('message_') && name.length > 'message_'.length) {
      const command = name.slice('message_'.length);
      const builderKey = `build_message_${command}`;
      // No closure per call on this path (one send per message, so allocations count).
      method = (...args: unknown[]) => {
        try {
          const [values, options] = splitControl(args, SEND_KEYS, name);
          const built = this.#build('message', command, values, builderKey);
          if (built instanceof Promise) return built.then((message) => this.#doSend(message, options));
          return this.#doSend(built, options);
        } catch (err) {
          return Promise.reject(asError(err));
        }
      };
    } else if (name.startsWith('rpc_') && name.length > 'rpc_'.length) {
      const command = name.slice('rpc_'.length);
      const builderKey = `build_rpc_${command}`;
      method = (...args: unknown[]) => {
        try {
          const [values, options] = splitControl(args, RPC_KEYS, name);
          const built = this.#build('rpc', command, values, builderKey);
          return withCallerStack(
            built instanceof Promise
              ? built.then((message) => this.#doCall(message, options))
              : this.#doCall(built, options),
          );
        } catch (err) {
          return Promise.reject(asError(err));
        }
      };
    } else {
      return undefined;
    }
    this.#generated.set(name, method);
    return method;
  }

  #build(kind: 'message' | 'rpc', command: string, values: unknown[], builderKey: string): Built {
    const builder = (this as unknown as Record<string, unknown>)[builderKey];
    if (typeof builder === 'function') {
      const built = (builder as (...a: unknown[]) => Built).apply(this, values);
      return then(built, (message) => checkBuilt(message, kind, command));
    }
    // No builder: one argument is the parameters, none is {}, several are the array of them.
    const parameters = values.length === 0 ? {} : values.length === 1 ? values[0] : values;
    return kind === 'rpc' ? new RpcCommand(command, parameters) : new MessageCommand(command, parameters);
  }

  #doSend(message: Message<unknown>, options: SendOptions): Promise<void> {
    if (!(message instanceof Message)) {
      return Promise.reject(new PostageError(ErrorCode.INVALID_ARGUMENT, 'send() needs a Message'));
    }
    try {
      const targets = this.#targets(options);
      this.#stamp(message);
      return this.#publishAll(targets, this.#encodeBody(message.body), message);
    } catch (err) {
      return Promise.reject(asError(err));
    }
  }

  #doCall(message: Message<unknown>, options: RpcOptions): Promise<RpcResult | string> {
    try {
      if (!(message instanceof Message) || message.category !== Category.rpc) {
        throw new PostageError(
          ErrorCode.INVALID_ARGUMENT,
          'an RPC needs a message of category "rpc" (e.g. RpcCommand): no server would reply to this one',
        );
      }
      const target = this.#targets(options)[0] as ExchangeKey;
      const timeout = positive(options._timeout ?? this.rpcTimeout, '_timeout');
      const maxRetry = nonNegativeInt(options._max_retry ?? this.maxRetry, '_max_retry');
      const [exchange, routingKey] = target;
      this.#stamp(message);
      const content = this.#encodeBody(message.body);
      const label = `rpc '${String(message.name)}'`;
      const request = {
        exchange: exchange.name,
        routingKey,
        content,
        properties: this.#properties(exchange, message),
        label,
        // Each attempt declares the exchange (again after a reconnect) within the call's timeout.
        definition: exchange,
      };
      if (this.#debug) this.#logPublish(exchange.name, routingKey, message);
      if (options._queue_only === true) {
        return Promise.resolve(
          then(this.#declared(exchange), (): Promise<RpcResult | string> =>
            this.#rpcClient.publishQueueOnly(request, timeout * 1000),
          ),
        );
      }
      return this.#rpcClient.call(request, {
        timeoutMs: timeout * 1000,
        maxRetry,
        mode: this.rpcReplyMode,
      });
    } catch (err) {
      return Promise.reject(asError(err));
    }
  }

  /** The (exchange, key) pairs a send goes to: `_eks` wins over `_key`. */
  #targets(options: SendOptions): readonly ExchangeKey[] {
    let targets: readonly ExchangeKey[];
    if (options._eks !== undefined) {
      targets = options._eks;
    } else if (options._key !== undefined) {
      const first = this.eks[0];
      if (first === undefined)
        throw new PostageError(ErrorCode.INVALID_ARGUMENT, '_key needs a producer with eks');
      targets = [[first[0], options._key]];
    } else {
      targets = this.eks;
    }
    if (!Array.isArray(targets) || targets.length === 0) {
      throw new PostageError(ErrorCode.INVALID_ARGUMENT, 'no (exchange, routing key) pair to send to');
    }
    for (const pair of targets) {
      if (!Array.isArray(pair) || typeof pair[0]?.name !== 'string' || typeof pair[1] !== 'string') {
        throw new PostageError(
          ErrorCode.INVALID_ARGUMENT,
          'eks must be a list of [Exchange, routingKey] pairs',
        );
      }
    }
    return targets;
  }

  #stamp(message: Message<unknown>): void {
    const body = message.body;
    // Postage sets the producer's fingerprint over the message's.
    body.fingerprint = isEmpty(body.fingerprint)
      ? this.fingerprint
      : { ...body.fingerprint, ...this.fingerprint };
  }

  /** Encodes a stamped envelope: the cached fingerprint JSON when the encoder allows it. */
  #encodeBody(body: MessageBody<unknown>): Buffer {
    if (this.#fingerprintJson !== undefined) {
      const content = encodeEnvelopeJson(
        body as unknown as Record<string, unknown>,
        this.fingerprint,
        this.#fingerprintJson,
      );
      if (content !== undefined) {
        if (content.length > this.maxMessageSize) return this.#encode(body); // raises MESSAGE_TOO_LARGE
        return content;
      }
    }
    return this.#encode(body);
  }

  #encode(body: unknown): Buffer {
    const content = this.encoder.encode(body);
    if (content.length > this.maxMessageSize) {
      throw new ValidationError(
        ErrorCode.MESSAGE_TOO_LARGE,
        `message of ${content.length} bytes exceeds maxMessageSize (${this.maxMessageSize})`,
      );
    }
    return content;
  }

  #properties(exchange: ExchangeDefinition, message: Message<unknown> | undefined): PublishOptions {
    const properties: PublishOptions & { [CONTENT_HANDED_OVER]: boolean } = {
      contentType: this.encoder.contentType,
      messageId: randomUUID(),
      // Persistent for durable exchanges, so a broker restart does not lose queued messages.
      deliveryMode: exchange.durable ? 2 : 1,
      mandatory: true,
      // The stock JSON encoder returns a new buffer per message, which nothing writes to again.
      [CONTENT_HANDED_OVER]: this.#fingerprintJson !== undefined,
    };
    if (message !== undefined && typeof message.type === 'string') properties.type = message.type;
    return properties;
  }

  #publishAll(
    targets: readonly ExchangeKey[],
    content: Buffer,
    message: Message<unknown> | undefined,
  ): Promise<void> {
    if (targets.length === 1) {
      const [exchange, key] = targets[0] as ExchangeKey;
      return this.#publishOne(exchange, key, content, message);
    }
    return Promise.all(
      targets.map(([exchange, key]) => this.#publishOne(exchange, key, content, message)),
    ).then(() => undefined);
  }

  #publishOne(
    exchange: ExchangeDefinition,
    key: string,
    content: Buffer,
    message: Message<unknown> | undefined,
  ): Promise<void> {
    const properties = this.#properties(exchange, message);
    if (this.#debug) this.#logPublish(exchange.name, key, message);
    // The publisher declares the exchange (again after a reconnect) before it goes out.
    return this.#publisher.publish(exchange, key, content, properties);
  }

  #declared(exchange: ExchangeDefinition): Promise<void> | void {
    if (this.connection.isExchangeDeclared(exchange)) return undefined;
    return this.connection.declareExchange(exchange);
  }

  #logPublish(exchange: string, key: string, message: Message<unknown> | undefined): void {
    this.logger.debug(
      { exchange, key, type: message?.type, name: message?.name, category: message?.category },
      '--> publish',
    );
  }
}

/**
 * Splits a trailing control-options object off the arguments: the last argument is one when
 * it is a plain, non-empty object whose keys all start with `_`. An unknown `_` key (a typo
 * such as `_timout`) is an error rather than silently becoming data.
 * @internal
 */
export function splitControl(
  args: readonly unknown[],
  allowed: ReadonlySet<string>,
  where: string,
): [unknown[], RpcOptions] {
  const last = args[args.length - 1];
  if (!isPlainObject(last)) return [args as unknown[], NO_OPTIONS];
  // Most calls end with data (e.g. the parameters object): its first key says so, without
  // listing all of them.
  let any = false;
  for (const key in last) {
    if (!Object.hasOwn(last, key)) continue;
    if (key.charCodeAt(0) !== 95 /* _ */) return [args as unknown[], NO_OPTIONS];
    any = true;
  }
  if (!any) return [args as unknown[], NO_OPTIONS];
  return [args.slice(0, -1), checkControl(last as RpcOptions, allowed, where)];
}

/**
 * The control options given to `send()`, `call()`, `forward()` (and taken off a generated
 * method's arguments): an object whose every key is one of `allowed`. From JavaScript nothing
 * else checks them, and a typo (`{ _timout: 1 }`) must not be silently ignored.
 * @throws {@link PostageError} INVALID_ARGUMENT naming the unknown keys
 * @internal
 */
export function checkControl<T extends object>(options: T, allowed: ReadonlySet<string>, where: string): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new PostageError(
      ErrorCode.INVALID_ARGUMENT,
      `${where}: control options must be an object (${[...allowed].join(', ')}), got ${options === null ? 'null' : typeof options}`,
    );
  }
  let unknown: string[] | undefined;
  for (const key in options) {
    if (Object.hasOwn(options, key) && !allowed.has(key)) (unknown ??= []).push(key);
  }
  if (unknown !== undefined) {
    throw new PostageError(
      ErrorCode.INVALID_ARGUMENT,
      `${where}: unknown control option(s) ${unknown.join(', ')}; allowed: ${[...allowed].join(', ')}`,
    );
  }
  return options;
}

/** Shared and frozen: most calls carry no control options. */
const NO_OPTIONS: RpcOptions = Object.freeze({});

function isEmpty(value: object): boolean {
  for (const _key in value) return false;
  return true;
}

/** The stock JSON encoder (not a subclass that changes encode): its bytes are known. */
function isStockJson(encoder: Encoder): boolean {
  return encoder instanceof JsonEncoder && encoder.encode === JsonEncoder.prototype.encode;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkBuilt(message: unknown, kind: 'message' | 'rpc', command: string): Message<unknown> {
  if (!(message instanceof Message)) {
    throw new PostageError(ErrorCode.INVALID_ARGUMENT, `build_${kind}_${command} must return a Message`);
  }
  if (kind === 'rpc' && message.category !== Category.rpc) {
    throw new PostageError(
      ErrorCode.INVALID_ARGUMENT,
      `build_rpc_${command} must return an RPC message (category "rpc", e.g. RpcCommand)`,
    );
  }
  return message;
}

/** Runs `fn` and turns a synchronous throw into a rejected promise. */
function attempt<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(asError(err));
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Continues synchronously when `value` is not a promise (the hot path), else chains. */
function then<T, R>(value: T | Promise<T> | void, fn: (v: T) => R | Promise<R>): R | Promise<R> {
  if (value instanceof Promise) return value.then(fn);
  return fn(value as T);
}

function positive(value: number, name: string): number {
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new PostageError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be a positive number of seconds, got ${value}`,
    );
  }
  return value;
}

function nonNegativeInt(value: number, name: string): number {
  if (!(Number.isInteger(value) && value >= 0)) {
    throw new PostageError(ErrorCode.INVALID_ARGUMENT, `${name} must be an integer >= 0, got ${value}`);
  }
  return value;
}

function replyMode(value: string): RpcReplyMode {
  if (value !== 'direct' && value !== 'per-call') {
    throw new PostageError(
      ErrorCode.INVALID_CONFIG,
      `rpcReplyMode must be 'direct' or 'per-call', got '${value}'`,
    );
  }
  return value;
}

function envReplyMode(): string | undefined {
  const value = process.env['POSTAGE_RPC_REPLY_MODE'];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Passes an RPC's outcome through, and gives a timeout error the stack of the caller who
 * awaited the call: captured here, in an async continuation, V8 appends the awaiting caller's
 * frames (`at async ...`), so the stack names the caller's line (as rabbitmq-client's
 * RPCClient does). Capturing a stack on every call instead, in case it times out, was the
 * largest single cost of a call on postage's side (~2.6 us, bench/PROPOSALS.md).
 */
async function withCallerStack<T>(called: Promise<T>): Promise<T> {
  const outcome = await called;
  if (outcome instanceof MessageResult && outcome.error instanceof RpcTimeoutError) {
    Error.captureStackTrace(outcome.error);
  }
  return outcome;
}
