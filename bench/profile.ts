/**
 * Reads a V8 .cpuprofile and prints where the time went: self time per function and per file,
 * then postage's own code: self time of lib/ functions, and every sample charged to the nearest
 * lib/ frame on its stack (what a postage function costs with the amqplib, Node and native work
 * it calls). Shares are of the busy time (idle left out). Record one with
 * `npm run bench:profile -- <case regexp>` (node --cpu-prof around the driver, profiles in
 * bench/profiles/), then `node bench/.build/bench/profile.js <file.cpuprofile> [top]`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A file name short enough to read: from node_modules/<package>/, or from lib/ or bench/ on. */
function where(url: string): string {
  const inPackage = /^.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (inPackage !== null) return `${inPackage[1]}/${inPackage[2]}`;
  return url.replace(/^.*\/\.build\//, '').replace(/^file:\/\/.*\/(lib|bench)\//, '$1/') || '(native)';
}

/**
 * The driver's timed windows for this profile (run.ts writes windows-<pid>.json beside it), or
 * undefined: then every sample counts.
 */
function windowsOf(file: string): Array<[number, number]> | undefined {
  const pid = /^CPU\.\d+\.\d+\.(\d+)\./.exec(basename(file))?.[1];
  const path = pid === undefined ? undefined : join(dirname(file), `windows-${pid}.json`);
  return path !== undefined && existsSync(path)
    ? (JSON.parse(readFileSync(path, 'utf8')) as Array<[number, number]>)
    : undefined;
}

/** postage's own code, as compiled into bench/.build/lib/ (or lib/ itself under tsx). */
function isPostage(url: string): boolean {
  return /\/lib\//.test(url) && !url.includes('node_modules');
}

function main(): void {
  const file = process.argv[2];
  const top = Number(process.argv[3] ?? 25);
  if (file === undefined) throw new Error('usage: profile <file.cpuprofile> [top]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const windows = windowsOf(file);
  const inWindow = (t: number): boolean =>
    windows === undefined || windows.some(([a, b]) => t >= a && t <= b);
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (inWindow(t)) selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  });
  const label = (n: ProfileNode): string =>
    `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  let idle = 0;
  let busy = 0;
  const perFunction = new Map<string, number>();
  const perFile = new Map<string, number>();
  const ownSelf = new Map<string, number>();
  const charged = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number): void => {
    map.set(key, (map.get(key) ?? 0) + us);
  };
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    if (node.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    add(perFunction, label(node), us);
    add(perFile, where(node.callFrame.url), us);
    if (isPostage(node.callFrame.url)) add(ownSelf, label(node), us);
    let at: ProfileNode | undefined = node;
    while (at !== undefined && !isPostage(at.callFrame.url)) {
      const up = parent.get(at.id);
      at = up === undefined ? undefined : byId.get(up);
    }
    add(charged, at === undefined ? '(outside postage)' : label(at), us);
  }
  const ownTotal = [...ownSelf.values()].reduce((a, b) => a + b, 0);
  const chargedTotal = busy - (charged.get('(outside postage)') ?? 0);
  process.stdout.write(
    `${windows === undefined ? 'whole run' : `${windows.length} timed windows`}: ` +
      `busy ${(busy / 1e3).toFixed(0)} ms, idle ${(idle / 1e3).toFixed(0)} ms; postage's own self time ` +
      `${((100 * ownTotal) / busy).toFixed(1)} % of busy, charged to postage frames ` +
      `${((100 * chargedTotal) / busy).toFixed(1)} %\n`,
  );
  const print = (title: string, map: Map<string, number>): void => {
    process.stdout.write(`\n${title} (% of busy)\n`);
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}\n`);
    }
  };
  print('self time by function', perFunction);
  print('self time by file', perFile);
  print("self time of postage's functions", ownSelf);
  print('charged to the nearest postage frame (what it calls included)', charged);
}

main();
