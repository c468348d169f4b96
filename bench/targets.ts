/**
 * The verdict lines printed under the table: information, never a failure (MET / MISSED). Every
 * "A against B" is judged on the median over rounds of A's figure over B's in the same round,
 * since each round's runs are seconds apart and this machine's speed drifts within a minute.
 */
import { cpuPerOp, median, quantile, rate, round, type ResultRow, type Sample } from './common';

/** The samples of a run, by case name (one per round, in round order). */
export type Samples = ReadonlyMap<string, readonly Sample[]>;

/** The median over rounds of `f(a) / f(b)` in the same round. */
export function perRoundRatio(
  a: readonly Sample[],
  b: readonly Sample[],
  f: (s: Sample) => number = rate,
): number {
  const n = Math.min(a.length, b.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i += 1) ratios.push(f(a[i] as Sample) / f(b[i] as Sample));
  return median(ratios);
}

/** The median over rounds of `a`'s p50 latency minus `b`'s in the same round (ms). */
export function perRoundP50Difference(a: readonly Sample[], b: readonly Sample[]): number {
  const p50 = (sample: Sample): number => quantile(sample.latencies ?? [], 0.5);
  const n = Math.min(a.length, b.length);
  const diffs: number[] = [];
  for (let i = 0; i < n; i += 1) diffs.push(p50(a[i] as Sample) - p50(b[i] as Sample));
  return median(diffs);
}

/** A number with its sign: +0.04, -0.1. */
export function signed(value: number): string {
  return value < 0 ? String(value) : `+${value}`;
}

/** The paths issue 20 sets targets on, and the peers of each (the thin wrappers). */
const PATHS = ['publish', 'consume-p1000', 'rpc-seq', 'rpc-100'] as const;
const PEERS = ['amqplib', 'cloudamqp', 'rabbitmq-client'] as const;
const PEER_LABEL: Record<(typeof PEERS)[number], string> = {
  amqplib: 'thin-wrapper amqplib',
  cloudamqp: '@cloudamqp/amqp-client',
  'rabbitmq-client': 'rabbitmq-client',
};

function verdict(ok: boolean): string {
  return ok ? 'MET   ' : 'MISSED';
}

/**
 * Issue 20: each path >= 1.0x @cloudamqp/amqp-client and >= 1.0x the thin-wrapper amqplib case
 * (per-round rate ratios), and postage's client CPU per operation no higher than the best
 * peer's (the peer with the lowest median CPU per operation; judged on the per-round ratio).
 */
export function issue20Targets(samples: Samples, rows: readonly ResultRow[]): string[] {
  const lines: string[] = [];
  for (const path of PATHS) {
    const own = samples.get(path);
    if (own === undefined) continue;
    for (const peer of ['cloudamqp', 'amqplib'] as const) {
      const other = samples.get(`${path}-${peer}`);
      if (other === undefined) continue;
      const x = round(perRoundRatio(own, other), 3);
      lines.push(`${verdict(x >= 1)}  ${path} >= 1.0x ${PEER_LABEL[peer]}: ${x}x`);
    }
    const peers = PEERS.map((peer) => ({ peer, row: rows.find((r) => r.case === `${path}-${peer}`) })).filter(
      (p): p is { peer: (typeof PEERS)[number]; row: ResultRow } => p.row?.cpu_us_per_op != null,
    );
    const best = peers.sort((a, b) => (a.row.cpu_us_per_op ?? 0) - (b.row.cpu_us_per_op ?? 0))[0];
    const ownRow = rows.find((r) => r.case === path);
    const bestSamples = best === undefined ? undefined : samples.get(`${path}-${best.peer}`);
    if (best !== undefined && bestSamples !== undefined && ownRow !== undefined) {
      const x = round(perRoundRatio(own, bestSamples, cpuPerOp), 3);
      lines.push(
        `${verdict(x <= 1)}  ${path} client CPU/op <= best peer's (${PEER_LABEL[best.peer]}): ` +
          `${ownRow.cpu_us_per_op} vs ${best.row.cpu_us_per_op} us/op, ${x}x; ` +
          `broker ${ownRow.broker_cpu_us_per_op ?? '-'} vs ${best.row.broker_cpu_us_per_op ?? '-'} us/op`,
      );
    }
  }
  return lines;
}

/** The targets of earlier rounds (against pre-made bytes, the reply queue per call, memory://, heap). */
export function earlierTargets(samples: Samples, rows: readonly ResultRow[]): string[] {
  const get = (name: string): ResultRow | undefined => rows.find((r) => r.case === name);
  const lines: string[] = [];
  const check = (label: string, ok: boolean, detail: string): void => {
    lines.push(`${verdict(ok)}  ${label}: ${detail}`);
  };
  const ratio = (a: string, b: string): number | undefined => {
    const sa = samples.get(a);
    const sb = samples.get(b);
    return sa === undefined || sb === undefined ? undefined : round(perRoundRatio(sa, sb), 3);
  };
  for (const [own, other, label] of [
    ['publish', 'publish-raw', 'raw amqplib, pre-made bytes'],
    ['rpc-100', 'rpc-100-raw', 'raw amqplib, pre-made bytes'],
    ['consume-p100', 'consume-p100-amqplib', 'amqplib consume + JSON.parse'],
    ['consume-p1000', 'consume-p1000-amqplib', 'amqplib consume + JSON.parse'],
  ] as const) {
    const x = ratio(own, other);
    if (x !== undefined) check(`${own} >= 0.95x ${label}`, x >= 0.95, `${x}x`);
  }
  const seq = samples.get('rpc-seq');
  const seqRaw = samples.get('rpc-seq-raw');
  if (seq !== undefined && seqRaw !== undefined) {
    const paired = round(perRoundP50Difference(seq, seqRaw), 3);
    check('rpc-seq p50 <= raw (pre-made bytes) + 0.05 ms', paired <= 0.05, `${signed(paired)} ms`);
  }
  const peer = ratio('rpc-100', 'rpc-100-rabbitmq-client');
  if (peer !== undefined) check('rpc-100 >= 1.3x rabbitmq-client', peer >= 1.3, `${peer}x`);
  const perCall = ratio('rpc-seq', 'rpc-seq-postage');
  if (perCall !== undefined) check('rpc-seq >= 10x a reply queue per call', perCall >= 10, `${perCall}x`);
  const mem = get('memory-broker');
  if (mem !== undefined) {
    check('memory-broker >= 250,000 msg/s (issue 20)', mem.ops_per_s >= 250_000, String(mem.ops_per_s));
  }
  for (const name of ['heap-rpc', 'heap-messages']) {
    const h = get(name)?.heap_growth_mb;
    if (h != null) check(`${name} growth < 10 MB`, h < 10, `${h} MB`);
  }
  return lines;
}
