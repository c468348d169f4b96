/**
 * `restart` with real processes (issue 13, point 10): under a supervisor the program stops
 * cleanly and exits with RESTART_EXIT_CODE (75) for the supervisor to start it again, starting
 * nothing itself; on its own it runs again in a new process that serves. Every process a test
 * starts is found by a marker in its environment (/proc/<pid>/environ) and ended by PID.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { GenericProducer, MessageCommand, RESTART_EXIT_CODE, detectSupervisor } from '../../lib';
import { rawConnection, testUrl, uid, waitFor, withRawChannel } from '../helpers/broker';

const root = path.resolve(__dirname, '../..');

/** Variables that would make the child detect a supervisor the test did not ask for. */
const SUPERVISOR_VARIABLES = [
  'INVOCATION_ID',
  'NOTIFY_SOCKET',
  'KUBERNETES_SERVICE_HOST',
  'container',
  'pm_id',
  'SUPERVISOR_ENABLED',
  'POSTAGE_RESTART',
];

/** The PIDs of the live processes whose environment holds FIXTURE_MARKER=marker. */
function processesMarked(marker: string): number[] {
  const needle = `FIXTURE_MARKER=${marker}`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z /.test(status)) continue; // a zombie has ended
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(needle)) {
        found.push(Number(entry));
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

interface Report {
  event: string;
  pid: number;
}

describe('restart (broker, real processes)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  const markers: string[] = [];
  afterEach(async () => {
    // End only what this spec started, by PID.
    for (const marker of markers.splice(0)) {
      for (const pid of processesMarked(marker)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  /** Starts spec/fixtures/restartable.ts with `env`, and the means to drive and watch it. */
  async function startProgram(env: Record<string, string>) {
    const controlExchange = uid('ctl');
    const controlQueue = uid('ctlq');
    const reportQueue = uid('report');
    const connection = await rawConnection();
    cleanup.push(() => connection.close());
    const channel = await connection.createChannel();
    await channel.assertQueue(reportQueue, { arguments: { 'x-expires': 120_000 } });
    cleanup.push(() => withRawChannel((ch) => ch.deleteQueue(controlQueue)));
    cleanup.push(() => withRawChannel((ch) => ch.deleteExchange(controlExchange)));
    const reports: Report[] = [];
    await channel.consume(reportQueue, (m) => m && reports.push(JSON.parse(m.content.toString()) as Report), {
      noAck: true,
    });
    const marker = randomUUID();
    markers.push(marker);
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const name of SUPERVISOR_VARIABLES) delete childEnv[name];
    Object.assign(childEnv, {
      POSTAGE_URL: testUrl(),
      CONTROL_EXCHANGE: controlExchange,
      CONTROL_QUEUE: controlQueue,
      REPORT_QUEUE: reportQueue,
      FIXTURE_MARKER: marker,
      ...env,
    });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'spec/fixtures/restartable.ts')],
      {
        cwd: root,
        env: childEnv,
        // stderr carries the processor's log lines (the respawned process writes there too).
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => reports.length >= 1, { timeoutMs: 30_000, what: 'the program to start' });
    expect(reports[0]).toEqual({ event: 'started', pid: child.pid });
    class Control extends GenericProducer<{ quit: void }> {
      static override eks = [
        [
          {
            name: controlExchange,
            exchange_type: 'direct',
            passive: false,
            durable: false,
            auto_delete: false,
          },
          'control',
        ],
      ] as const;
    }
    const control = Control.create({ url: testUrl() });
    cleanup.push(() => control.close());
    return { child, reports, exited, marker, control, output: () => output };
  }

  async function handsOverToSupervisor(env: Record<string, string>): Promise<void> {
    const program = await startProgram(env);
    await program.control.send(new MessageCommand('restart'));
    // It stopped cleanly (the processor's run() resolved with 'restart')...
    await waitFor(() => program.reports.length >= 2, { timeoutMs: 30_000, what: 'the restart report' });
    expect(program.reports[1]).toEqual({ event: 'restart', pid: program.child.pid });
    // ...then exited with the code the supervisor restarts on...
    expect(await program.exited).toBe(RESTART_EXIT_CODE);
    expect(program.output()).toContain(`exiting with code ${RESTART_EXIT_CODE}`);
    // ...and started nothing itself: the replacement would exist by now (spawned before the exit).
    expect(processesMarked(program.marker)).toEqual([]);
    expect(program.reports).toHaveLength(2);
  }

  // Which signs count is spec/unit/restart.spec.ts's (this machine may be a container itself).
  it('restart - under systemd (INVOCATION_ID) the program stops cleanly and exits with 75, starting nothing', async () => {
    await handsOverToSupervisor({ INVOCATION_ID: '0123456789abcdef0123456789abcdef' });
  }, 60_000);

  it("restart - the option wins over the environment: restart 'exit' with POSTAGE_RESTART=respawn exits 75", async () => {
    await handsOverToSupervisor({ FIXTURE_RESTART: 'exit', POSTAGE_RESTART: 'respawn' });
  }, 60_000);

  async function respawns(env: Record<string, string>): Promise<void> {
    const program = await startProgram(env);
    const first = program.child.pid as number;
    await program.control.send(new MessageCommand('restart'));
    await waitFor(() => program.reports.length >= 3, { timeoutMs: 30_000, what: 'the restarted program' });
    const [, stopped, restarted] = program.reports as [Report, Report, Report];
    expect(stopped).toEqual({ event: 'restart', pid: first });
    expect(restarted.event).toBe('started');
    expect(restarted.pid).not.toBe(first);
    // The first process exits by itself once it has handed over; the new one runs.
    expect(await program.exited).toBe(0);
    expect(processesMarked(program.marker)).toEqual([restarted.pid]);
    // The new process serves: it quits on the quit command.
    await program.control.message_quit();
    await waitFor(() => program.reports.length >= 4, { timeoutMs: 10_000, what: 'the new process to quit' });
    expect(program.reports[3]).toEqual({ event: 'quit', pid: restarted.pid });
    await waitFor(() => processesMarked(program.marker).length === 0, { what: 'the new process to end' });
  }

  it('restart - with POSTAGE_RESTART=respawn a new process appears and serves; the first exits 0', async () => {
    await respawns({ POSTAGE_RESTART: 'respawn' });
  }, 60_000);

  it('restart - with no supervisor variable set, the default follows what this machine is', async () => {
    // This machine may itself be a container (/.dockerenv): the default then exits for it.
    const supervisor = detectSupervisor({ env: {}, pid: Number.NaN, exists: existsSync });
    if (supervisor === undefined) await respawns({});
    else await handsOverToSupervisor({});
  }, 60_000);
});
