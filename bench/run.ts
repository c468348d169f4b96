/**
 * `npm run bench [-- --quick] [--only <regexp>] [--rounds <n>] [--out <file>] [--no-curves]`: the
 * benchmark driver. Each group's cases run interleaved for the rounds, then the curves
 * (curves.ts); the medians go to tables on stdout and to bench/results.json, with the verdict
 * lines. Timing never fails the run: only a broken case does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';

import {
  consumePostage,
  memoryBroker,
  publishPostage,
  publishRaw,
  rpcPerCallQueue,
  rpcPostage,
  rpcRaw,
} from './cases';
import {
  brokerUrl,
  log,
  median,
  rate,
  round,
  summarise,
  table,
  textTable,
  uniqueName,
  windows,
  writeResults,
  type ResultRow,
  type Sample,
} from './common';
import { CURVES, curveTitle, runCurves, type CurveRow, type CurveSizes } from './curves';
import { settle, type CaseFn, type Context, type Sizes } from './harness';
import {
  consumeAmqplib,
  consumeCloudamqp,
  publishAmqplib,
  publishCloudamqp,
  rpcAmqplib,
  rpcCloudamqp,
  rpcRabbitmqClient,
} from './peers';
import { earlierTargets, issue20Targets, perRoundP50Difference, perRoundRatio, signed } from './targets';
import { benchExchange } from './wire';

interface Options {
  quick: boolean;
  /** File name under bench/. @default results.json */
  out: string;
  rounds: number;
  only: RegExp | undefined;
  /** Skip the curves (`--no-curves`). */
  curves: boolean;
}

const FULL: Sizes = { publish: 25_000, consume: 25_000, memory: 100_000, rpcMs: 1_500, rpcWarmMs: 1_000 };
const QUICK: Sizes = { publish: 3_000, consume: 3_000, memory: 10_000, rpcMs: 250, rpcWarmMs: 100 };
const HEAP_FULL = { rpc: 200_000, messages: 1_000_000 };
const HEAP_QUICK = { rpc: 5_000, messages: 30_000 };
const CURVES_FULL: CurveSizes = {
  rounds: 3,
  quick: false,
  rpcMs: 1_500,
  rpcWarmMs: 1_000,
  sizeBytes: 32e6,
  sizeMaxCount: 10_000,
  queueMessages: 20_000,
  producerMessages: 20_000,
};
/**
 * --quick: one round of small runs, to prove every curve still runs (figures not worth reading),
 * without the 1,000-queue point.
 */
const CURVES_QUICK: CurveSizes = {
  rounds: 1,
  quick: true,
  rpcMs: 200,
  rpcWarmMs: 100,
  sizeBytes: 2e6,
  sizeMaxCount: 1_000,
  queueMessages: 2_000,
  producerMessages: 2_000,
};

