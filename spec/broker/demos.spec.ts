/**
 * The demos as a user runs them (real processes, one broker), and with Python postage's demos:
 * the TypeScript demos use Python postage's names (`echo-exchange`, `echo-queue`, `echo-rk`,
 * `echo-fanout-rk`, `echo-queue-<pid><host>`), so each reaches its Python counterpart and back.
 * The Python side is spec/fixtures/python/postage_peer.py, which behaves on the wire as
 * postage's echo_send.py / echo_receive.py do. Every spec that uses those names is in this file,
 * so none runs beside another.
 */
import os from 'node:os';
import path from 'node:path';

import { testUrl, waitFor, withRawChannel } from '../helpers/broker';
import {
  ensurePika,
  runPython,
  startPython,
  startProcess,
  stopAll,
  type Running,
} from '../helpers/python-peer';

const root = path.resolve(__dirname, '../..');

describe('demos (broker)', () => {
  /** Queues a test left (Python's private queues are not auto-delete), deleted after it. */
  const leftQueues: string[] = [];
  beforeAll(() => {
    ensurePika();
  }, 900_000);
  afterEach(async () => {
    // End only the processes this spec started, by PID.
    stopAll();
    await withRawChannel(async (ch) => {
      for (const queue of ['echo-queue', ...leftQueues.splice(0)]) await ch.deleteQueue(queue);
      await ch.deleteExchange('echo-exchange');
    });
  });

  function start(script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Running {
    return startProcess(process.execPath, ['--import', 'tsx', path.join(root, script), ...args], {
      ...process.env,
      POSTAGE_URL: testUrl(),
      POSTAGE_TEST_URL: '',
      ...env,
    });
  }

  async function runToEnd(script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
    const run = start(script, args, env);
    const code = await run.exited;
    expect({ script, code, output: run.output() }).toMatchObject({ code: 0 });
    return run.output();
  }

  async function printed(run: Running, text: string, what: string): Promise<void> {
    await waitFor(() => run.output().includes(text), { timeoutMs: 30_000, what });
  }

  it('demos - basic_echo: the receiver prints the parameters it gets and stops on quit', async () => {
    const receiver = start('demos/basic_echo/echo_receive.ts');
    await printed(receiver, 'waiting for echo', 'the receiver');
    await runToEnd('demos/basic_echo/echo_send.ts');
    await printed(receiver, 'A test message\n', 'the echo');
    await runToEnd('demos/basic_echo/echo_send.ts', ['--quit']);
    expect(await receiver.exited).toBe(0);
    expect(receiver.output()).toContain('stopped (quit)');
  }, 90_000);

  it('demos - advanced_echo: round-robin on the shared queue, fanout to every private queue, fingerprints', async () => {
    const one = start('demos/advanced_echo/echo_receive.ts');
    const two = start('demos/advanced_echo/echo_receive.ts');
    await printed(one, 'consuming', 'receiver one');
    await printed(two, 'consuming', 'receiver two');
    expect(one.output()).toContain(`echo-queue and echo-queue-${String(one.child.pid)}${os.hostname()}`);
    await runToEnd('demos/advanced_echo/echo_send.ts');
    await printed(one, 'A fanout test message', 'the fanout message in receiver one');
    await printed(two, 'A fanout test message', 'the fanout message in receiver two');
    await waitFor(() => (one.output() + two.output()).includes('A single test message'), {
      timeoutMs: 10_000,
      what: 'the single message',
    });
    const singles = [one, two].filter((r) => r.output().includes('A single test message'));
    expect(singles).toHaveLength(1);
    expect(one.output()).toContain('Message fingerprint: {"name":"echo_send","type":"application"');
    await runToEnd('demos/advanced_echo/echo_send.ts', ['--quit']);
    expect(await one.exited).toBe(0);
    expect(await two.exited).toBe(0);
  }, 90_000);

  it('demos - rpc_echo: the sender prints the reply value, or "RPC failed" when nobody answers', async () => {
    const receiver = start('demos/rpc_echo/echo_receive.ts');
    await printed(receiver, 'answering', 'the receiver');
    const sent = await runToEnd('demos/rpc_echo/echo_send.ts');
    expect(sent).toContain('RPC message received');
    expect(receiver.output()).toContain('RPC test message');
    await runToEnd('demos/rpc_echo/echo_send.ts', ['--quit']);
    expect(await receiver.exited).toBe(0);
    // Nobody answers any more: after its timeout and one retry the sender says so.
    expect(await runToEnd('demos/rpc_echo/echo_send.ts', ['--timeout', '0.3'])).toContain('RPC failed');
  }, 90_000);

  it('demos - the echo story (npm run demo) tells every step and ends well', async () => {
    const story = await runToEnd('demos/echo_story.ts');
    for (const step of [
      '1. basic echo',
      '3. round-robin and fanout',
      'shared queue: A handled 2, B handled 2',
      'reached both receivers',
      'reply: receiver',
      'slow but done',
      'UnroutableError',
      'x-death reason: rejected',
      'receivers stopped: quit, quit',
      'the end',
    ]) {
      expect(story).toContain(step);
    }
  }, 90_000);

  describe('with Python postage', () => {
    const url = (): string => testUrl();

    it("demos - Python postage's echo_send reaches basic_echo/echo_receive.ts; echo_send.ts reaches Python's echo_receive", async () => {
      const receiver = start('demos/basic_echo/echo_receive.ts');
      await printed(receiver, 'waiting for echo', 'the TypeScript receiver');
      await runPython(url(), 'echo_send');
      await printed(receiver, 'A test message\n', 'the echo from Python');
      await runPython(url(), 'quit');
      expect(await receiver.exited).toBe(0);

      const python = startPython(url(), 'echo_receive');
      await printed(python, 'consuming echo-queue', 'the Python receiver');
      await runToEnd('demos/basic_echo/echo_send.ts');
      await printed(python, 'A test message\n', 'the echo from TypeScript');
      await runToEnd('demos/basic_echo/echo_send.ts', ['--quit']);
      expect(await python.exited).toBe(0);
      expect(python.output()).toContain('stopped (quit)');
    }, 120_000);

    it('demos - advanced_echo: a Python and a TypeScript receiver share echo-queue (round-robin) and both get the fanout, from either sender', async () => {
      const ts = start('demos/advanced_echo/echo_receive.ts');
      const python = startPython(url(), 'advanced_receive');
      leftQueues.push(`echo-queue-${String(python.child.pid)}${os.hostname()}`);
      await printed(ts, 'consuming', 'the TypeScript receiver');
      await printed(python, `echo-queue-${String(python.child.pid)}${os.hostname()}`, 'the Python receiver');
      const both = (): string => ts.output() + python.output();
      const count = (text: string): number => both().split(text).length - 1;

      await runToEnd('demos/advanced_echo/echo_send.ts');
      await printed(ts, 'A fanout test message', 'the TypeScript fanout copy');
      await printed(python, 'A fanout test message', 'the Python fanout copy');
      await waitFor(() => count('A single test message') === 1, { what: 'the single message' });
      expect(python.output()).toContain('Message fingerprint: {"host": ');
      expect(python.output()).toContain('"name": "echo_send"');

      await runPython(url(), 'advanced_send');
      await waitFor(() => count('A fanout test message') === 4, { what: "Python's fanout in both" });
      await waitFor(() => count('A single test message') === 2, { what: "Python's single message" });
      expect(ts.output()).toContain('Message fingerprint: {"name":"echo_send","type":"application"');

      // The quit through the fanout key stops both.
      await runToEnd('demos/advanced_echo/echo_send.ts', ['--quit']);
      expect(await ts.exited).toBe(0);
      expect(await python.exited).toBe(0);
    }, 120_000);

    it('demos - rpc_echo: Python postage calls rpc_echo/echo_receive.ts; echo_send.ts calls Python in per-call mode (direct mode warns)', async () => {
      const receiver = start('demos/rpc_echo/echo_receive.ts');
      await printed(receiver, 'answering', 'the TypeScript RPC receiver');
      expect(await runPython(url(), 'rpc_send', ['--timeout', '10'])).toContain('RPC message received');
      expect(receiver.output()).toContain('RPC test message');
      await runToEnd('demos/rpc_echo/echo_send.ts', ['--quit']);
      expect(await receiver.exited).toBe(0);

      const python = startPython(url(), 'rpc_receive');
      await printed(python, 'consuming echo-queue', 'the Python RPC receiver');
      const perCall = await runToEnd('demos/rpc_echo/echo_send.ts', [], {
        POSTAGE_RPC_REPLY_MODE: 'per-call',
      });
      expect(perCall).toContain('RPC message received');
      // Direct reply-to cannot match Python's replies (no correlation id): the sender says how to fix it.
      const direct = await runToEnd('demos/rpc_echo/echo_send.ts', ['--timeout', '0.5']);
      expect(direct).toContain('RPC failed');
      expect(direct).toMatch(/postage warn .*rpcReplyMode: 'per-call'/);
      expect(direct.split('without a correlation id, which').length - 1).toBe(1);
      await runToEnd('demos/rpc_echo/echo_send.ts', ['--quit']);
      expect(await python.exited).toBe(0);
    }, 120_000);
  });
});
