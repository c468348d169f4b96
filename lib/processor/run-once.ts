/**
 * `processor.runOnce()`: handle what is queued now, then stop and return the counts of the run.
 * It works on a small view of the processor ({@link RunOnceHost}), never on the class.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { ErrorCode, PostageError, toPostageError } from '../errors';
import type { Logger } from '../logger';
import type { ProcessorCounts, RunResult } from './processor';
import { TIMED_OUT, beforeDeadline } from '../shutdown';

/** Default of {@link RunOnceOptions.timeoutMs}. */
export const DEFAULT_RUN_ONCE_TIMEOUT_MS = 60_000;

/** Options of {@link MessageProcessor.runOnce}. */
export interface RunOnceOptions {
  /** Stop once nothing arrived for this long and nothing is in flight. @default 200 */
  idleMs?: number;
  /**
   * Milliseconds after which runOnce stops the processor anyway (a graceful stop, which waits
   * up to `shutdownTimeout` for handlers in flight) and resolves with `timedOut: true`.
   * @default 60_000
   */
  timeoutMs?: number;
}

/** What {@link MessageProcessor.runOnce} resolves to: the counts of that run. */
export interface RunOnceResult extends RunResult, ProcessorCounts {
  /** True when `timeoutMs` passed before the queued messages were settled (the processor was stopped). */
  readonly timedOut: boolean;
}

/** What runOnce needs of a processor. @internal */
export interface RunOnceHost {
  readonly logger: Logger;
  /** The processor's running totals (read as they change). */
  readonly counts: Readonly<ProcessorCounts>;
  start(): Promise<void>;
  queueNames(): readonly string[];
  /** Ready messages in a queue now (a passive declare). */
  queueDepth(queue: string): Promise<number>;
  /** Messages in flight, or received and waiting for a free slot. */
  busy(): boolean;
  stopping(): boolean;
  stop(): Promise<RunResult>;
  /** Milliseconds the stop may take. */
  readonly stopBound: number;
}

/**
 * Starts, reads the queues' depths, and stops once that many messages are settled, nothing is
 * in flight and nothing arrived for `idleMs`; after `timeoutMs` it stops anyway. @internal
 */
export async function runOnce(host: RunOnceHost, options: RunOnceOptions): Promise<RunOnceResult> {
  const idleMs = options.idleMs ?? 200;
  const timeoutMs = options.timeoutMs ?? DEFAULT_RUN_ONCE_TIMEOUT_MS;
  if (!(timeoutMs > 0) || !(idleMs >= 0)) {
    throw new PostageError(ErrorCode.INVALID_ARGUMENT, 'runOnce needs timeoutMs > 0 and idleMs >= 0');
  }
  const counts = host.counts;
  const deadline = Date.now() + timeoutMs;
  const before = { ...counts };
  let timedOut = false;
  try {
    timedOut = (await beforeDeadline(host.start(), deadline)) === TIMED_OUT;
  } catch (err) {
    // As with run(): a failed start leaves the processor ready to try again.
    throw toPostageError(err, ErrorCode.CONNECTION_FAILED, 'processor start');
  }
  // Ready messages not yet delivered, plus those delivered already.
  let target = counts.received;
  for (const name of timedOut ? [] : host.queueNames()) {
    const depth = await beforeDeadline(host.queueDepth(name), deadline);
    if (depth === TIMED_OUT) {
      timedOut = true;
      break;
    }
    target += depth;
  }
  let seen = -1;
  let quietSince = Date.now();
  while (!timedOut && !host.stopping()) {
    const settled = counts.acked + counts.deadLettered + counts.requeued + counts.returned;
    if (counts.received !== seen) {
      seen = counts.received;
      quietSince = Date.now();
    }
    if (!host.busy() && settled >= target && Date.now() - quietSince >= idleMs) break;
    const left = deadline - Date.now();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    await sleep(Math.min(idleMs, 20, left));
  }
  if (timedOut) host.logger.warn({ timeoutMs }, 'runOnce timed out: stopping the processor');
  const result = await beforeDeadline(host.stop(), Date.now() + host.stopBound);
  if (result === TIMED_OUT) {
    host.logger.warn({ stopBound: host.stopBound }, 'runOnce: the stop did not finish in time');
  }
  return {
    reason: result === TIMED_OUT ? 'stopped' : result.reason,
    received: counts.received - before.received,
    acked: counts.acked - before.acked,
    requeued: counts.requeued - before.requeued,
    deadLettered: counts.deadLettered - before.deadLettered,
    returned: counts.returned - before.returned,
    timedOut,
  };
}
