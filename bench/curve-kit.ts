/**
 * What the curves share: their sizes, a point and its figures, and the pairing of postage's run
 * with the thin-wrapper amqplib run in a round.
 */
import { round, type Sample } from './common';
import { settle, type Context } from './harness';

export interface CurveSizes {
  /** Rounds of every curve (fewer than the cases': each point is slower). */
  rounds: number;
  /** The --quick variant: points marked fullOnly are left out. */
  quick: boolean;
  /** RPC window and warm-up per point, ms. */
  rpcMs: number;
  rpcWarmMs: number;
  /** Body bytes published per message-size run (at least 20 messages). */
  sizeBytes: number;
  /** At most this many messages per message-size run. */
  sizeMaxCount: number;
  /** Messages fed to the processor per queue-count run (spread over its queues). */
  queueMessages: number;
  /** Messages published per producer-count run (spread over the producers). */
  producerMessages: number;
}

/** The figures of one point in one round (null: not measured). */
export type Figures = Record<string, number | null>;

export interface CurveContext extends Context {
  readonly curve: CurveSizes;
}

export interface CurvePoint {
  /** Selectable with --only, e.g. `curve-rpc-inflight-100`. */
  readonly name: string;
  readonly run: (ctx: CurveContext, round: number) => Promise<Figures>;
  /** Left out of --quick (a point that costs seconds of set-up alone). */
  readonly fullOnly?: boolean;
}

export interface Curve {
  readonly name: string;
  /** One line saying what a row measures. */
  readonly title: string;
  readonly points: readonly CurvePoint[];
}

/** One row of a curve in results.json: the point and the median of each figure. */
export interface CurveRow {
  point: string;
  [figure: string]: number | string | null;
}

/** Runs `a` and `b` back to back, which first alternating by round, each after a settle. */
export async function paired(
  r: number,
  a: () => Promise<Sample>,
  b: () => Promise<Sample>,
): Promise<[Sample, Sample]> {
  const first = r % 2 === 0 ? a : b;
  const second = r % 2 === 0 ? b : a;
  await settle();
  const one = await first();
  await settle();
  const two = await second();
  return r % 2 === 0 ? [one, two] : [two, one];
}

export const perOp = (value: number | undefined): number | null =>
  value === undefined ? null : round(value, 1);
