/**
 * The one helper broker specs use: the test broker's URL, unique names, raw amqplib
 * connections for assertions, rabbitmqctl against the test node, and polling.
 */
import { randomUUID } from 'node:crypto';

import { connect, type Channel, type ChannelModel } from 'amqplib';

import { rabbitmqctl } from '../../scripts/rabbit-node';

/** The URL of the broker `npm test` started (or POSTAGE_TEST_URL). Never skips: fails loudly. */
export function testUrl(): string {
  const url = process.env['POSTAGE_TEST_URL'];
  if (url === undefined || url === '') {
    throw new Error('POSTAGE_TEST_URL is not set: run the broker specs through `npm test`');
  }
  return url;
}

/** A unique name for a test's exchange or queue. */
export function uid(prefix = 'test'): string {
  return `${prefix}.${randomUUID().slice(0, 8)}`;
}

/** A plain amqplib connection (noDelay, 'error' handled) for setting up and checking. */
export async function rawConnection(): Promise<ChannelModel> {
  const connection = await connect(testUrl(), { noDelay: true });
  connection.on('error', () => undefined);
  return connection;
}

/** Opens a connection and a channel, runs `fn`, closes both. */
export async function withRawChannel<T>(fn: (channel: Channel) => Promise<T>): Promise<T> {
  const connection = await rawConnection();
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return await fn(channel);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Runs `rabbitmqctl -n <test node> ...args` (the CLI of the test broker's kind) and returns its stdout. */
export function ctl(...args: string[]): Promise<string> {
  const node = process.env['POSTAGE_TEST_NODE'];
  if (node === undefined || node === '') {
    return Promise.reject(new Error('POSTAGE_TEST_NODE is not set: run the broker specs through `npm test`'));
  }
  return rabbitmqctl(node, args, { timeoutMs: 60_000 }).catch((err: unknown) => {
    throw new Error(
      `rabbitmqctl ${args.join(' ')} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  });
}

/** Polls until `predicate` is true; throws after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  {
    timeoutMs = 5000,
    intervalMs = 10,
    what = 'condition',
  }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
