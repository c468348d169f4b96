/**
 * A raw amqplib RPC responder in its own process, so its CPU does not share the driver's
 * event loop: `node responder.js <url> <exchange> <queue> <routingKey>`. It answers every request
 * with a postage success result (a valid envelope) to `replyTo` with the request's
 * `correlationId`, then acks. Prints `ready` on stdout once consuming.
 */
import { connect } from 'amqplib';

const REPLY = Buffer.from(
  JSON.stringify({
    type: 'result',
    name: 'none',
    category: 'message',
    version: '2',
    fingerprint: { name: 'bench-responder', type: 'controller' },
    content: { type: 'success', value: 'pong', message: '' },
    _reserved: {},
  }),
);

async function main(): Promise<void> {
  const [url, exchange, queue, routingKey] = process.argv.slice(2);
  if (url === undefined || exchange === undefined || queue === undefined || routingKey === undefined) {
    throw new Error('usage: responder <url> <exchange> <queue> <routingKey>');
  }
  // noDelay on the responder: it writes the reply and the ack back to back (reference/perf.md).
  const connection = await connect(url, { noDelay: true });
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'direct', { durable: false, autoDelete: false });
  await channel.assertQueue(queue, { durable: false, exclusive: false, autoDelete: false });
  await channel.bindQueue(queue, exchange, routingKey);
  await channel.prefetch(200);
  await channel.consume(queue, (message) => {
    if (message === null) return;
    const { replyTo, correlationId } = message.properties as { replyTo?: string; correlationId?: string };
    if (replyTo !== undefined && replyTo !== '') {
      channel.publish('', replyTo, REPLY, {
        contentType: 'application/json',
        ...(correlationId === undefined ? {} : { correlationId }),
      });
    }
    channel.ack(message);
  });
  process.stdout.write('ready\n');
  const stop = (): void => {
    void connection.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`[responder] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
