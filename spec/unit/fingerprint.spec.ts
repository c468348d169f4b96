import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

import { Fingerprint } from '../../lib';

describe('fingerprint', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('fingerprint - reads pid, host, user and vhost from the process', () => {
    const fp = new Fingerprint('echo_send', 'application');
    expect(fp.asDict()).toEqual({
      name: 'echo_send',
      type: 'application',
      pid: String(process.pid),
      host: os.hostname(),
      user: os.userInfo().username,
      vhost: '/',
    });
  });

  it('fingerprint - every field is a string on the wire; a missing name or type is the string None', () => {
    const dict = new Fingerprint().asDict();
    expect(dict.name).toBe('None');
    expect(dict.type).toBe('None');
    for (const value of Object.values(dict)) expect(typeof value).toBe('string');
    expect(JSON.parse(JSON.stringify(new Fingerprint('n', 't')))).toEqual(new Fingerprint('n', 't').asDict());
  });

  it('fingerprint - the vhost is read when the fingerprint is created, not at module load', () => {
    process.env['POSTAGE_VHOST'] = 'development';
    expect(new Fingerprint('a', 'b').vhost).toBe('development');
    process.env['POSTAGE_VHOST'] = 'production';
    expect(new Fingerprint('a', 'b').vhost).toBe('production');
    delete process.env['POSTAGE_VHOST'];
    process.env['POSTAGE_URL'] = 'amqp://h/staging';
    expect(new Fingerprint('a', 'b').vhost).toBe('staging');
  });

  it('fingerprint - a child process reports its own pid', () => {
    const source = JSON.stringify(path.resolve(__dirname, '../../lib/messages/fingerprint.ts'));
    // tsx runs the TypeScript source in a fresh process.
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { Fingerprint } = require(${source}); console.log(JSON.stringify({ fp: new Fingerprint('c', 't').pid, pid: process.pid }))`,
      ],
      { cwd: path.resolve(__dirname, '../..'), encoding: 'utf8' },
    );
    const { fp, pid } = JSON.parse(out) as { fp: string; pid: number };
    expect(fp).toBe(String(pid));
    expect(fp).not.toBe(String(process.pid));
  });

  it('fingerprint - asTuple gives (name, type, pid, host, user, vhost); postage aliases work', () => {
    const fp = new Fingerprint('n', 't', { pid: 7, host: 'h', user: 'u', vhost: 'v' });
    expect(fp.asTuple()).toEqual(['n', 't', '7', 'h', 'u', 'v']);
    expect(fp.as_tuple()).toEqual(fp.asTuple());
    expect(fp.as_dict()).toEqual(fp.asDict());
  });
});
