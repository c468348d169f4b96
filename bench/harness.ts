/**
 * What every case shares: the sizes of a run, the context, raw amqplib set-up of routes and
 * prefilled queues, and the RPC call window.
 */
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';

import type { ExchangeDefinition } from '../lib';
import { brokerPid, cpuTicks, timed, uniqueName, type Sample } from './common';
import { benchExchange, envelopeBytes } from './wire';

/** Sizes of one run, smaller with --quick. */
export interface Sizes {
  /** Messages per publish run. */
  publish: number;
  /** Messages per consume run. */
  consume: number;
  /** Messages per in-process broker run. */
  memory: number;
  /** Timed window of an RPC run, in milliseconds. */
  rpcMs: number;
  /** Calls before an RPC run's window, for at least this long (milliseconds; and 200 calls). */
  rpcWarmMs: number;
}

/** What the cases share: the broker and the RPC responder's exchange and queue. */
export interface Context {
  readonly url: string;
  readonly sizes: Sizes;
  readonly rpcExchange: ExchangeDefinition;
  readonly rpcKey: string;
  /** The responder's queue (clients that address a queue, not an exchange, send to it). */
  readonly rpcQueue: string;
}

export type CaseFn = (ctx: Context) => Promise<Sample>;

/** Publishes are awaited (confirms) in batches of this many. */
export const BATCH = 1000;

const QUEUE_FLAGS = { durable: false, exclusive: false, autoDelete: false } as const;

/** A raw amqplib connection and confirm channel, for set-up outside the timed windows. */
export interface Admin {
  model: ChannelModel;
  channel: ConfirmChannel;
}

export async function rawSetup(url: string): Promise<Admin> {
  const model = await connect(url, { noDelay: true });
  const channel = await model.createConfirmChannel();
  return { model, channel };
}

/** An exchange and the queue bound to it with a routing key. */
export interface Route {
  exchange: ExchangeDefinition;
  queue: string;
}

/** An exchange bound to a fresh queue, declared with raw amqplib exactly as postage declares them. */
export async function declareRoute(channel: Channel, kind: string): Promise<Route> {
  const exchange = benchExchange(uniqueName(`${kind}.x`));
  const queue = uniqueName(`${kind}.q`);
  await declareExchange(channel, exchange);
  await channel.assertQueue(queue, QUEUE_FLAGS);
  await channel.bindQueue(queue, exchange.name, kind);
  return { exchange, queue };
}

/** Declares a bench exchange as postage does (the same arguments, so redeclaring it agrees). */
export async function declareExchange(channel: Channel, exchange: ExchangeDefinition): Promise<void> {
  await channel.assertExchange(exchange.name, 'direct', {
    durable: false,
    autoDelete: false,
    internal: false,
    arguments: {},
  });
}

/** Declares a queue with the flags postage's processor declares, bound to `exchange` by `key`. */
export async function declareQueue(
  channel: Channel,
  exchange: ExchangeDefinition,
  queue: string,
  key: string,
): Promise<void> {
  await channel.assertQueue(queue, QUEUE_FLAGS);
  await channel.bindQueue(queue, exchange.name, key);
}

export async function dropRoute(channel: Channel, route: Route): Promise<void> {
  await channel.deleteQueue(route.queue);
  await channel.deleteExchange(route.exchange.name);
}

/** Resolves on the channel's next 'drain' (when a publish returned false). */
export function drained(channel: Channel): Promise<void> {
  return new Promise((resolve) => channel.once('drain', () => resolve()));
}

/** Fills a fresh queue with `count` postage envelopes (raw, outside the timed window). */
export async function prefilled(url: string, count: number): Promise<{ admin: Admin; route: Route }> {
  const admin = await rawSetup(url);
  const route = await declareRoute(admin.channel, 'consume');
  const content = envelopeBytes(false);
  const properties = { contentType: 'application/json', type: 'command' };
  for (let i = 0; i < count; i += 1) {
    if (!admin.channel.sendToQueue(route.queue, content, properties)) await drained(admin.channel);
    if (i % BATCH === BATCH - 1) await admin.channel.waitForConfirms();
  }
  await admin.channel.waitForConfirms();
  return { admin, route };
}

/** One RPC call of a case; it rejects when the reply is not a success. */
export type Call = () => Promise<unknown>;

/**
 * Calls `call` from `concurrency` loops until the window closes; the latency of every call.
 * Before the window the same loops run for `sizes.rpcWarmMs` (and at least 200 calls): each run
 * opens a fresh client, and a fresh postage producer called one call at a time takes 1,500 to
 * 2,000 calls before its per-call cost settles (raw amqplib, whose code every case shares, a
 * few hundred), so a short warm-up measured the JIT's tier-up rather than the steady state.
 */
export async function rpcWindow(
  call: Call,
  concurrency: number,
  sizes: Pick<Sizes, 'rpcMs' | 'rpcWarmMs'>,
): Promise<Sample> {
  const warmUntil = performance.now() + sizes.rpcWarmMs;
  let warmCalls = 0;
  const warm = async (): Promise<void> => {
    while (warmCalls < 200 || performance.now() < warmUntil) {
      warmCalls += 1;
      await call();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, warm));
  const windowMs = sizes.rpcMs;
  const latencies: number[] = [];
  let calls = 0;
  const run = await timed(async () => {
    const deadline = performance.now() + windowMs;
    const loop = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await call();
        latencies.push(performance.now() - t0);
        calls += 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  });
  return { ops: calls, ms: run.ms, cpuUs: run.cpuUs, brokerCpuUs: run.brokerCpuUs, latencies };
}

/**
 * Between cases, outside any timed window: collects this process's garbage (the driver runs
 * with --expose-gc) and waits until the broker is idle (under a tenth of a core for 100 ms,
 * at most 5 s), so that no case pays for the clean-up of the one before it (a deleted queue of
 * 50,000 messages, closing connections). Without that, whichever case ran first in a round
 * was up to 20 % slower.
 */
export async function settle(): Promise<void> {
  gcNow();
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

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A full collection when the process runs with --expose-gc (the driver does); else nothing. */
export function gcNow(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Heap used after two full collections, in bytes. */
export function heapAfterGc(): number {
  gcNow();
  gcNow();
  return process.memoryUsage().heapUsed;
}
