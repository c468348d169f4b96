/**
 * `npm run bench [-- --quick] [--only <regexp>] [--rounds <n>] [--out <file>]`: the benchmark driver.
 * Each group's cases run interleaved (A B A B ...) for the rounds; the medians go to a table on
 * stdout and to bench/results.json. Timing never fails the run: only a broken case does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  benchExchange,
  consumePostage,
  consumeRaw,
  memoryBroker,
  publishPostage,
  publishRaw,
  rpcPeer,
  rpcPerCallQueue,
  rpcPostage,
  rpcRaw,
  type CaseFn,
  type Context,
  type Sizes,
} from './cases';
import {
  brokerUrl,
  log,
  median,
  quantile,
  rate,
  round,
  summarise,
  table,
  uniqueName,
  writeResults,
  type ResultRow,
  type Sample,
} from './common';

interface Options {
  quick: boolean;
  /** File name under bench/. @default results.json */
  out: string;
  rounds: number;
  only: RegExp | undefined;
}

const FULL: Sizes = { publish: 25_000, consume: 25_000, memory: 100_000, rpcMs: 1_500, rpcWarmMs: 1_000 };
const QUICK: Sizes = { publish: 5_000, consume: 5_000, memory: 10_000, rpcMs: 400, rpcWarmMs: 200 };
const HEAP_FULL = { rpc: 200_000, messages: 1_000_000 };
const HEAP_QUICK = { rpc: 5_000, messages: 30_000 };

/**
 * A group: the cases measured against each other, the first one being postage's. A case named
 * `<group>-raw-bare` is a reference, shown in the table but not written to results.json: raw
 * amqplib with fewer properties than postage sends (see rawPublishOptions in cases.ts).
 */
interface Group {
  readonly name: string;
  readonly cases: ReadonlyArray<readonly [string, CaseFn]>;
}

const BARE = '-raw-bare';

const GROUPS: readonly Group[] = [
  {
    name: 'publish',
    cases: [
      ['publish', publishPostage],
      ['publish-raw', publishRaw('same')],
      ['publish-raw-bare', publishRaw('bare')],
    ],
  },
  {
    name: 'consume-p100',
    cases: [
      ['consume-p100', consumePostage(100)],
      ['consume-p100-raw', consumeRaw(100)],
    ],
  },
  {
    name: 'consume-p1000',
    cases: [
      ['consume-p1000', consumePostage(1000)],
      ['consume-p1000-raw', consumeRaw(1000)],
    ],
  },
  {
    name: 'rpc-seq',
    cases: [
      ['rpc-seq', rpcPostage(1)],
      ['rpc-seq-raw', rpcRaw(1, 'same')],
      ['rpc-seq-raw-bare', rpcRaw(1, 'bare')],
      ['rpc-seq-peer', rpcPeer(1)],
      ['rpc-seq-postage', rpcPerCallQueue],
    ],
  },
  {
    name: 'rpc-100',
    cases: [
      ['rpc-100', rpcPostage(100)],
      ['rpc-100-raw', rpcRaw(100, 'same')],
      ['rpc-100-peer', rpcPeer(100)],
    ],
  },
  { name: 'memory-broker', cases: [['memory-broker', memoryBroker]] },
];

function parseArgs(argv: readonly string[]): Options {
  const quick = argv.includes('--quick');
  const at = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i < 0 ? undefined : argv[i + 1];
  };
  const rounds = Number(at('--rounds') ?? (quick ? 3 : 10));
  const only = at('--only');
  return {
    quick,
    rounds,
    out: at('--out') ?? 'results.json',
    only: only === undefined ? undefined : new RegExp(only),
  };
}

async function startResponder(
  url: string,
  exchange: string,
  queue: string,
  key: string,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(__dirname, 'responder.js'), url, exchange, queue, key], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [ready] = (await Promise.race([
    once(child.stdout as NodeJS.ReadableStream, 'data'),
    once(child, 'exit').then(() => {
      throw new Error('the RPC responder exited before it was ready');
    }),
  ])) as [Buffer];
  if (!ready.toString().includes('ready')) throw new Error(`responder: ${ready.toString()}`);
  return child;
}

