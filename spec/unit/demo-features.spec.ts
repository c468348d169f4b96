import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

describe('demos (in-process broker)', () => {
  it('demos - the processing features demo (npm run demo:features) runs every step on memory://', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['POSTAGE_URL'];
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'demos/processing_features.ts')],
      { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).not.toContain('FAILED: ');
    for (const step of [
      'a declined card: deadLetter (CARD_DECLINED)',
      'a flaky bank: requeue first, acked on the second delivery',
      'DeleteMessage -> ack',
      'HANDLER_FAILED, "Error: the card parser crashed"',
      'DELIVERY_LIMIT after 3 deliveries',
      'audited: paid, shipped',
      "ambiguous rpc command 'refund'",
      'legacy order: ack',
      'handled 4: acked 3, dead-lettered 1',
      'the end',
    ]) {
      expect(output).toContain(step);
    }
  }, 60_000);
});