/**
 * A group: the cases measured against each other, the first one being postage's. postage's
 * case, `<group>-amqplib` and `<group>-cloudamqp` (the thin wrappers, peers.ts) run back to
 * back in every round. A case named `<group>-raw-bare` is a reference, shown in the table but
 * not written to results.json: raw amqplib with fewer properties than postage sends.
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
      ['publish-amqplib', publishAmqplib],
      ['publish-cloudamqp', publishCloudamqp],
      ['publish-raw', publishRaw('same')],
      ['publish-raw-bare', publishRaw('bare')],
    ],
  },
  {
    name: 'consume-p100',
    cases: [
      ['consume-p100', consumePostage(100)],
      ['consume-p100-amqplib', consumeAmqplib(100)],
      ['consume-p100-cloudamqp', consumeCloudamqp(100)],
    ],
  },
  {
    name: 'consume-p1000',
    cases: [
      ['consume-p1000', consumePostage(1000)],
      ['consume-p1000-amqplib', consumeAmqplib(1000)],
      ['consume-p1000-cloudamqp', consumeCloudamqp(1000)],
    ],
  },
  {
    name: 'rpc-seq',
    cases: [
      ['rpc-seq', rpcPostage(1)],
      ['rpc-seq-amqplib', rpcAmqplib(1)],
      ['rpc-seq-cloudamqp', rpcCloudamqp(1)],
      ['rpc-seq-rabbitmq-client', rpcRabbitmqClient(1)],
      ['rpc-seq-raw', rpcRaw(1, 'same')],
      ['rpc-seq-raw-bare', rpcRaw(1, 'bare')],
      ['rpc-seq-postage', rpcPerCallQueue],
    ],
  },
  {
    name: 'rpc-100',
    cases: [
      ['rpc-100', rpcPostage(100)],
      ['rpc-100-amqplib', rpcAmqplib(100)],
      ['rpc-100-cloudamqp', rpcCloudamqp(100)],
      ['rpc-100-rabbitmq-client', rpcRabbitmqClient(100)],
      ['rpc-100-raw', rpcRaw(100, 'same')],
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
  const rounds = Number(at('--rounds') ?? (quick ? 2 : 10));
  const only = at('--only');
  return {
    quick,
    rounds,
    out: at('--out') ?? 'results.json',
    only: only === undefined ? undefined : new RegExp(only),
    curves: !argv.includes('--no-curves'),
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
  const curvePoints = options.curves
    ? CURVES.flatMap((c) => c.points)
        .filter((p) => !(options.quick && p.fullOnly === true))
        .map((p) => p.name)
        .filter(wanted)
    : [];
  // The in-process broker and heap cases need no RabbitMQ: they run (and profile) without one.
  const needsBroker = selected.some((name) => name !== 'memory-broker') || curvePoints.length > 0;
  const url = needsBroker ? brokerUrl() : '';
  const sizes = options.quick ? QUICK : FULL;
  const rpcExchange = benchExchange(uniqueName('rpc.x'));
  const rpcKey = 'rpc';
  const rpcQueue = uniqueName('rpc.q');
  const needsResponder = [...selected, ...curvePoints].some(
    (name) => name.startsWith('rpc-') || name.startsWith('curve-rpc-'),
  );
  const responder = needsResponder
    ? await startResponder(url, rpcExchange.name, rpcQueue, rpcKey)
    : undefined;
  const ctx: Context = { url, sizes, rpcExchange, rpcKey, rpcQueue };
  const t0 = Date.now();
  const loadBefore = loadavg();
  // The 1-minute load average every 10 s: the machine is shared, and the run's figures are read
  // with the load they were measured under.
  const loadSeen: number[] = [loadBefore[0] ?? 0];
  const sampler = setInterval(() => loadSeen.push(loadavg()[0] ?? 0), 10_000);
  sampler.unref();
  const rows: ResultRow[] = [];
  const samples = new Map<string, Sample[]>();
  let curves: Record<string, CurveRow[]> = {};
  try {
    for (const group of GROUPS) {
      const cases = group.cases.filter(([name]) => wanted(name));
      if (cases.length === 0) continue;
      for (const [name] of cases) samples.set(name, []);
      for (let r = 0; r < options.rounds; r += 1) {
        for (const [name, fn] of roundOrder(group.name, cases, r)) {
          await settle();
          const sample = await fn(ctx);
          samples.get(name)?.push(sample);
          log(`${name} round ${r + 1}/${options.rounds}: ${Math.round(rate(sample))} ops/s`);
        }
      }
      rows.push(
        ...groupRows(
          group.name,
          cases.map(([name]) => name),
          samples,
        ),
      );
    }
    const heap = options.quick ? HEAP_QUICK : HEAP_FULL;
    if (wanted('heap-rpc')) rows.push(await heapCase('rpc', heap.rpc));
    if (wanted('heap-messages')) rows.push(await heapCase('messages', heap.messages));
    if (curvePoints.length > 0) {
      const curve = options.quick ? CURVES_QUICK : CURVES_FULL;
      curves = await runCurves({ ...ctx, curve }, wanted, log);
    }
  } finally {
    responder?.kill('SIGTERM');
    clearInterval(sampler);
  }
  const loadAfter = loadavg();
  loadSeen.push(loadAfter[0] ?? 0);
  const loadRange = {
    min: round(Math.min(...loadSeen), 2),
    median: round(median(loadSeen), 2),
    max: round(Math.max(...loadSeen), 2),
  };
  const bareLines = GROUPS.flatMap((g) => {
    const own = samples.get(g.name);
    const bare = samples.get(`${g.name}${BARE}`);
    return own === undefined || bare === undefined ? [] : [bareLine(g.name, own, bare)];
  });
  const notes =
    bareLines.length === 0
      ? ''
      : `\n\nReference, raw amqplib with fewer properties (no message id):\n${bareLines.join('\n')}`;
  // --quick's rounds are too short and its clients too cold for a verdict (README, Performance).
  const smoke = options.quick ? ' (--quick: a smoke run, not a verdict)' : '';
  const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');
  const out = [
    table(rows),
    '',
    `Targets, issue 20${smoke}:`,
    ...issue20Targets(samples, rows),
    '',
    `Targets of earlier rounds${smoke}:`,
    ...earlierTargets(samples, rows),
  ].join('\n');
  process.stdout.write(`${out}${notes}\n${curveTables(curves)}`);
  process.stdout.write(
    `\nLoad average (1, 5, 15 min): ${load(loadBefore)} at the start, ${load(loadAfter)} at the end; ` +
      `1-min load every 10 s: min ${loadRange.min}, median ${loadRange.median}, max ${loadRange.max}\n`,
  );
  const file = writeResults(
    {
      date: new Date().toISOString(),
      quick: options.quick,
      rounds: options.rounds,
      load_average: {
        start: loadBefore.map((v) => round(v, 2)),
        end: loadAfter.map((v) => round(v, 2)),
        during: loadRange,
      },
      cases: rows.filter((row) => !row.case.endsWith(BARE)),
      curves,
    },
    options.out,
  );
  const profiled = profileDir();
  if (profiled !== undefined) {
    writeFileSync(join(profiled, `windows-${process.pid}.json`), JSON.stringify(windows));
  }
  log(
    `${rows.length} cases, ${curvePoints.length} curve points in ${Math.round((Date.now() - t0) / 1000)} s; wrote ${file}`,
  );
}

/** The directory node --cpu-prof writes this process's profile to, when it runs under it. */
function profileDir(): string | undefined {
  if (!process.execArgv.some((a) => a.startsWith('--cpu-prof'))) return undefined;
  const dir = process.execArgv.find((a) => a.startsWith('--cpu-prof-dir='));
  return dir === undefined ? process.cwd() : dir.slice('--cpu-prof-dir='.length);
}

