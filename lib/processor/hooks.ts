/**
 * Processing hooks: around a processor's life (start and stop) and around each message, with a
 * per-message `state` object the two message hooks share.
 */
import type { HandlerContext } from './handlers';
import type { Outcome } from './outcome';
import type { MessageProcessor, RunResult } from './processor';

/** What {@link ProcessingHooks.afterHandling} learns about the message. */
export interface HandlingResult {
  /** The outcome decided so far (the after hook may still fail, which is handled like a handler error). */
  readonly outcome: Outcome;
  /** The error a handler (or the before hook) threw, if any. */
  readonly error: unknown;
}

/**
 * Hooks of a processor. A hook that throws is a `HOOK_FAILED` error: around a message it is
 * handled like a handler error (error handlers, then the default dead-letter), around the
 * processor's life it fails `start()` (before) or is reported (after). Never a crash.
 *
 * @example
 * ```ts
 * new Worker({
 *   hooks: {
 *     beforeHandling: (context) => { context.state['t0'] = performance.now(); },
 *     afterHandling: (context, { outcome }) => metrics.observe(outcome.kind, performance.now() - (context.state['t0'] as number)),
 *   },
 * });
 * ```
 */
export interface ProcessingHooks {
  /** Before the processor consumes (at start). */
  beforeProcessing?(processor: MessageProcessor): void | Promise<void>;
  /** After the processor stopped consuming and its handlers finished (at stop). */
  afterProcessing?(processor: MessageProcessor, result: RunResult): void | Promise<void>;
  /** Before the handlers of each message. `context.state` is fresh for each message. */
  beforeHandling?(context: HandlerContext): void | Promise<void>;
  /** After the handlers of each message, before it is settled. */
  afterHandling?(context: HandlerContext, result: HandlingResult): void | Promise<void>;
}

/** The hooks of a processor, merged in registration order. @internal */
export class HookChain {
  readonly beforeProcessing: Array<NonNullable<ProcessingHooks['beforeProcessing']>> = [];
  readonly afterProcessing: Array<NonNullable<ProcessingHooks['afterProcessing']>> = [];
  readonly beforeHandling: Array<NonNullable<ProcessingHooks['beforeHandling']>> = [];
  readonly afterHandling: Array<NonNullable<ProcessingHooks['afterHandling']>> = [];
  /** True when a per-message hook exists (the hot path skips them otherwise). */
  perMessage = false;

  add(hooks: ProcessingHooks): void {
    if (hooks.beforeProcessing !== undefined) this.beforeProcessing.push(hooks.beforeProcessing.bind(hooks));
    if (hooks.afterProcessing !== undefined) this.afterProcessing.push(hooks.afterProcessing.bind(hooks));
    if (hooks.beforeHandling !== undefined) this.beforeHandling.push(hooks.beforeHandling.bind(hooks));
    if (hooks.afterHandling !== undefined) this.afterHandling.push(hooks.afterHandling.bind(hooks));
    this.perMessage = this.beforeHandling.length + this.afterHandling.length > 0;
  }
}