async function heapCase(kind: 'rpc' | 'messages', count: number): Promise<ResultRow> {
  const child = spawn(process.execPath, ['--expose-gc', join(__dirname, 'heap.js'), kind, String(count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`heap ${kind} exited with ${String(code)}`);
  const r = JSON.parse(out.trim()) as { ops: number; ms: number; cpuUs: number; heapGrowthMb: number };
  return {
    ...summarise(`heap-${kind}`, [{ ops: r.ops, ms: r.ms, cpuUs: r.cpuUs }]),
    heap_growth_mb: round(r.heapGrowthMb, 2),
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const wanted = (name: string): boolean => options.only === undefined || options.only.test(name);
  const selected = GROUPS.flatMap((g) => g.cases.map(([name]) => name)).filter(wanted);
  // The in-process broker and heap cases need no RabbitMQ: they run (and profile) without one.
  const url = selected.some((name) => name !== 'memory-broker') ? brokerUrl() : '';
  const sizes = options.quick ? QUICK : FULL;
  const rpcExchange = benchExchange(uniqueName('rpc.x'));
  const rpcKey = 'rpc';
  const responder = selected.some((name) => name.startsWith('rpc-'))
    ? await startResponder(url, rpcExchange.name, uniqueName('rpc.q'), rpcKey)
    : undefined;
  const ctx: Context = { url, sizes, rpcExchange, rpcKey };
  const t0 = Date.now();
  const rows: ResultRow[] = [];
  /** Per group, the median over rounds of (postage's p50 - raw's p50) measured in the same round. */
  const pairedP50 = new Map<string, number>();
  /** Per other case of a group: the median over rounds of postage's rate over that case's. */
  const ownOver = new Map<string, number>();
  /** Per group with a bare reference: postage's rate over the bare raw case's, and p50 difference. */
  const vsBare: string[] = [];
  try {
    for (const group of GROUPS) {
      const cases = group.cases.filter(([name]) => wanted(name));
      if (cases.length === 0) continue;
      const samples = new Map<string, Sample[]>(cases.map(([name]) => [name, []]));
      for (let r = 0; r < options.rounds; r += 1) {
        for (const [name, fn] of roundOrder(group.name, cases, r)) {
          await settle();
          const sample = await fn(ctx);
          samples.get(name)?.push(sample);
          log(`${name} round ${r + 1}/${options.rounds}: ${Math.round(rate(sample))} ops/s`);
        }
      }
      const raw = samples.get(`${group.name}-raw`);
      const bare = samples.get(`${group.name}${BARE}`);
      const ownSamples = samples.get(group.name);
      if (bare !== undefined && ownSamples !== undefined) vsBare.push(bareLine(group.name, ownSamples, bare));
      for (const [name] of cases) {
        const own = samples.get(name) ?? [];
        const row = summarise(name, own);
        // The median of the per-round ratios: each pair ran back to back, in the same noise.
        if (raw !== undefined && name !== `${group.name}-raw` && !name.endsWith(BARE)) {
          row.ratio_vs_raw = round(perRoundRatio(own, raw), 3);
          if (name === group.name && own[0]?.latencies !== undefined) {
            pairedP50.set(name, round(perRoundP50Difference(own, raw), 3));
          }
        }
        if (ownSamples !== undefined && name !== group.name)
          ownOver.set(name, perRoundRatio(ownSamples, own));
        rows.push(row);
      }
    }
    const heap = options.quick ? HEAP_QUICK : HEAP_FULL;
    if (wanted('heap-rpc')) rows.push(await heapCase('rpc', heap.rpc));
    if (wanted('heap-messages')) rows.push(await heapCase('messages', heap.messages));
  } finally {
    responder?.kill('SIGTERM');
  }
  const notes =
    vsBare.length === 0
      ? ''
      : `\n\nReference, raw amqplib with fewer properties (no message id):\n${vsBare.join('\n')}`;
  // --quick's rounds are too short and its clients too cold for a verdict (README, Performance).
  const heading = options.quick ? 'Targets (--quick: a smoke run, not a verdict):\n' : '';
  process.stdout.write(
    `${table(rows)}\n\n${heading}${targets(rows, pairedP50, ownOver).join('\n')}${notes}\n`,
  );
  const file = writeResults(
    rows.filter((row) => !row.case.endsWith(BARE)),
    options.out,
  );
  log(`${rows.length} cases in ${Math.round((Date.now() - t0) / 1000)} s; wrote ${file}`);
}

/** The median over rounds of `a`'s rate over `b`'s in the same round. */
function perRoundRatio(a: readonly Sample[], b: readonly Sample[]): number {
  return median(a.map((s, i) => rate(s) / rate(b[i] as Sample)));
}

/** The median over rounds of `a`'s p50 latency minus `b`'s in the same round (ms). */
function perRoundP50Difference(a: readonly Sample[], b: readonly Sample[]): number {
  const p50 = (sample: Sample): number => quantile(sample.latencies ?? [], 0.5);
  return median(a.map((s, i) => p50(s) - p50(b[i] as Sample)));
}

/** postage against the bare raw reference, per round as against raw. */
function bareLine(name: string, own: readonly Sample[], bare: readonly Sample[]): string {
  const ratio = round(perRoundRatio(own, bare), 3);
  const latency =
    own[0]?.latencies === undefined ? '' : `, p50 ${signed(round(perRoundP50Difference(own, bare), 3))} ms`;
  return `        ${name} vs ${name}${BARE}: ${ratio}${latency}`;
}

/** A number with its sign: +0.04, -0.1. */
function signed(value: number): string {
  return value < 0 ? String(value) : `+${value}`;
}

/**
 * The order of a group's cases in round `r`. postage's case and its raw counterpart run back to
 * back, which of the two first alternating, so that each ratio compares two runs a few seconds
 * apart (this machine's speed drifts by up to 2x within a minute). The pair and the other cases
 * rotate, so that no case always runs right after the same one (and pays for its garbage or the
 * broker's clean-up of its queues).
 */
function roundOrder<T extends readonly [string, unknown]>(
  group: string,
  cases: readonly T[],
  r: number,
): T[] {
  const own = cases.find(([name]) => name === group);
  const raw = cases.find(([name]) => name === `${group}-raw`);
  const units: T[][] = [];
  const paired = own !== undefined && raw !== undefined;
  if (paired) units.push(r % 2 === 0 ? [own, raw] : [raw, own]);
  for (const c of cases) if (!paired || (c !== own && c !== raw)) units.push([c]);
  const at = r % units.length;
  return [...units.slice(at), ...units.slice(0, at)].flat();
}

/**
 * Between cases, outside any timed window: collects this process's garbage (the driver runs
 * with --expose-gc) and waits until the broker is idle (under a tenth of a core for 100 ms,
 * at most 5 s), so that no case pays for the clean-up of the one before it (a deleted queue of
 * 50,000 messages, closing connections). Without that, whichever case ran first in a round
 * was up to 20 % slower.
 */
async function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  await sleep(100);
  const pid = brokerPid();
  if (pid === undefined) return;
  const deadline = Date.now() + 5_000;
  let before = cpuTicks(pid);
  while (before !== undefined && Date.now() < deadline) {
    await sleep(100);
    const now = cpuTicks(pid);
    if (now === undefined || now - before <= 1) return; // at most 1 tick (10 ms) in 100 ms
    before = now;
  }
}

/** The test broker's OS process id, from the node directory `with-broker` exports. */
function brokerPid(): number | undefined {
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
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** The targets, read from the rows: information, never a failure. */
function targets(
  rows: readonly ResultRow[],
  pairedP50: ReadonlyMap<string, number>,
  ownOver: ReadonlyMap<string, number>,
): string[] {
  const get = (name: string): ResultRow | undefined => rows.find((r) => r.case === name);
  const lines: string[] = [];
  const check = (label: string, ok: boolean | undefined, detail: string): void => {
    if (ok === undefined) return;
    lines.push(`${ok ? 'met   ' : 'MISSED'}  ${label}: ${detail}`);
  };
  for (const name of ['publish', 'consume-p100', 'consume-p1000', 'rpc-100']) {
    const r = get(name)?.ratio_vs_raw;
    check(`${name} ratio_vs_raw >= 0.95`, r == null ? undefined : r >= 0.95, String(r));
  }
  const seq = get('rpc-seq');
  const seqRaw = get('rpc-seq-raw');
  const paired = pairedP50.get('rpc-seq');
  if (seq?.p50_ms != null && seqRaw?.p50_ms != null && paired !== undefined) {
    // Judged on the rounds' paired differences (as vs raw is on paired ratios): the medians of
    // the two columns can come from different rounds, and rounds differ by more than 0.05 ms.
    const ofMedians = round(seq.p50_ms - seqRaw.p50_ms, 3);
    check(
      'rpc-seq p50 <= raw + 0.05 ms',
      paired <= 0.05,
      `${signed(paired)} ms (median of the per-round differences; difference of the medians ${signed(ofMedians)} ms)`,
    );
  }
  // "Nx another case" is judged, as vs raw is, on the median of the per-round ratios.
  const times = (own: string, other: string, label: string, target: number): void => {
    const x = ownOver.get(other);
    const a = get(own);
    const b = get(other);
    if (x === undefined || a === undefined || b === undefined) return;
    const ofMedians = round(a.ops_per_s / b.ops_per_s, 2);
    check(
      `${own} >= ${target}x ${label}`,
      x >= target,
      `${round(x, 2)}x (median of the per-round ratios; ratio of the medians ${ofMedians}x)`,
    );
  };
  times('rpc-100', 'rpc-100-peer', 'rabbitmq-client', 1.3);
  times('rpc-seq', 'rpc-seq-postage', 'a reply queue per call', 10);
  const mem = get('memory-broker');
  check(
    'memory-broker >= 150,000 msg/s',
    mem === undefined ? undefined : mem.ops_per_s >= 150_000,
    String(mem?.ops_per_s),
  );
  for (const name of ['heap-rpc', 'heap-messages']) {
    const h = get(name)?.heap_growth_mb;
    check(`${name} growth < 10 MB`, h == null ? undefined : h < 10, `${h} MB`);
  }
  return lines;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
