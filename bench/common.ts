/**
 * Shared pieces of the benchmark: the broker URL, names, CPU and latency statistics, the
 * results table and bench/results.json.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** One row of bench/results.json (medians over the rounds; ratios: medians of per-round ratios). */
export interface ResultRow {
  case: string;
  ops_per_s: number;
  /** Against the thin-wrapper raw amqplib case of its group (`<group>-amqplib`). */
  ratio_vs_amqplib: number | null;
  /** Against the thin-wrapper @cloudamqp/amqp-client case of its group (`<group>-cloudamqp`). */
  ratio_vs_cloudamqp: number | null;
  /** Against raw amqplib publishing pre-made bytes (`<group>-raw`), the reference of earlier rounds. */
  ratio_vs_raw: number | null;
  /** Client CPU (this process, user + system) per operation, microseconds. */
  cpu_us_per_op: number | null;
  /** The broker's CPU (its OS process, all threads) per operation, microseconds. */
  broker_cpu_us_per_op: number | null;
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
  /** The broker's CPU over the timed window, in microseconds (10 ms resolution); unknown without one. */
  brokerCpuUs?: number | undefined;
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

/** What {@link timed} measured around its function. */
export interface Timed<T> {
  value: T;
  ms: number;
  cpuUs: number;
  brokerCpuUs: number | undefined;
}

/**
 * The timed windows of this run, [start, end] in microseconds of the monotonic clock V8's CPU
 * profiles use too: profile.ts keeps only the samples inside them (no set-up, no warm-up).
 */
export const windows: Array<[number, number]> = [];

/** Runs `fn` and measures wall time, this process's CPU and the broker's CPU around it. */
export async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const pid = brokerPid();
  const broker0 = pid === undefined ? undefined : cpuTicks(pid);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const t1 = process.hrtime.bigint();
  const ms = Number(t1 - t0) / 1e6;
  windows.push([Number(t0 / 1000n), Number(t1 / 1000n)]);
  const cpu = process.cpuUsage(cpu0);
  const broker1 = pid === undefined ? undefined : cpuTicks(pid);
  const brokerCpuUs =
    broker0 === undefined || broker1 === undefined ? undefined : (broker1 - broker0) * TICK_US;
  return { value, ms, cpuUs: cpu.user + cpu.system, brokerCpuUs };
}

/** The sample of a timed run of `ops` operations. */
export function sampleOf(ops: number, run: Timed<unknown>): Sample {
  return { ops, ms: run.ms, cpuUs: run.cpuUs, brokerCpuUs: run.brokerCpuUs };
}

/** /proc reports CPU in USER_HZ ticks, 100 per second on Linux whatever the kernel's HZ. */
const TICK_US = 10_000;

let pidCache: { pid: number | undefined } | undefined;
/** The test broker's OS process id, from the node directory `with-broker` exports. */
export function brokerPid(): number | undefined {
  pidCache ??= { pid: readBrokerPid() };
  return pidCache.pid;
}

function readBrokerPid(): number | undefined {
  const dir = process.env['POSTAGE_TEST_NODE_DIR'];
  if (dir === undefined || dir === '') return undefined;
  try {
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU of a process in clock ticks (Linux /proc), or undefined. */
export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
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
export const brokerCpuPerOp = (s: Sample): number | undefined =>
  s.brokerCpuUs === undefined ? undefined : s.brokerCpuUs / s.ops;

/** Summarises the rounds of one case into a row (ratio filled in by the caller). */
export function summarise(name: string, samples: readonly Sample[]): ResultRow {
  const withLatency = samples.filter((s) => s.latencies !== undefined && s.latencies.length > 0);
  const broker = samples.map(brokerCpuPerOp).filter((v): v is number => v !== undefined);
  return {
    case: name,
    ops_per_s: round(median(samples.map(rate))),
    ratio_vs_amqplib: null,
    ratio_vs_cloudamqp: null,
    ratio_vs_raw: null,
    cpu_us_per_op: round(median(samples.map(cpuPerOp)), 1),
    broker_cpu_us_per_op: broker.length === 0 ? null : round(median(broker), 1),
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
  const head = [
    'case',
    'ops/s',
    'vs amqplib',
    'vs cloudamqp',
    'vs bytes',
    'cpu us/op',
    'broker us/op',
    'p50 ms',
    'p99 ms',
    'heap MB',
  ];
  const cell = (v: number | null): string => (v === null ? '-' : String(v));
  const lines = rows.map((r) => [
    r.case,
    String(r.ops_per_s),
    cell(r.ratio_vs_amqplib),
    cell(r.ratio_vs_cloudamqp),
    cell(r.ratio_vs_raw),
    cell(r.cpu_us_per_op),
    cell(r.broker_cpu_us_per_op),
    cell(r.p50_ms),
    cell(r.p99_ms),
    cell(r.heap_growth_mb),
  ]);
  return textTable(head, lines);
}

/** A plain-text table, the first column left-aligned and the rest right-aligned. */
export function textTable(head: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cols: readonly string[]): string =>
    cols
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)].join('\n');
}

/** Writes bench/results.json (the source directory, not the build one). */
export function writeResults(results: unknown, file = 'results.json'): string {
  // Compiled to bench/.build/bench/: a relative file is taken from the source folder, two levels up.
  const path = resolve(join(__dirname, '..', '..'), file);
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  return path;
}

/** Logs progress on stderr, so stdout carries only the table. */
export function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}
