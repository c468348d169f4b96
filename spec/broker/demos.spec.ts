import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { testUrl, waitFor } from '../helpers/broker';

const root = path.resolve(__dirname, '../..');

interface Running {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

describe('demos (broker)', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    // End only the processes this spec started, by PID.
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });

  function start(script: string, args: string[] = []): Running {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, script), ...args], {
      cwd: root,
      env: { ...process.env, POSTAGE_URL: testUrl(), POSTAGE_TEST_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, output: () => text, exited };
  }

  async function runToEnd(script: string, args: string[] = []): Promise<string> {
    const run = start(script, args);
    const code = await run.exited;
    expect({ script, code, output: run.output() }).toMatchObject({ code: 0 });
    return run.output();
  }

  it('demos - basic_echo: the receiver prints the parameters it gets and stops on quit', async () => {
    const receiver = start('demos/basic_echo/echo_receive.ts');
    await waitFor(() => receiver.output().includes('waiting for echo'), {
      timeoutMs: 30_000,
      what: 'the receiver',
    });
    await runToEnd('demos/basic_echo/echo_send.ts');
    await waitFor(() => receiver.output().includes('A test message\n'), {
      timeoutMs: 10_000,
      what: 'the echo',
    });
    await runToEnd('demos/basic_echo/echo_send.ts', ['--quit']);
    expect(await receiver.exited).toBe(0);
    expect(receiver.output()).toContain('stopped (quit)');
  }, 90_000);

  it('demos - advanced_echo: round-robin on the shared queue, fanout to every private queue, fingerprints', async () => {
    const one = start('demos/advanced_echo/echo_receive.ts');
    const two = start('demos/advanced_echo/echo_receive.ts');
    await waitFor(() => one.output().includes('consuming') && two.output().includes('consuming'), {
      timeoutMs: 30_000,
      what: 'two receivers',
    });
    await runToEnd('demos/advanced_echo/echo_send.ts');
    await waitFor(
      () => one.output().includes('A fanout test message') && two.output().includes('A fanout test message'),
      {
        timeoutMs: 10_000,
        what: 'the fanout message in both receivers',
      },
    );
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
    await waitFor(() => receiver.output().includes('answering'), { timeoutMs: 30_000, what: 'the receiver' });
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
});
