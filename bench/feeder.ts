/**
 * A raw amqplib publisher in its own process, so that its CPU is not counted as the consumer's:
 * `node feeder.js <url> <exchange> <keys> <count> <offset> <stride>`. It connects, prints
 * `ready`, waits for a line on stdin, then publishes `count` postage envelopes (pre-made bytes)
 * to the routing keys `q<(offset + i * stride) % keys>` (several feeders share the keys out),
 * confirms awaited every 1,000, prints `{"ms": ...}` and exits.
 */
import { once } from 'node:events';

import { connect } from 'amqplib';

import { envelopeBytes } from './wire';

async function main(): Promise<void> {
  const [url, exchange, keysArg, countArg, offsetArg, strideArg] = process.argv.slice(2);
  const keys = Number(keysArg);
  const count = Number(countArg);
  const offset = Number(offsetArg ?? 0);
  const stride = Number(strideArg ?? 1);
  if (url === undefined || exchange === undefined || !(keys > 0) || !(count > 0) || !(stride > 0)) {
    throw new Error('usage: feeder <url> <exchange> <keys> <count> <offset> <stride>');
  }
  const connection = await connect(url, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  const content = envelopeBytes(false);
  const properties = { contentType: 'application/json', type: 'command', deliveryMode: 1 };
  const routingKeys = Array.from({ length: keys }, (_, j) => `q${j}`);
  process.stdout.write('ready\n');
  await once(process.stdin, 'data');
  const t0 = performance.now();
  for (let i = 0; i < count; i += 1) {
    const key = routingKeys[(offset + i * stride) % keys] as string;
    if (!channel.publish(exchange, key, content, properties)) {
      await once(channel, 'drain');
    }
    if (i % 1000 === 999) await channel.waitForConfirms();
  }
  await channel.waitForConfirms();
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - t0 })}\n`);
  await connection.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[feeder] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
