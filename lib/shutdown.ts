/**
 * Graceful shutdown on SIGINT and SIGTERM, and the bounded waits a stop is made of.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { getLogger } from './logger';

/** Something that closes: a processor, a producer, a connection. */
export interface Closable {
  close(): Promise<unknown>;
}

/** Options of {@link closeOnSignals}. */
export interface CloseOnSignalsOptions {
  /** The signals to handle. @default ['SIGINT', 'SIGTERM'] */
  signals?: readonly NodeJS.Signals[];
  /** Called when everything closed (or failed to). @default sets process.exitCode to 0 */
  onClosed?: (errors: readonly unknown[]) => void;
}

/**
 * Closes the given components (in order, each once) on the first SIGINT or SIGTERM; a second
 * signal exits at once (code 130/143). Returns a function that removes the signal handlers.
 *
 * @example
 * ```ts
 * const processor = new Worker();
 * closeOnSignals(processor, producer);
 * await processor.run();
 * ```
 */
export function closeOnSignals(...args: Array<Closable | CloseOnSignalsOptions>): () => void {
  // Each component once, even when listed twice.
  const closables = [
    ...new Set(args.filter((a): a is Closable => typeof (a as Closable).close === 'function')),
  ];
  const options = (args.find((a) => typeof (a as Closable).close !== 'function') ??
    {}) as CloseOnSignalsOptions;
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    closing = true;
    void closeAll(closables).then((errors) => {
      try {
        if (options.onClosed !== undefined) options.onClosed(errors);
        else process.exitCode = errors.length === 0 ? 0 : 1;
      } catch (err) {
        // onClosed is the application's: its failure must not become an unhandled rejection.
        process.exitCode = 1;
        getLogger().error({ err }, 'closeOnSignals: onClosed threw');
      }
    });
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.removeListener(signal, onSignal);
  };
}

/** Closes each in order; resolves with the errors (never rejects). */
async function closeAll(closables: readonly Closable[]): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const closable of closables) {
    try {
      await closable.close();
    } catch (err) {
      errors.push(err);
    }
  }
  return errors;
}

/** What {@link beforeDeadline} resolves to when the deadline came first. @internal */
export const TIMED_OUT = Symbol('timed out');

/** `promise`'s value, or TIMED_OUT once `deadline` (epoch ms) passed first. @internal */
export async function beforeDeadline<T>(
  promise: Promise<T>,
  deadline: number,
): Promise<T | typeof TIMED_OUT> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(Math.max(0, deadline - Date.now()), TIMED_OUT, { signal: timer.signal }),
    ]);
  } finally {
    timer.abort();
  }
}

/** Resolves when `promise` settles or after `ms`, whichever comes first (never rejects). @internal */
export async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  const timer = new AbortController();
  await Promise.race([
    promise.catch(() => undefined),
    sleep(ms, undefined, { signal: timer.signal }).catch(() => undefined),
  ]);
  timer.abort();
}