/** The rows of a group, ratios filled in from the per-round samples. */
function groupRows(
  group: string,
  names: readonly string[],
  samples: ReadonlyMap<string, Sample[]>,
): ResultRow[] {
  const against = (suffix: string): readonly Sample[] | undefined => samples.get(`${group}-${suffix}`);
  const amqplib = against('amqplib');
  const cloudamqp = against('cloudamqp');
  const raw = against('raw');
  return names.map((name) => {
    const own = samples.get(name) ?? [];
    const row = summarise(name, own);
    const ratio = (other: readonly Sample[] | undefined, otherName: string): number | null =>
      other === undefined || name === otherName || name.endsWith(BARE)
        ? null
        : round(perRoundRatio(own, other), 3);
    row.ratio_vs_amqplib = ratio(amqplib, `${group}-amqplib`);
    row.ratio_vs_cloudamqp = ratio(cloudamqp, `${group}-cloudamqp`);
    row.ratio_vs_raw = ratio(raw, `${group}-raw`);
    return row;
  });
}

/** The curves as tables, one per curve, its figures as columns. */
function curveTables(curves: Record<string, CurveRow[]>): string {
  const parts: string[] = [];
  for (const [name, rows] of Object.entries(curves)) {
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => k !== 'point');
    const lines = rows.map((r) => [r.point, ...keys.map((k) => (r[k] == null ? '-' : String(r[k])))]);
    parts.push(`\nCurve ${name}: ${curveTitle(name)}\n${textTable(['point', ...keys.map(short)], lines)}\n`);
  }
  return parts.join('');
}

/** A figure's column heading: its name without the unit suffixes that make tables wide. */
function short(key: string): string {
  return key.replace(/_per_/g, '/').replace(/_/g, ' ');
}

/** postage against the bare raw reference, per round as against raw. */
function bareLine(name: string, own: readonly Sample[], bare: readonly Sample[]): string {
  const ratio = round(perRoundRatio(own, bare), 3);
  const latency =
    own[0]?.latencies === undefined ? '' : `, p50 ${signed(round(perRoundP50Difference(own, bare), 3))} ms`;
  return `        ${name} vs ${name}${BARE}: ${ratio}${latency}`;
}

/**
 * The order of a group's cases in round `r`. postage's case and the thin wrappers it is judged
 * against (`-amqplib`, `-cloudamqp`) run back to back, their order permuted from round to round,
 * so that each ratio compares runs a few seconds apart (this machine's speed drifts by up to 2x
 * within a minute). That unit and the other cases rotate, so that no case always runs right
 * after the same one (and pays for its garbage or the broker's clean-up of its queues).
 */
function roundOrder<T extends readonly [string, unknown]>(
  group: string,
  cases: readonly T[],
  r: number,
): T[] {
  const judged = [group, `${group}-amqplib`, `${group}-cloudamqp`];
  const unit = judged.map((name) => cases.find(([n]) => n === name)).filter((c): c is T => c !== undefined);
  const permutations = permutationsOf(unit);
  const units: T[][] = unit.length === 0 ? [] : [permutations[r % permutations.length] as T[]];
  for (const c of cases) if (!unit.includes(c)) units.push([c]);
  const at = r % units.length;
  return [...units.slice(at), ...units.slice(0, at)].flat();
}

/** Every order of `items` (at most 3 here), the identity first. */
function permutationsOf<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutationsOf([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
