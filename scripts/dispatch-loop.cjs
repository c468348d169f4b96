/**
 * Dispatch loop: N messages from a producer through the in-process broker (memory://) into a
 * processor with one async handler; prints msg/s and CPU microseconds per message. Runs the
 * compiled code (npm run build first) with plain node, so that the numbers are tsc's output:
 *
 *   npm run build && node scripts/dispatch-loop.cjs [messages=200000] [window=2000]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof scripts/dispatch-loop.cjs
 *
 * With DRAIN=1 the queue is filled first (raw publishes, not timed) and only the processor's
 * side is timed: broker delivery, dispatch, ack.
 */
/* global console, Buffer -- a script (CommonJS) that prints its numbers */
const { GenericProducer, MemoryBroker, MessageProcessor, MessageCommand } = require('../dist');
const { memoryTransport } = require('../dist/transport/memory');

const total = Number(process.argv[2] ?? 200_000);
// Publishes in flight at once (awaited in windows: confirms are pipelined).
const windowSize = Number(process.argv[3] ?? 2000);
const drain = process.env.DRAIN === '1';

async function main() {
  const host = `dispatch-loop-${process.pid}`;
  const url = `memory://${host}`;
  const exchange = {
    name: 'loop',
    exchange_type: 'direct',
    passive: false,
    durable: false,
    auto_delete: false,
  };
  const processor = new MessageProcessor({
    url,
    eqk: [[exchange, [['loop-queue', 'loop']]]],
    prefetch: 1000,
  });
  let handled = 0;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  processor.registerHandler('command', 'tick', async () => {
    if (++handled === total) done();
  });
  let fill;
  if (drain) {
    fill = await memoryTransport.connect(
      { protocol: 'memory', host, port: 0, vhost: '/', user: '', password: '' },
      { heartbeat: 0, connectTimeout: 0, connectionName: 'fill' },
    );
    const channel = await fill.createChannel();
    await channel.assertQueue('loop-queue', { durable: false });
    const body = Buffer.from(JSON.stringify(new MessageCommand('tick', 1).body));
    for (let i = 0; i < total; i++) {
      channel.publish('', 'loop-queue', body, { contentType: 'application/json' });
    }
    await MemoryBroker.named(host).idle();
  }
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await processor.start();
  const producer = new GenericProducer({ url, eks: [[exchange, 'loop']] });
  const message = new MessageCommand('tick', 1);
  for (let sent = drain ? total : 0; sent < total;) {
    const batch = [];
    for (let i = 0; i < windowSize && sent < total; i++, sent++) batch.push(producer.send(message));
    await Promise.all(batch);
  }
  await finished;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    JSON.stringify({
      mode: drain ? 'drain' : 'loop',
      messages: total,
      msgPerSec: Math.round(total / seconds),
      cpuUsPerMsg: Number(((cpu.user + cpu.system) / total).toFixed(2)),
      seconds: Number(seconds.toFixed(2)),
    }),
  );
  await producer.close();
  await processor.stop();
  await fill?.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
