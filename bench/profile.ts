/**
 * Reads a V8 .cpuprofile and prints where the time went: self time per function and per file.
 * Record one with `npm run bench:profile -- <case regexp>` (node --cpu-prof around the driver,
 * profiles in bench/profiles/), then `node bench/.build/bench/profile.js <file.cpuprofile>`.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function main(): void {
  const file = process.argv[2];
  const top = Number(process.argv[3] ?? 25);
  if (file === undefined) throw new Error('usage: profile <file.cpuprofile> [top]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const perFunction = new Map<string, number>();
  const perFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    const where = frame.url.replace(/^.*\/(node_modules\/[^/]+|lib|bench)\//, '$1/') || '(native)';
    const fn = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
    perFunction.set(fn, (perFunction.get(fn) ?? 0) + us);
    perFile.set(where, (perFile.get(where) ?? 0) + us);
  }
  const print = (title: string, map: Map<string, number>): void => {
    process.stdout.write(`\n${title}\n`);
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${((100 * us) / total).toFixed(1).padStart(5)} %  ${name}\n`);
    }
  };
  print('self time by function', perFunction);
  print('self time by file', perFile);
}

main();
