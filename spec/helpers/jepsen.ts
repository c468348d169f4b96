/**
 * Jepsen-style bookkeeping for fault tests, as RabbitMQ's own Jepsen suite counts: every
 * message produced, confirmed by the broker, failed (by code), received (how many times).
 * `lost` = confirmed but never received; it must be 0. Duplicates are allowed (at-least-once).
 */
export interface JepsenCounts {
  produced: number;
  confirmed: number;
  failed: number;
  received: number;
  duplicates: number;
  lost: number;
  failures: Record<string, number>;
}

export class JepsenCounter {
  produced = 0;
  readonly confirmed = new Set<number>();
  readonly failures = new Map<string, number>();
  readonly received = new Map<number, number>();

  /** The next message number. */
  produce(): number {
    return this.produced++;
  }

  confirm(n: number): void {
    this.confirmed.add(n);
  }

  fail(err: unknown): void {
    const code = (err as { code?: unknown }).code;
    const key = typeof code === 'string' ? code : 'unknown';
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
  }

  receive(n: number): void {
    this.received.set(n, (this.received.get(n) ?? 0) + 1);
  }

  /** Confirmed messages not received (yet). */
  get missing(): number[] {
    return [...this.confirmed].filter((n) => !this.received.has(n));
  }

  counts(): JepsenCounts {
    let failed = 0;
    for (const count of this.failures.values()) failed += count;
    return {
      produced: this.produced,
      confirmed: this.confirmed.size,
      failed,
      received: this.received.size,
      duplicates: [...this.received.values()].reduce((sum, c) => sum + c - 1, 0),
      lost: this.missing.length,
      failures: Object.fromEntries(this.failures),
    };
  }

  /** Waits until every confirmed message was received, or `timeoutMs` passed. */
  async settle(timeoutMs: number): Promise<JepsenCounts> {
    const deadline = Date.now() + timeoutMs;
    while (this.missing.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return this.counts();
  }

  /** Prints the counts on one line, for the CI log. */
  report(label: string): JepsenCounts {
    const counts = this.counts();
    process.stdout.write(`[jepsen] ${label}: ${JSON.stringify(counts)}\n`);
    return counts;
  }
}
