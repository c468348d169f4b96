/**
 * Handler outcomes: what a processor does with a message once its handlers ran. A handler (or
 * an error handler) returns an {@link Outcome}; with several handlers for one message the
 * strongest wins: deadLetter > requeue > ack.
 */
import type { HandlerContext } from './handlers';
import type { Message } from '../messages/message';

const BRAND = Symbol('postage.outcome');

/** Acknowledge: the message is done. */
export interface AckOutcome {
  readonly [BRAND]: true;
  readonly kind: 'ack';
}

/** Put the message back after a delay (counted: past the processor's `maxDeliveries` it is dead-lettered). */
export interface RequeueOutcome {
  readonly [BRAND]: true;
  readonly kind: 'requeue';
  /** Milliseconds the message is held before it goes back, so that a failure does not loop hot. */
  readonly delayMs: number;
  /** The error that led here (recorded if the message reaches the delivery limit). */
  readonly error?: unknown;
}

/** Dead-letter the message with a reason (and the error, when there is one). */
export interface DeadLetterOutcome {
  readonly [BRAND]: true;
  readonly kind: 'deadLetter';
  /** A short machine-readable reason, e.g. `HANDLER_FAILED` or your own. */
  readonly reason: string;
  /** The error that led here, recorded in the dead letter's `x-postage-error` header. */
  readonly error: unknown;
}

/** What happens to a message, as a discriminated union on `kind`. */
export type Outcome = AckOutcome | RequeueOutcome | DeadLetterOutcome;

/** Default requeue delay. */
export const DEFAULT_REQUEUE_DELAY_MS = 1000;

const ACK: AckOutcome = Object.freeze({ [BRAND]: true as const, kind: 'ack' as const });
const REQUEUE: RequeueOutcome = Object.freeze({
  [BRAND]: true as const,
  kind: 'requeue' as const,
  delayMs: DEFAULT_REQUEUE_DELAY_MS,
});

/** Options of {@link Outcome.requeue}. */
export interface RequeueOptions {
  /** Milliseconds the message is held before it goes back. @default 1000 */
  delayMs?: number;
}

/**
 * Builds outcomes. A handler returns one to decide what happens to its message.
 *
 * @example
 * ```ts
 * @MessageHandler('command', 'charge')
 * async charge(content: { parameters: Order }) {
 *   if (!(await bank.up())) return Outcome.requeue({ delayMs: 5_000 });
 *   if (!valid(content.parameters)) return Outcome.deadLetter('INVALID_ORDER');
 *   return Outcome.ack();
 * }
 * ```
 */
export const Outcome = {
  /** Acknowledge (the default when a handler returns anything else). */
  ack(): AckOutcome {
    return ACK;
  },
  /** Requeue after `delayMs` (default 1 s). */
  requeue(options: RequeueOptions = {}): RequeueOutcome {
    if (options.delayMs === undefined) return REQUEUE;
    if (!(Number.isFinite(options.delayMs) && options.delayMs >= 0)) {
      throw new RangeError(`requeue delayMs must be a finite number >= 0, got ${options.delayMs}`);
    }
    return Object.freeze({ [BRAND]: true as const, kind: 'requeue' as const, delayMs: options.delayMs });
  },
  /** Dead-letter with a reason (and optionally the error that caused it). */
  deadLetter(reason: string, error?: unknown): DeadLetterOutcome {
    return Object.freeze({ [BRAND]: true as const, kind: 'deadLetter' as const, reason, error });
  },
} as const;

/** The outcome with the error that led to it, unless it names one already. @internal */
export function withError(outcome: Outcome, error: unknown): Outcome {
  if (outcome.kind === 'ack' || outcome.error !== undefined) return outcome;
  return Object.freeze({ ...outcome, error });
}

/** True when `value` is an outcome built by {@link Outcome}. */
export function isOutcome(value: unknown): value is Outcome {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}

const RANK = { ack: 0, requeue: 1, deadLetter: 2 } as const;

/** The stronger of two outcomes (deadLetter > requeue > ack; the first on a tie). @internal */
export function strongest(a: Outcome, b: Outcome): Outcome {
  return RANK[b.kind] > RANK[a.kind] ? b : a;
}

/**
 * Decides what happens to a message whose handler threw: return an {@link Outcome}, `true`
 * (ack), `false` (dead-letter) or nothing (the next error handler decides: the processor's,
 * then the default, which logs and dead-letters).
 */
export type ErrorHandler = (
  error: unknown,
  message: Message<unknown>,
  context: HandlerContext,
) => Outcome | boolean | undefined | void | Promise<Outcome | boolean | undefined | void>;
