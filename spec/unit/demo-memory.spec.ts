import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

describe('demos (in-process broker)', () => {
  it('demos - the echo story (npm run demo) runs on the in-process broker with no RabbitMQ', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['POSTAGE_URL'];
    delete env['POSTAGE_TEST_URL'];
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'demos/echo_story.ts')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, output }).toMatchObject({ code: 0 });
    for (const step of [
      'on the in-process broker (memory://)',
      'shared queue: A handled 2, B handled 2',
      'reached both receivers',
      'reply: receiver',
      'slow but done',
      'UnroutableError',
      'x-death reason: rejected',
      'receivers stopped: quit, quit',
      'the end',
    ]) {
      expect(output).toContain(step);
    }
  }, 60_000);
});
