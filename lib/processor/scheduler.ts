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
 * const running = scheduler.run();
 * await scheduler.ready;   // every processor consumes its queues
 * await running;
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

  /**
   * Resolves once every processor added so far is ready (see {@link MessageProcessor.ready}):
   * their queues declared, bound and consumed. Rejects when one fails to start.
   */
  get ready(): Promise<void> {
    return allReady(this.processors);
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
  /**
   * Resolves once every processor is ready: its queues declared, bound and consumed, so that
   * messages published now reach them. Rejects when one fails to start (awaiting it is
   * optional: never an unhandled rejection).
   */
  readonly ready: Promise<void>;
};

/**
 * Runs processors until all have quit: `await runAll([a, b])`. The promise has a `ready`,
 * which resolves once all of them consume their queues (publish to them after it), and a
 * `close()`: `closeOnSignals(runAll([a, b]))`.
 *
 * @example
 * ```ts
 * const running = runAll([pricing, audit]);
 * await running.ready;
 * await producer.rpc_price('book');
 * await running;   // until all have quit
 * ```
 */
export function runAll(processors: readonly MessageProcessor[]): RunAllHandle {
  const scheduler = new MicroScheduler();
  for (const processor of processors) scheduler.add(processor);
  return Object.assign(scheduler.run(), { close: () => scheduler.close(), ready: scheduler.ready });
}

function allReady(processors: readonly MessageProcessor[]): Promise<void> {
  const ready = Promise.all(processors.map((p) => p.ready)).then(() => undefined);
  ready.catch(() => undefined);
  return ready;
}
