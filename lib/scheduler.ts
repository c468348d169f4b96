import type { MessageProcessor, RunResult } from './processor';

/**
 * Runs several processors in one process until all of them have quit (the role of postage's
 * MicroScheduler, without its busy loop). When one receives `restart`, the others are stopped
 * cleanly and the program is restarted once.
 *
 * @example
 * ```ts
 * const scheduler = new MicroScheduler();
 * scheduler.add(new LogProcessor());
 * scheduler.add(new EchoProcessor());
 * await scheduler.run();
 * ```
 */
export class MicroScheduler {
  private readonly processors: MessageProcessor[] = [];
  private closing: Promise<void> | undefined;

  /** Adds a processor; it starts when {@link MicroScheduler.run} is called (or at once if running). */
  add(processor: MessageProcessor): this {
    processor.managedRestart = true;
    this.processors.push(processor);
    return this;
  }

  /** Alias of {@link MicroScheduler.add} for postage users. */
  add_microthread(processor: MessageProcessor): this {
    return this.add(processor);
  }

  /**
   * Runs every processor; resolves with their results when all have stopped. If one fails to
   * start or loses its channel, the others are stopped and the error is thrown.
   */
  async run(): Promise<RunResult[]> {
    let restarter: MessageProcessor | undefined;
    const runs = this.processors.map(async (processor) => {
      try {
        const result = await processor.run();
        if (result.reason === 'restart' && restarter === undefined) {
          restarter = processor;
          await Promise.all(this.processors.map((p) => p.stop('restart')));
        }
        return result;
      } catch (err) {
        await Promise.all(this.processors.map((p) => p.stop('stopped')));
        throw err;
      }
    });
    const results = await Promise.all(runs);
    restarter?.restartProcess();
    return results;
  }

  /** Alias of {@link MicroScheduler.run}. */
  main(): Promise<RunResult[]> {
    return this.run();
  }

  /**
   * Stops every processor (a graceful stop each, as `stop()`); resolves once all have stopped.
   * Idempotent and safe to call concurrently: every call returns the same promise, which never
   * rejects. {@link MicroScheduler.run} then resolves with reason `stopped`.
   */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.processors.map((p) => p.stop('stopped').catch(() => undefined))).then(
      () => undefined,
    );
    return this.closing;
  }
}

/**
 * What {@link runAll} returns: the promise of the results, which can also be closed (every
 * processor stopped gracefully, as {@link MicroScheduler.close}), e.g. by `closeOnSignals`.
 */
export type RunAllHandle = Promise<RunResult[]> & {
  /** Stops every processor; idempotent, concurrent-safe, never rejects. */
  close(): Promise<void>;
};

/**
 * Runs processors until all have quit: `await runAll([a, b])`. The promise has a `close()`:
 * `closeOnSignals(runAll([a, b]))`.
 */
export function runAll(processors: readonly MessageProcessor[]): RunAllHandle {
  const scheduler = new MicroScheduler();
  for (const processor of processors) scheduler.add(processor);
  return Object.assign(scheduler.run(), { close: () => scheduler.close() });
}
