import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Connection } from '../connection/connection';
import { GenericConsumer, type Eqk } from '../connection/consumer';
import { Dispatcher } from './dispatcher';
import type { Encoder } from '../messages/encoder';
import { ErrorCode, PostageError, toPostageError } from '../errors';
import { SafeEmitter } from '../events';
import { fingerprintDict } from '../messages/fingerprint';
import { DefaultHandler, collectHandlers, type MessagePredicate } from './handlers';
import type { ProcessingHooks } from './hooks';
import {
  applyQueueRules,
  declareDeadLetter,
  queueRules,
  resolveDeadLetter,
  type DeadLetterTarget,
} from './poison';
import { normalizeProcessorOptions, type ProcessorOptions, type RegisterOptions } from './options';
import { buildRoute, buildRoutes, normalizeFilters, type HandlerClass, type HandlerFunction } from './routes';
import { runOnce, type RunOnceOptions, type RunOnceResult } from './run-once';
import { withTimeout } from '../shutdown';
import { Category } from '../messages/schema';
import { Publisher } from '../connection/publisher';
import { decideRestart, exitForRestart, respawnProcess, type RestartPolicy } from './restart';
import type { TransportMessage } from '../transport/types';

export type { HandlerFunction } from './routes';
export type { ProcessorOptions, RegisterOptions } from './options';
export { DEFAULT_RUN_ONCE_TIMEOUT_MS, type RunOnceOptions, type RunOnceResult } from './run-once';

/** Why a processor stopped. */
export type StopReason = 'quit' | 'restart' | 'stopped';

/** What {@link MessageProcessor.run} resolves to. */
export interface RunResult {
  readonly reason: StopReason;
}

/** Messages settled by a processor, per outcome. */
export interface ProcessorCounts {
  /** Deliveries received. */
  readonly received: number;
  readonly acked: number;
  /** Requeued (after their delay), counted per requeue. */
  readonly requeued: number;
  readonly deadLettered: number;
  /** Received but never started (shutdown): put back in the queue. */
  readonly returned: number;
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

/** After the shutdown deadline, how long aborted handlers get to return before the channel closes. */
const ABORT_GRACE_MS = 1000;
/** How long closing the channel and connection may take at stop. */
const CLOSE_TIMEOUT_MS = 5000;

interface Pending {
  readonly message: TransportMessage;
  readonly queue: string;
}

/**
 * Processes incoming messages with handlers keyed by (type, name) or by a predicate
 * (matchers): decorate methods with `@MessageHandler`, `@RpcHandler`, `@MessageMatcher`...,
 * or register functions with {@link MessageProcessor.registerHandler} and
 * {@link MessageProcessor.registerMatcher}. `command quit` and `command restart` have default
 * handlers; declare your own for those messages to replace them.
 *
 * Outcomes: a handler may return an {@link Outcome} (ack, requeue after a delay, dead-letter);
 * otherwise the message is acked. A handler that throws goes to its error handler, then the
 * processor's `onError`, then the default: logged and dead-lettered (rejected without requeue
 * when the processor has no dead-letter exchange). RejectMessage dead-letters, DeleteMessage
 * acks and drops. An RPC is always answered. A body that is not JSON or not a postage envelope
 * is dead-lettered with its reason; an unknown fire-and-forget message is acked.
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
  /** Deliveries of one message before it is dead-lettered. */
  readonly maxDeliveries: number;
  /** Where the processor dead-letters, when it has its own dead-letter exchange. */
  readonly deadLetter: DeadLetterTarget | undefined;
  /** Milliseconds a dead letter or counted requeue waits for its publisher confirm. */
  readonly confirmTimeout: number;
  /**
   * When true (set by {@link MicroScheduler}), a restart only stops this processor: the
   * scheduler restarts the program once every processor has stopped.
   */
  managedRestart = false;
  readonly #dispatcher: Dispatcher;
  /** Publishes dead letters and counted requeues with confirms (its channel opens on first use). */
  readonly #publisher: Publisher;
  readonly #concurrency: number;
  readonly #shutdownTimeout: number;
  readonly #restart: RestartPolicy | undefined;
  /** Built without a `connection` option: a failed start releases the connection it opened. */
  readonly #ownsConnection: boolean;
  /** Aborted when stop begins: requeue delays end at once. */
  readonly #closing = new AbortController();
  /** Aborted at the shutdown deadline: handlers see it as `context.signal`. */
  readonly #deadline = new AbortController();
  readonly #pending: Pending[] = [];
  #pendingHead = 0;
  #inFlight = 0;
  #idle: (() => void) | undefined;
  #starting: Promise<void> | undefined;
  /** What `ready` returns: settled by the current (or next) start. */
  #ready = readiness();
  #stopping: Promise<RunResult> | undefined;
  #finished: Promise<RunResult>;
  #finish!: (result: RunResult) => void;
  #fail!: (error: PostageError) => void;

