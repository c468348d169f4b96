/**
 * The load of a fault test: a producer publishing numbered messages (at most `window` awaiting
 * their confirm) and a processor counting what it receives, with a fault injected on the way.
 */
import {
  GenericProducer,
  MessageHandler,
  MessageProcessor,
  type ConnectionOptions,
  type ExchangeDefinition,
  type QueueFlags,
} from '../../lib';
import type { JepsenCounter } from './jepsen';

/** A processor that counts the numbers it receives. */
export class CountingProcessor extends MessageProcessor {
  counter: JepsenCounter | undefined;
  @MessageHandler('command', 'n') n(content: { parameters: number }) {
    this.counter?.receive(content.parameters);
  }
}

/** A durable direct exchange with a unique name. */
export function durableExchange(name: string): ExchangeDefinition {
  return { name, exchange_type: 'direct', passive: false, durable: true, auto_delete: false };
}

/** A producer of numbers to `exchange` with key `n`. */
export function numbersProducer(exchange: ExchangeDefinition, options: ConnectionOptions) {
  class Numbers extends GenericProducer<{ n: number }> {
    static override eks = [[exchange, 'n']] as const;
  }
  return Numbers.create(options);
}

/** Starts a counting processor on `queue` bound to `exchange` with key `n`. */
export async function countingProcessor(
  counter: JepsenCounter,
  exchange: ExchangeDefinition,
  queue: string,
  flags: QueueFlags,
  options: ConnectionOptions & { prefetch?: number },
): Promise<CountingProcessor> {
  const processor = new CountingProcessor({ ...options, eqk: [[exchange, [[{ name: queue, flags }, 'n']]]] });
  processor.counter = counter;
  await processor.start();
  return processor;
}

/**
 * Publishes for `durationMs`, running `fault` once after `faultAfterMs` (not awaited by the
 * publishing loop), and goes on after the fault has finished (see `loading`): rabbitmqctl can
 * take seconds on a loaded machine, and a fault that lands after the load tests nothing. Then
 * waits for every publish to settle. Returns the first number produced after the fault ended.
 */
export async function publishThrough(
  producer: { message_n(n: number): Promise<void> },
  counter: JepsenCounter,
  options: {
    durationMs: number;
    faultAfterMs: number;
    fault: () => Promise<void>;
    window?: number;
    afterFaultMs?: number;
  },
): Promise<{ firstAfterFault: number }> {
  const window = options.window ?? 50;
  const afterFaultMs = options.afterFaultMs ?? 1000;
  const inFlight = new Set<Promise<void>>();
  const t0 = Date.now();
  let fault: Promise<void> | undefined;
  let faultEnded: number | undefined;
  let firstAfterFault: number | undefined;
  // After the fault: afterFaultMs and two windows of publishes at least (the reconnection may
  // take longer than afterFaultMs while the loop waits for room in its window).
  const loading = (): boolean =>
    Date.now() - t0 < options.durationMs ||
    faultEnded === undefined ||
    firstAfterFault === undefined ||
    counter.produced - firstAfterFault < 2 * window ||
    Date.now() - faultEnded < afterFaultMs;
  while (loading()) {
    if (fault === undefined && Date.now() - t0 >= options.faultAfterMs) {
      fault = options.fault().finally(() => (faultEnded = Date.now()));
    }
    const n = counter.produce();
    if (faultEnded !== undefined) firstAfterFault ??= n;
    const p: Promise<void> = producer
      .message_n(n)
      .then(
        () => counter.confirm(n),
        (err: unknown) => counter.fail(err),
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= window) await Promise.race(inFlight);
    else if (counter.produced % 20 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(inFlight);
  await fault;
  return { firstAfterFault: firstAfterFault ?? counter.produced };
}

/**
 * Publishes numbered messages at `ratePerSecond` for `durationMs`, none awaited (as a busy
 * producer does, whatever the broker's state: each publish waits in the outage buffer while
 * the broker is down), counting each outcome. Resolves once all of them have settled, with
 * the numbers published.
 */
export async function publishAtRate(
  producer: { message_n(n: number): Promise<void> },
  counter: JepsenCounter,
  options: { ratePerSecond: number; durationMs: number },
): Promise<number[]> {
  const settled: Promise<void>[] = [];
  const numbers: number[] = [];
  const t0 = Date.now();
  for (let elapsed = 0; elapsed < options.durationMs; elapsed = Date.now() - t0) {
    const due = Math.floor((elapsed * options.ratePerSecond) / 1000) + 1;
    while (numbers.length < due) {
      const n = counter.produce();
      numbers.push(n);
      settled.push(
        producer.message_n(n).then(
          () => counter.confirm(n),
          (err: unknown) => counter.fail(err),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(settled);
  return numbers;
}
