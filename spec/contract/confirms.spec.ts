import { uid } from '../helpers/broker';
import { Collector, channel, connect, publishConfirmed, sleep, label } from '../helpers/contract';
import type { TransportMessage } from '../../lib/transport/types';

describe(`confirms, returns and direct reply-to (contract, ${label})`, () => {
  test('confirms - every publish on a confirm channel is confirmed, in order', async () => {
    const ch = await channel(undefined, true);
    const { queue } = await ch.assertQueue('', { exclusive: true, durable: false });
    const order: number[] = [];
    await Promise.all(
      Array.from(
        { length: 500 },
        (_, i) =>
          new Promise<void>((resolve, reject) =>
            ch.publish('', queue, Buffer.from(String(i)), {}, (err) => {
              if (err !== null && err !== undefined) reject(err as Error);
              order.push(i);
              resolve();
            }),
          ),
      ),
    );
    expect(order).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(await ch.checkQueue(queue)).toMatchObject({ messageCount: 500 });
  });

  test('returns - a mandatory message that routes nowhere comes back (312 NO_ROUTE) before its ack', async () => {
    const ch = await channel(undefined, true);
    const events: string[] = [];
    let returned: TransportMessage | undefined;
    ch.on('return', (m: TransportMessage) => {
      returned = m;
      events.push('return');
    });
    const err = await publishConfirmed(ch, 'amq.direct', uid('nobody'), 'lost?', {
      mandatory: true,
      messageId: 'r1',
    });
    events.push('ack');
    expect(err).toBeNull();
    expect(events).toEqual(['return', 'ack']);
    expect(returned?.fields).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE', exchange: 'amq.direct' });
    expect(returned?.properties.messageId).toBe('r1');
    expect(returned?.content.toString()).toBe('lost?');
  });

  test('returns - without mandatory an unroutable message is simply acked', async () => {
    const ch = await channel(undefined, true);
    let returns = 0;
    ch.on('return', () => returns++);
    expect(await publishConfirmed(ch, 'amq.direct', uid('nobody'), 'dropped')).toBeNull();
    await sleep(50);
    expect(returns).toBe(0);
  });

  test('reply-to - direct reply-to round trip; the reply address is rewritten per channel', async () => {
    const server = await channel(await connect(), true);
    const { queue } = await server.assertQueue('', { exclusive: true, durable: false });
    const client = await channel(await connect(), true);
    const replies = new Collector();
    await client.consume('amq.rabbitmq.reply-to', replies.onMessage, { noAck: true });
    const requests = new Collector();
    await server.consume(queue, requests.onMessage, { noAck: true });
    await publishConfirmed(client, '', queue, 'ping', {
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId: 'c1',
    });
    const [request] = await requests.waitFor(1);
    const replyTo = request?.properties.replyTo as string;
    expect(replyTo).toMatch(/^amq\.rabbitmq\.reply-to\..+/);
    await publishConfirmed(server, '', replyTo, 'pong', { correlationId: 'c1', mandatory: true });
    const [reply] = await replies.waitFor(1);
    expect(reply?.content.toString()).toBe('pong');
    expect(reply?.properties.correlationId).toBe('c1');
  });

  test('reply-to - publishing with reply-to but no reply consumer closes the channel (406)', async () => {
    const ch = await channel(undefined, true);
    const { queue } = await ch.assertQueue('', { exclusive: true, durable: false });
    const err = await publishConfirmed(ch, '', queue, 'x', { replyTo: 'amq.rabbitmq.reply-to' });
    expect(err).toBeInstanceOf(Error);
    await ch.whenClosed;
    expect(ch.errors[0]).toMatchObject({ code: 406 });
  });

  test('reply-to - a reply to a client that is gone is returned when mandatory', async () => {
    const server = await channel(await connect(), true);
    const { queue } = await server.assertQueue('', { exclusive: true, durable: false });
    const clientConnection = await connect();
    const client = await channel(clientConnection, true);
    await client.consume('amq.rabbitmq.reply-to', () => undefined, { noAck: true });
    const requests = new Collector();
    await server.consume(queue, requests.onMessage, { noAck: true });
    await publishConfirmed(client, '', queue, 'ping', { replyTo: 'amq.rabbitmq.reply-to' });
    const [request] = await requests.waitFor(1);
    await clientConnection.close();
    await sleep(50);
    const returned = new Promise<number>((resolve) =>
      server.on('return', (m: TransportMessage) => resolve(m.fields.replyCode ?? 0)),
    );
    await publishConfirmed(server, '', request?.properties.replyTo as string, 'late', { mandatory: true });
    expect(await returned).toBe(312);
  });
});