  constructor(options: ProcessorOptions = {}) {
    const settings = normalizeProcessorOptions(options);
    const maxDeliveries = settings.maxDeliveries;
    const baseEqk = options.eqk ?? (new.target as typeof MessageProcessor).eqk;
    const deadLetter = resolveDeadLetter(options.deadLetter, baseEqk);
    const eqk = applyQueueRules(baseEqk, deadLetter, options.queueType === 'quorum', maxDeliveries);
    const consumer = new GenericConsumer({ ...options, eqk });
    super(options.logger ?? consumer.logger);
    this.consumer = consumer;
    this.encoder = consumer.encoder;
    this.maxDeliveries = maxDeliveries;
    this.deadLetter = deadLetter;
    this.#ownsConnection = options.connection === undefined;
    this.#concurrency = settings.concurrency;
    this.#shutdownTimeout = settings.shutdownTimeout;
    this.#restart = settings.restart;
    // One default for every component: a shared connection's setting, else DEFAULT_CONFIRM_TIMEOUT.
    const confirmTimeout = settings.confirmTimeout ?? consumer.connection.config.confirmTimeout;
    // Its confirmTimeout bounds every dead letter and counted requeue (buffered time included).
    const publisher = new Publisher(consumer.connection, { confirmTimeout });
    this.#publisher = publisher;
    this.confirmTimeout = confirmTimeout;
    this.fingerprint = Object.freeze(fingerprintDict(options.fingerprint));
    // One signal shared by every handler in flight: many listeners are expected.
    setMaxListeners(0, this.#deadline.signal);
    this.#dispatcher = new Dispatcher({
      processor: this,
      consumer,
      encoder: consumer.encoder,
      logger: this.logger,
      fingerprint: this.fingerprint,
      debug: consumer.connection.config.debug,
      translators: options.translators ?? {},
      queueRules: queueRules(eqk),
      onError: options.onError,
      unknownRpc: settings.unknownRpc,
      maxDeliveries,
      deadLetterExchange: deadLetter?.exchange,
      user: consumer.connection.config.endpoints[0]?.user,
      closing: this.#closing.signal,
      deadline: this.#deadline.signal,
      settled: () => this.#afterDispatch(),
      publish: (exchange, routingKey, content, publishOptions) =>
        publisher.publish(exchange, routingKey, content, publishOptions),
      report: (error, context) => this.reportError(error, context),
    });
    if (options.hooks !== undefined) this.#dispatcher.hooks.add(options.hooks);
    this.#finished = new Promise<RunResult>((resolve, reject) => {
      this.#finish = resolve;
      this.#fail = reject;
    });
    // Nobody may await run(): an unobserved rejection must not crash the process.
    this.#finished.catch(() => undefined);
    this.consumer.on('lost', (error) => this.#onLost(error));
    this.consumer.on('error', (error) => this.reportError(error, 'consumer'));
    const dispatcher = this.#dispatcher;
    buildRoutes(this, collectHandlers(new.target), dispatcher.routes, dispatcher.matchers);
  }

  /** The connection the processor consumes on. */
  get connection(): Connection {
    return this.consumer.connection;
  }

  /** Messages being handled right now. */
  get handling(): number {
    return this.#inFlight;
  }

  /** Messages settled so far, per outcome. */
  get counts(): ProcessorCounts {
    return { ...this.#dispatcher.counts };
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
    const existing = this.#dispatcher.routes.get(category, type, name) ?? [];
    if (category === Category.rpc && existing.length > 0) {
      throw new PostageError(
        ErrorCode.AMBIGUOUS_HANDLER,
        `an RPC handler for ${type} '${String(name)}' exists already`,
      );
    }
    existing.push(
      buildRoute(
        this,
        `${type} '${String(name)}'`,
        handler,
        options.fullBody === true,
        normalizeFilters(options.filters),
        options,
        undefined,
      ),
    );
    this.#dispatcher.routes.set(category, type, name, existing);
    return this;
  }

  /**
   * Registers a handler for every message the predicate accepts. Fire-and-forget: every
   * matching handler runs (keyed ones first). RPC (`rpc: true`): a call needs exactly one
   * matching handler, otherwise the caller gets a MessageResultError naming the candidates.
   */
  registerMatcher(
    predicate: MessagePredicate,
    handler: HandlerFunction | HandlerClass,
    options: RegisterOptions = {},
  ): this {
    const category = options.rpc === true ? Category.rpc : Category.message;
    const label = `matcher ${handler.name === '' ? this.#dispatcher.matchers[category].length + 1 : handler.name}`;
    this.#dispatcher.matchers[category].push(
      buildRoute(
        this,
        label,
        handler,
        options.fullBody === true,
        normalizeFilters(options.filters),
        options,
        predicate,
      ),
    );
    return this;
  }

  /** Adds hooks (after those given as options). */
  addHooks(hooks: ProcessingHooks): this {
    this.#dispatcher.hooks.add(hooks);
    return this;
  }

  /**
   * Declares the bindings and starts consuming; resolves once every queue is consumed. A start
   * that fails (broker unreachable, login refused, a declaration refused, a hook threw) leaves
   * the processor as it was: consumers that did start are cancelled, the connection it opened
   * for itself is released, and start() or run() may be called again.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start().then(
      () => this.#ready.resolve(),
      async (err: unknown) => {
        const ready = this.#ready;
        // A stop that began meanwhile releases everything itself; the processor is done then.
        if (this.#stopping === undefined) {
          await this.consumer.stopConsuming().catch(() => undefined);
          if (this.#ownsConnection) await this.connection.disconnect();
          this.#starting = undefined;
          // The next start gets a `ready` of its own.
          this.#ready = readiness();
        }
        ready.reject(toPostageError(err, ErrorCode.CONNECTION_FAILED, 'processor start'));
        throw err;
      },
    );
    return this.#starting;
  }

  /**
   * Resolves once the processor is ready: every queue of its `eqk` declared, bound and
   * consumed (and its dead-letter exchange declared), so that a message published now reaches
   * it. Until then a publish to its queues may be unroutable: RabbitMQ applies the processor's
   * declarations a round trip later (the in-process broker too). Stays resolved once it has.
   * Rejects with the error when the start fails (a new `run()` or `start()` gives a new
   * `ready`), with CLOSED when the processor stops before it was ready. Never an unhandled
   * rejection: awaiting it is optional.
   *
   * @example
   * ```ts
   * const running = processor.run();   // until quit
   * await processor.ready;             // now publish to it
   * await producer.message_echo('hi');
   * await running;
   * ```
   */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  async #start(): Promise<void> {
    for (const hook of this.#dispatcher.hooks.beforeProcessing) {
      try {
        await hook(this);
      } catch (err) {
        throw new PostageError(ErrorCode.HOOK_FAILED, `beforeProcessing hook failed: ${String(err)}`, {
          cause: err,
        });
      }
    }
    if (this.deadLetter !== undefined) await declareDeadLetter(this.connection, this.deadLetter);
    await this.consumer.startConsuming((message, queue) => this.#onDelivery(message, queue));
    this.emit('status', { type: 'consuming', queues: this.consumer.queueNames });
  }

  /**
   * Starts and runs until the processor quits, restarts or is stopped. Rejects if it cannot
   * start (the processor can then run again: see {@link MessageProcessor.start}) or if it
   * loses its channel for good.
   */
  async run(): Promise<RunResult> {
    try {
      await this.start();
    } catch (err) {
      throw toPostageError(err, ErrorCode.CONNECTION_FAILED, 'processor start');
    }
    return this.#finished;
  }

  /**
   * Handles what is queued now, then stops: resolves once the messages its queues held at start
   * are settled, nothing is in flight and nothing arrived for `idleMs`. Returns the counts.
   */
  runOnce(options: RunOnceOptions = {}): Promise<RunOnceResult> {
    const counts = this.#dispatcher.counts;
    return runOnce(
      {
        logger: this.logger,
        counts,
        start: () => this.start(),
        queueNames: () => this.consumer.queueNames,
        queueDepth: async (name) =>
          (await this.connection.withTopology((ch) => ch.checkQueue(name), `check queue '${name}'`))
            .messageCount,
        busy: () => this.#inFlight > 0 || this.#pendingHead < this.#pending.length,
        stopping: () => this.#stopping !== undefined,
        stop: () => this.stop('stopped'),
        // Bounded too: a start that never settles must not hold the stop (and runOnce) forever.
        stopBound: this.#shutdownTimeout + ABORT_GRACE_MS + 3 * CLOSE_TIMEOUT_MS,
      },
      options,
    );
  }

  /** Resolves when the processor has stopped (whatever started it). */
  get done(): Promise<RunResult> {
    return this.#finished;
  }

  /**
   * Stops gracefully: cancels its consumers, puts received but unstarted messages back in the
   * queue, waits for the handlers in flight up to `shutdownTimeout` (then aborts
   * `context.signal` and gives them a short grace), settles their messages, closes. Never
   * hangs; idempotent and safe to call concurrently: every call returns the same promise
   * (with the first call's reason).
   */
  stop(reason: StopReason = 'stopped'): Promise<RunResult> {
    this.#stopping ??= this.#doStop(reason);
    return this.#stopping;
  }

  /** Alias of {@link MessageProcessor.stop} (the same promise as every other stop or close). */
  close(): Promise<RunResult> {
    return this.stop('stopped');
  }

  /** Stops the processor (what the `quit` command does). Returns at once. */
  quit(): void {
    void this.stop('quit');
  }

  /**
   * Stops the processor cleanly, then restarts the program (what the `restart` command does):
   * see the `restart` option. Returns at once.
   */
  restart(): void {
    void this.stop('restart').then((result) => {
      if (result.reason !== 'restart' || this.managedRestart) return;
      try {
        this.restartProcess();
      } catch (err) {
        // An override of restartProcess that throws must not become an unhandled rejection.
        this.reportError(toPostageError(err, ErrorCode.CLOSED, 'restart'), 'processor restart');
      }
    });
  }

  /**
   * Restarts the program once the processor (or, under a {@link MicroScheduler}, every one) has
   * stopped, by the `restart` option's policy: exit for the supervisor, respawn, or the
   * function given. Overriding it replaces the policy.
   */
  restartProcess(): void {
    const { policy, why } = decideRestart(this.#restart, this.logger);
    if (policy === 'exit') return exitForRestart(this.logger, why);
    if (policy === 'respawn') return respawnProcess(this.logger, why);
    const done = policy();
    if (done instanceof Promise) {
      done.catch((err: unknown) =>
        this.reportError(toPostageError(err, ErrorCode.CLOSED, 'restart'), 'processor restart'),
      );
    }
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
    this.#emitStatus({ type: 'stopping', reason });
    this.#closing.abort();
    await this.#starting?.catch(() => undefined);
    this.#ready.reject(new PostageError(ErrorCode.CLOSED, 'the processor stopped before it was ready'));
    await withTimeout(this.consumer.stopConsuming(), CLOSE_TIMEOUT_MS);
    // Received but never started: back to the queue for another consumer.
    while (this.#pendingHead < this.#pending.length) {
      const next = this.#pending[this.#pendingHead++] as Pending;
      this.consumer.reject(next.message, true);
      this.#dispatcher.counts.returned++;
    }
    this.#pending.length = 0;
    this.#pendingHead = 0;
    if (this.#inFlight > 0 && !(await this.#waitIdle(this.#shutdownTimeout))) {
      this.logger.warn({ handling: this.#inFlight }, 'shutdown deadline: aborting handlers in flight');
      this.#deadline.abort(new PostageError(ErrorCode.CLOSED, 'the processor is shutting down'));
      if (!(await this.#waitIdle(ABORT_GRACE_MS))) {
        this.logger.warn(
          { handling: this.#inFlight },
          'handlers still running at close: their messages go back to the queue',
        );
      }
    }
    const result: RunResult = { reason };
    for (const hook of this.#dispatcher.hooks.afterProcessing) {
      try {
        await hook(this, result);
      } catch (err) {
        this.reportError(
          new PostageError(ErrorCode.HOOK_FAILED, `afterProcessing hook failed: ${String(err)}`, {
            cause: err,
          }),
          'processor stop',
        );
      }
    }
    await withTimeout(this.#publisher.close(), CLOSE_TIMEOUT_MS);
    await withTimeout(this.consumer.close(), CLOSE_TIMEOUT_MS);
    this.#emitStatus({ type: 'stopped', reason });
    this.#finish(result);
    return result;
  }

  /**
   * Emits a status of the stop. A listener that throws must not make the stop reject (quit()
   * and restart() do not await it): the error is reported instead.
   */
  #emitStatus(status: ProcessorStatus): void {
    try {
      this.emit('status', status);
    } catch (err) {
      this.reportError(
        toPostageError(err, ErrorCode.HOOK_FAILED, `a '${status.type}' status listener threw`),
        'processor',
      );
    }
  }

  /** Resolves true when nothing is in flight, false after `ms`. */
  async #waitIdle(ms: number): Promise<boolean> {
    if (this.#inFlight === 0) return true;
    const idle = new Promise<true>((resolve) => {
      this.#idle = () => resolve(true);
    });
    const timer = new AbortController();
    const result = await Promise.race([
      idle,
      sleep(ms, false, { signal: timer.signal }).catch(() => false as const),
    ]);
    timer.abort();
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
    this.#dispatcher.counts.received++;
    if (this.#stopping !== undefined) {
      this.consumer.reject(message, true);
      this.#dispatcher.counts.returned++;
      return;
    }
    if (this.#inFlight >= this.#concurrency) {
      this.#pending.push({ message, queue });
      return;
    }
    this.#inFlight++;
    void this.#dispatcher.handle(message, queue);
  }

  #afterDispatch(): void {
    this.#inFlight--;
    if (this.#pendingHead < this.#pending.length && this.#stopping === undefined) {
      const next = this.#pending[this.#pendingHead++] as Pending;
      if (this.#pendingHead === this.#pending.length) {
        this.#pending.length = 0;
        this.#pendingHead = 0;
      }
      this.#inFlight++;
      void this.#dispatcher.handle(next.message, next.queue);
      return;
    }
    if (this.#inFlight === 0 && this.#idle !== undefined) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
  }
}

interface Readiness {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: PostageError): void;
}

/** A processor's `ready`: settled once; a rejection nobody awaits is not an unhandled one. */
function readiness(): Readiness {
  let resolve!: () => void;
  let reject!: (error: PostageError) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
