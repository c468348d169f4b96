/**
 * A publish amqplib's encoder refuses (issue 12, point 3): it fails at once with a typed error,
 * for good (never CHANNEL_CLOSED, never back into the outage buffer, never retried), and the
 * publisher's loops keep the event loop turning: timers fire and SIGTERM still closes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

import { Connection, ErrorCode, ValidationError } from '../../lib';
import { Publisher } from '../../lib/connection/publisher';
import { testUrl, uid, waitFor, withRawChannel } from '../helpers/broker';

/** ~70 KB of headers: more than amqplib's 64 KiB field-table encoding buffer. */
function hugeHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < 2000; i++) headers[`h${i}`] = 'x'.repeat(30);
  return headers;
}

async function queueWithDepth(): Promise<{ queue: string; depth: () => Promise<number> }> {
  const queue = uid('enc');
  await withRawChannel((ch) => ch.assertQueue(queue, { arguments: { 'x-expires': 60_000 } }));
  return {
    queue,
    depth: () => withRawChannel(async (ch) => (await ch.checkQueue(queue)).messageCount),
  };
}

describe('publish encoding failures (broker)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function openPublisher(): Promise<Publisher> {
    const connection = new Connection({ url: testUrl() });
    const publisher = new Publisher(connection);
    cleanup.push(
      () => connection.close(),
      () => publisher.close(),
    );
    await publisher.getChannel();
    return publisher;
  }

  test('publish - a header table over the frame encoder fails MESSAGE_TOO_LARGE at once: not buffered, the channel and later publishes fine', async () => {
    const { queue, depth } = await queueWithDepth();
    const publisher = await openPublisher();
    const channel = publisher.current;
    // A timer armed before the publish fires after it: the publish did not starve the loop.
    const turned = new Promise<string>((resolve) => setTimeout(() => resolve('turned'), 0));
    const error = await publisher
      .publish('', queue, Buffer.from('x'), { headers: hugeHeaders() })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: ErrorCode.MESSAGE_TOO_LARGE });
    expect(publisher.pending).toEqual({ buffered: 0, bufferedBytes: 0, unconfirmed: 0 });
    expect(await turned).toBe('turned');
    await publisher.publish('', queue, Buffer.from('fine'), { headers: { small: 1 } });
    expect(publisher.current).toBe(channel);
    expect(await depth()).toBe(1);
  });

  test('publish - a property amqplib cannot encode fails ENCODE_FAILED, for good', async () => {
    const { queue, depth } = await queueWithDepth();
    const publisher = await openPublisher();
    const error = await publisher
      .publish('', queue, Buffer.from('x'), { messageId: 'm'.repeat(300) })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: ErrorCode.ENCODE_FAILED });
    expect(publisher.pending).toEqual({ buffered: 0, bufferedBytes: 0, unconfirmed: 0 });
    await publisher.publish('', queue, Buffer.from('fine'), {});
    expect(await depth()).toBe(1);
  });

  test('shutdown - a process fed unencodable messages sends the rest in order, serves timers and closes on SIGTERM (exit 0)', async () => {
    const { queue } = await queueWithDepth();
    const root = path.resolve(__dirname, '../..');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'spec/fixtures/unencodable.ts')],
      {
        cwd: root,
        env: { ...process.env, POSTAGE_URL: testUrl(), WORK_QUEUE: queue },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    cleanup.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitFor(() => output.includes('ready') || child.exitCode !== null, {
      timeoutMs: 20_000,
      what: 'the child feeding unencodable messages',
    });
    // Through the outage buffer: the unencodable one fails alone, the others go out in order.
    expect(output).toContain(`outcomes confirmed,${ErrorCode.MESSAGE_TOO_LARGE},confirmed`);
    expect(output).toContain('turned');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('closed {"buffered":0,"bufferedBytes":0,"unconfirmed":0}');
    const ids = await withRawChannel(async (ch) => {
      const out: unknown[] = [];
      for (
        let m = await ch.get(queue, { noAck: true });
        m !== false;
        m = await ch.get(queue, { noAck: true })
      )
        out.push(m.properties.messageId);
      return out;
    });
    expect(ids).toEqual(['a', 'c']);
  }, 40_000);
});
