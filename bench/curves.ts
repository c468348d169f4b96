/**
 * How postage's cost grows: RPC calls in flight, message size, queues per processor, producers
 * per connection. Each point of a curve is one function run once per round; it returns named
 * figures, and the curve's row is the median of each figure over the rounds. Where a point
 * compares postage with the thin-wrapper amqplib case, both run back to back in the round (which
 * first alternating) and the ratio is the median of the per-round ratios, as for the cases.
 */
import { median } from './common';
import type { Curve, CurveContext, CurveRow, Figures } from './curve-kit';
import { settle } from './harness';
import { inflightPoint, sizePoint } from './curves-load';
import { producersPoint, queuesPoint } from './curves-scale';

export type { CurveRow, CurveSizes } from './curve-kit';

export const CURVES: readonly Curve[] = [
  {
    name: 'rpc-inflight',
    title: 'RPC calls in flight (postage, and the thin amqplib wrapper beside it)',
    points: [1, 10, 100, 1000].map(inflightPoint),
  },
  {
    name: 'size',
    title: 'message size: publish with confirms, parameters of 100 B .. 1 MiB (MB = 10^6 bytes of body)',
    points: [
      [100, '100B'],
      [4096, '4KiB'],
      [65_536, '64KiB'],
      [1_048_576, '1MiB'],
    ].map(([bytes, label]) => sizePoint(bytes as number, label as string)),
  },
  {
    name: 'queues',
    title:
      'one processor consuming N queues (prefetch 1,000 each), fed by two raw amqplib publishers in ' +
      'child processes (msg/s equal to the feed: the processor kept up, the broker set the rate)',
    points: [1, 100, 1000].map(queuesPoint),
  },
  {
    name: 'producers',
    title: 'N producers in one process sharing one connection, 1,000 publishes in flight in all',
    points: [1, 10, 100].map(producersPoint),
  },
];

/** Runs the selected points of every curve for the rounds; the medians per point. */
export async function runCurves(
  ctx: CurveContext,
  wanted: (name: string) => boolean,
  log: (line: string) => void,
): Promise<Record<string, CurveRow[]>> {
  const out: Record<string, CurveRow[]> = {};
  for (const curve of CURVES) {
    const points = curve.points.filter((p) => wanted(p.name) && !(ctx.curve.quick && p.fullOnly === true));
    if (points.length === 0) continue;
    const figures = new Map<string, Figures[]>(points.map((p) => [p.name, []]));
    for (let r = 0; r < ctx.curve.rounds; r += 1) {
      for (const point of points) {
        await settle();
        const f = await point.run(ctx, r);
        figures.get(point.name)?.push(f);
        log(`${point.name} round ${r + 1}/${ctx.curve.rounds}: ${JSON.stringify(f)}`);
      }
    }
    out[curve.name] = points.map((p) => ({ point: p.name, ...medians(figures.get(p.name) ?? []) }));
  }
  return out;
}

function medians(rounds: readonly Figures[]): Figures {
  const keys = [...new Set(rounds.flatMap((f) => Object.keys(f)))];
  const out: Figures = {};
  for (const key of keys) {
    const values = rounds.map((f) => f[key]).filter((v): v is number => typeof v === 'number');
    out[key] = values.length === 0 ? null : median(values);
  }
  return out;
}

/** The title of a curve, for the printed tables. */
export function curveTitle(name: string): string {
  return CURVES.find((c) => c.name === name)?.title ?? name;
}
