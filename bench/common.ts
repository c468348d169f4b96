/**
 * Shared pieces of the benchmark: the broker URL, names, CPU and latency statistics, the
 * results table and bench/results.json.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** One row of bench/results.json (medians over the rounds). */
export interface ResultRow {
  case: string;
  ops_per_s: number;
  ratio_vs_raw: number | null;
  cpu_us_per_op: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  heap_growth_mb: number | null;
}

/** What one timed run of a case measured. */
export interface Sample {
  /** Operations completed (messages or calls). */
  ops: number;
  /** Wall time of the timed window, in milliseconds. */
  ms: number;
  /** Client CPU (user + system) over the timed window, in microseconds. */
  cpuUs: number;
  /** Per-call latencies in milliseconds, for RPC cases. */
  latencies?: number[];
}

/** The broker the run uses: `npm run bench` starts one through scripts/with-broker.ts. */
export function brokerUrl(): string {
  const url = process.env['POSTAGE_TEST_URL'];
  if (url === undefined || url === '') {
    throw new Error('POSTAGE_TEST_URL is not set: run the benchmark through `npm run bench`');
  }
  return url;
}

let counter = 0;
/** A name no other run (or engineer on the same broker) uses. */
export function uniqueName(kind: string): string {
  counter += 1;
  return `bench.${kind}.${process.pid}.${Date.now()}.${counter}`;
}

/** Runs `fn` and measures wall time and this process's CPU around it. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpuUs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { value, ms, cpuUs: cpu.user + cpu.system };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The q-quantile (0..1) by nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export const rate = (s: Sample): number => (s.ops * 1000) / s.ms;
export const cpuPerOp = (s: Sample): number => s.cpuUs / s.ops;

/** Summarises the rounds of one case into a row (ratio filled in by the caller). */
export function summarise(name: string, samples: readonly Sample[]): ResultRow {
  const withLatency = samples.filter((s) => s.latencies !== undefined && s.latencies.length > 0);
  return {
    case: name,
    ops_per_s: round(median(samples.map(rate))),
    ratio_vs_raw: null,
    cpu_us_per_op: round(median(samples.map(cpuPerOp)), 1),
    p50_ms:
      withLatency.length === 0
        ? null
        : round(median(withLatency.map((s) => quantile(s.latencies ?? [], 0.5))), 3),
    p99_ms:
      withLatency.length === 0
        ? null
        : round(median(withLatency.map((s) => quantile(s.latencies ?? [], 0.99))), 3),
    heap_growth_mb: null,
  };
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The table printed on stdout. */
export function table(rows: readonly ResultRow[]): string {
  const head = ['case', 'ops/s', 'vs raw', 'cpu us/op', 'p50 ms', 'p99 ms', 'heap MB'];
  const cell = (v: number | null): string => (v === null ? '-' : String(v));
  const lines = rows.map((r) => [
    r.case,
    String(r.ops_per_s),
    cell(r.ratio_vs_raw),
    cell(r.cpu_us_per_op),
    cell(r.p50_ms),
    cell(r.p99_ms),
    cell(r.heap_growth_mb),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cols: string[]): string =>
    cols
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)].join('\n');
}

/** Writes bench/results.json (the source directory, not the build one). */
export function writeResults(rows: readonly ResultRow[], file = 'results.json'): string {
  // Compiled to bench/.build/bench/: a relative file is taken from the source folder, two levels up.
  const path = resolve(join(__dirname, '..', '..'), file);
  writeFileSync(path, `${JSON.stringify(rows, null, 2)}\n`);
  return path;
}

/** Logs progress on stderr, so stdout carries only the table. */
export function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}
