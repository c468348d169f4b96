/**
 * The `postage` command line against RabbitMQ, as real processes: send and rpc reach a
 * processor, every failure has its exit code and says why, usage errors are exit 2, and the
 * configuration it prints never holds the password.
 */
import { Exchange, MessageHandler, MessageProcessor, RpcHandler, type HandlerContext } from '../../lib';
import { runCli } from '../helpers/cli';
import { testUrl, uid, withRawChannel } from '../helpers/broker';

jest.setTimeout(120_000);

describe('cli (broker, real processes)', () => {
  const exchangeName = uid('cli-x');
  const queue = uid('cli-q');
  const got: unknown[] = [];
  let processor: MessageProcessor;
  const env = (): Record<string, string> => ({ POSTAGE_URL: testUrl() });

  beforeAll(async () => {
    const CliExchange = Exchange.define({ name: exchangeName, exchange_type: 'direct', auto_delete: true });
    class Receiver extends MessageProcessor {
      @MessageHandler('command', 'note')
      note(content: { parameters: unknown }): void {
        got.push(content.parameters);
      }
      @RpcHandler('command', 'add')
      add(content: { parameters: { a: number; b: number } }, _context: HandlerContext): number {
        return content.parameters.a + content.parameters.b;
      }
      @RpcHandler('command', 'fail')
      fail(): never {
        throw new TypeError('no such thing');
      }
    }
    processor = new Receiver({
      url: testUrl(),
      eqk: [[CliExchange, [[{ name: queue, flags: { autoDelete: true } }, 'cli-rk']]]],
    });
    void processor.run();
    await processor.ready;
    // A key bound to a queue no one consumes: an RPC to it times out.
    await withRawChannel(async (channel) => {
      await channel.assertQueue(`${queue}.idle`, { autoDelete: false, exclusive: false });
      await channel.bindQueue(`${queue}.idle`, exchangeName, 'idle-rk');
    });
  });

  afterAll(async () => {
    await processor.close();
    await withRawChannel((channel) => channel.deleteQueue(`${queue}.idle`));
  });

  test('cli - send: a confirmed command reaches the processor, exit 0', async () => {
    const run = await runCli(['send', exchangeName, 'cli-rk', 'note', '{"n":1}'], { env: env() });
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toContain('sent note');
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(got).toContainEqual({ n: 1 });
  });

  test('cli - send --json: one JSON document on stdout', async () => {
    const run = await runCli(['--json', 'send', exchangeName, 'cli-rk', 'note'], { env: env() });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      sent: true,
      exchange: exchangeName,
      key: 'cli-rk',
      name: 'note',
    });
  });

  test('cli - send: an unroutable key is exit 1 with UNROUTABLE', async () => {
    const run = await runCli(['send', exchangeName, 'nobody-rk', 'note'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('UNROUTABLE');
  });

  test('cli - send: a missing exchange is exit 1 with NOT_FOUND (never declared)', async () => {
    const missing = uid('cli-missing');
    const run = await runCli(['send', missing, 'k', 'note'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('NOT_FOUND');
    const exists = await withRawChannel((channel) =>
      channel.checkExchange(missing).then(
        () => true,
        () => false,
      ),
    );
    expect(exists).toBe(false);
  });

  test('cli - rpc: prints the value, exit 0; --json prints the whole result', async () => {
    const run = await runCli(['rpc', exchangeName, 'cli-rk', 'add', '{"a":2,"b":3}'], { env: env() });
    expect(run).toMatchObject({ code: 0, stdout: '5\n' });
    const json = await runCli(['rpc', '--json', exchangeName, 'cli-rk', 'add', '{"a":2,"b":3}'], {
      env: env(),
    });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ type: 'success', value: 5 });
  });

  test('cli - rpc: an exception is exit 1 with its message', async () => {
    const run = await runCli(['rpc', exchangeName, 'cli-rk', 'fail'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('RPC_EXCEPTION');
    expect(run.stderr).toContain('no such thing');
  });

  test('cli - rpc: no reply within --timeout is exit 1 with RPC_TIMEOUT', async () => {
    const run = await runCli(['rpc', '--timeout', '1', exchangeName, 'idle-rk', 'add', '{}'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('RPC_TIMEOUT');
  });

  test('cli - rpc: an unknown handler of a server is exit 1 with NO_HANDLER', async () => {
    const run = await runCli(['rpc', exchangeName, 'cli-rk', 'nope'], { env: env() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('NO_HANDLER');
  });

  test('cli - usage errors are exit 2: unknown command, option, missing argument, bad JSON', async () => {
    for (const args of [
      ['bogus'],
      ['send', '--bogus', 'x', 'k', 'n'],
      ['send', 'x'],
      ['send', 'x', 'k', 'n', '{bad'],
      ['--timeout', 'soon', 'config'],
      [],
    ]) {
      const run = await runCli(args, { env: env() });
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).not.toBe('');
    }
  });

  test('cli - config: the effective settings, the password redacted', async () => {
    const run = await runCli(['--json', 'config'], {
      env: { POSTAGE_URL: 'amqp://alice:s3cr3t-pw@127.0.0.1:5999/prod' },
    });
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('s3cr3t-pw');
    expect(JSON.parse(run.stdout)).toMatchObject({
      endpoints: [{ host: '127.0.0.1', port: 5999, vhost: 'prod', user: 'alice', password: '***' }],
    });
    const human = await runCli(['--url', 'amqp://bob:hunter2@127.0.0.1:5998/', 'config']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('amqp://bob@127.0.0.1:5998/');
    expect(`${human.stdout}${human.stderr}`).not.toContain('hunter2');
  });

  test('cli - help: postage --help lists every command; each command has its own help', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const name of ['send', 'rpc', 'config']) expect(top.stdout).toContain(`  ${name} `);
    const one = await runCli(['rpc', '--help']);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('usage: postage rpc EXCHANGE KEY NAME [JSON]');
  });

  test('cli - a connection failure is exit 1 and never prints the password', async () => {
    const run = await runCli(['--timeout', '1', 'send', 'x', 'k', 'n'], {
      env: { POSTAGE_URL: 'amqp://carol:pa55word@127.0.0.1:1/' },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('CONNECTION_FAILED');
    expect(`${run.stdout}${run.stderr}`).not.toContain('pa55word');
  });
});
