/**
 * The options of a {@link MessageProcessor} and of its handler registrations, checked and
 * defaulted in one place ({@link normalizeProcessorOptions}).
 */
import type { ConsumerOptions, Eqk } from '../connection/consumer';
import type { UnknownRpc } from './dispatcher';
import { ErrorCode, PostageError } from '../errors';
import type { FingerprintLike } from '../messages/fingerprint';
import type { HandlerOptions, MessageFilterFunction } from './handlers';
import type { ProcessingHooks } from './hooks';
import type { ErrorHandler } from './outcome';
import { DEFAULT_MAX_DELIVERIES, type DeadLetterOptions } from './poison';
import type { RestartPolicy } from './restart';
import type { MessageTranslator } from './translator';

/** Options of {@link MessageProcessor}. */
export interface ProcessorOptions extends ConsumerOptions {
  /** The processor's fingerprint, set on its RPC replies. */
  fingerprint?: FingerprintLike;
  /** Bindings: a list of (Exchange, [(queue, key), ...]). @default the class's static `eqk` */
  eqk?: Eqk;
  /** Decides what happens when a handler throws (after the handler's own). @default log and dead-letter */
  onError?: ErrorHandler;
  /** Hooks around the processor's life and around each message. */
  hooks?: ProcessingHooks;
  /** Translators of foreign messages, per queue name. */
  translators?: Readonly<Record<string, MessageTranslator>>;
  /**
   * A dead-letter exchange and queue for the processor's queues (`x-dead-letter-exchange`);
   * postage then dead-letters with its reason headers. `true` names them after the first queue.
   * @default none: a dead-lettered message is rejected (the queue's own DLX, if any, gets it)
   */
  deadLetter?: boolean | DeadLetterOptions;
  /**
   * What an RPC that no handler of this processor takes gets: `reply-error` answers
   * `MessageResultError('no handler ...')` at once (the caller's `unwrap()` throws `NO_HANDLER`);
   * `ignore` acks it without a reply, leaving the answer to the processor that serves it (a tap
   * or an audit processor bound to `#` on the same exchange).
   * @default 'reply-error' when the processor has an RPC handler or matcher, else 'ignore'
   */
  unknownRpc?: UnknownRpc;
  /** Declare the processor's queues as quorum queues (durable, `x-delivery-limit`). @default 'classic' */
  queueType?: 'classic' | 'quorum';
  /** Deliveries of one message (through requeues) before it is dead-lettered. @default 10 */
  maxDeliveries?: number;
  /** Messages handled at once; the rest of the prefetch waits (and is requeued at shutdown). @default the prefetch */
  concurrency?: number;
  /**
   * What `restart` (the command, or {@link MessageProcessor.restart}) does once the processor
   * has stopped: `exit` with code 75 ({@link RESTART_EXIT_CODE}) for a supervisor to start the
   * service again, `respawn` the same program in a new process, or your function.
   * @default POSTAGE_RESTART (`exit` or `respawn`), else `exit` under a supervisor (systemd, a
   *   container, pm2, supervisord: see {@link detectSupervisor}), else `respawn`
   */
  restart?: RestartPolicy;
  /** Milliseconds `stop()` waits for handlers in flight before aborting `context.signal`. @default 10_000 */
  shutdownTimeout?: number;
  /**
   * Milliseconds to wait for the publisher confirm of a dead letter or a counted requeue before
   * the original goes back to its queue instead.
   * @default the connection's confirmTimeout: 30_000, as for every component
   */
  confirmTimeout?: number;
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

/** Default of {@link ProcessorOptions.shutdownTimeout}. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/** A processor's options with their defaults, checked. @internal */
export interface ProcessorSettings {
  readonly maxDeliveries: number;
  readonly concurrency: number;
  readonly shutdownTimeout: number;
  /** Undefined: the connection's. */
  readonly confirmTimeout: number | undefined;
  readonly restart: RestartPolicy | undefined;
  readonly unknownRpc: UnknownRpc | undefined;
}

/**
 * Applies the defaults and checks the values of a processor's own options.
 * @throws {@link PostageError} INVALID_ARGUMENT for a value out of range
 * @internal
 */
export function normalizeProcessorOptions(options: ProcessorOptions): ProcessorSettings {
  const maxDeliveries = options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
  if (!(Number.isInteger(maxDeliveries) && maxDeliveries >= 1)) {
    throw invalid(`maxDeliveries must be an integer >= 1, got ${maxDeliveries}`);
  }
  const concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
  const shutdownTimeout = options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const confirmTimeout = options.confirmTimeout;
  if (
    !(concurrency >= 1) ||
    !(shutdownTimeout >= 0) ||
    !(confirmTimeout === undefined || confirmTimeout > 0)
  ) {
    throw invalid('concurrency must be >= 1, shutdownTimeout >= 0 and confirmTimeout > 0');
  }
  const restart = options.restart;
  if (!(
    restart === undefined ||
    restart === 'exit' ||
    restart === 'respawn' ||
    typeof restart === 'function'
  )) {
    throw invalid(`restart must be 'exit', 'respawn' or a function, got ${JSON.stringify(restart)}`);
  }
  const unknownRpc = options.unknownRpc;
  if (!(unknownRpc === undefined || unknownRpc === 'reply-error' || unknownRpc === 'ignore')) {
    throw invalid(`unknownRpc must be 'reply-error' or 'ignore', got ${JSON.stringify(unknownRpc)}`);
  }
  return { maxDeliveries, concurrency, shutdownTimeout, confirmTimeout, restart, unknownRpc };
}

function invalid(message: string): PostageError {
  return new PostageError(ErrorCode.INVALID_ARGUMENT, message);
}
