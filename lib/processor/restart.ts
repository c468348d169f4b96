/**
 * What `restart` does once a processor has stopped cleanly: keep the service alive wherever it
 * runs. Under a supervisor (systemd, a container, pm2, supervisord) the process exits with
 * {@link RESTART_EXIT_CODE} and the supervisor starts it again; a process of its own respawns
 * itself (the same program in a new process). Python postage exec'ed itself in place.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

import { envChoice } from '../connection/env';
import type { Logger } from '../logger';

/**
 * The exit code of a restart handed to the supervisor: EX_TEMPFAIL of sysexits.h ("try again
 * later"). Any non-zero code makes systemd's `Restart=on-failure` and Docker's
 * `--restart on-failure` start the service again.
 */
export const RESTART_EXIT_CODE = 75;

/**
 * After a restart handed to the supervisor, the process exits with {@link RESTART_EXIT_CODE}
 * when its event loop empties, and at the latest after this many milliseconds (a handle left
 * open must not keep a stopped service alive).
 */
export const RESTART_EXIT_GRACE_MS = 5_000;

/** Runs the restart your own way (a supervisor's API, a message to an orchestrator...). */
export type RestartFunction = () => void | Promise<void>;

/**
 * What `restart` does after the processor stopped: `exit` with {@link RESTART_EXIT_CODE} for
 * the supervisor to start the service again, `respawn` the same program in a new process and
 * let this one end, or your function.
 */
export type RestartPolicy = 'exit' | 'respawn' | RestartFunction;

/** What {@link detectSupervisor} looks at (injectable for tests). */
export interface SupervisorProbe {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly pid: number;
  exists(path: string): boolean;
}

const processProbe: SupervisorProbe = {
  get env() {
    return process.env;
  },
  get pid() {
    return process.pid;
  },
  exists: (path) => existsSync(path),
};

/**
 * The supervisor this process runs under, when a sign of one is found, else undefined:
 * - systemd: `INVOCATION_ID` (every unit since systemd 232) or `NOTIFY_SOCKET` (Type=notify);
 * - a container: this process is PID 1, `/.dockerenv` (Docker), `/run/.containerenv`
 *   (Podman), the `container` variable (Podman, systemd-nspawn, LXC) or
 *   `KUBERNETES_SERVICE_HOST`: when the main process ends the container stops, so a
 *   respawned child would die with it;
 * - pm2 (`pm_id`) and supervisord (`SUPERVISOR_ENABLED`), which restart what exits.
 */
export function detectSupervisor(probe: SupervisorProbe = processProbe): string | undefined {
  const env = probe.env;
  const set = (name: string): boolean => (env[name] ?? '') !== '';
  if (set('INVOCATION_ID') || set('NOTIFY_SOCKET')) return 'systemd';
  if (set('KUBERNETES_SERVICE_HOST')) return 'kubernetes';
  if (probe.pid === 1) return 'container (this process is PID 1)';
  if (probe.exists('/.dockerenv')) return 'container (/.dockerenv)';
  if (probe.exists('/run/.containerenv')) return 'container (/run/.containerenv)';
  if (set('container')) return `container (container=${String(env['container'])})`;
  if (set('pm_id')) return 'pm2';
  if (set('SUPERVISOR_ENABLED')) return 'supervisord';
  return undefined;
}

/** How a restart is carried out, and why (for the log line). */
export interface RestartDecision {
  readonly policy: RestartPolicy;
  readonly why: string;
}

/**
 * The restart policy: the processor's `restart` option, else POSTAGE_RESTART (`exit` or
 * `respawn`), else `exit` under a detected supervisor and `respawn` otherwise.
 */
export function decideRestart(
  option: RestartPolicy | undefined,
  logger: Logger,
  probe: SupervisorProbe = processProbe,
): RestartDecision {
  if (option !== undefined) return { policy: option, why: 'the restart option' };
  const fromEnv = envChoice('POSTAGE_RESTART', ['exit', 'respawn'] as const, probe.env, logger);
  if (fromEnv !== undefined) return { policy: fromEnv, why: `POSTAGE_RESTART=${fromEnv}` };
  const supervisor = detectSupervisor(probe);
  if (supervisor !== undefined) return { policy: 'exit', why: `under ${supervisor}` };
  return { policy: 'respawn', why: 'no supervisor detected' };
}

/**
 * Hands the restart to the supervisor: the exit code is set now, and the process exits when
 * its event loop empties (what runs after `run()` still runs), or after
 * {@link RESTART_EXIT_GRACE_MS} at the latest.
 */
export function exitForRestart(logger: Logger, why: string): void {
  logger.info(
    { exitCode: RESTART_EXIT_CODE, why },
    `restart: exiting with code ${RESTART_EXIT_CODE} for the supervisor to start the service again`,
  );
  process.exitCode = RESTART_EXIT_CODE;
  setTimeout(() => process.exit(RESTART_EXIT_CODE), RESTART_EXIT_GRACE_MS).unref();
}

/**
 * Starts the replacement process: the same Node binary, flags, script, arguments, working
 * directory and environment, sharing this terminal; this process then ends by itself.
 */
export function respawnProcess(logger: Logger, why: string): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    cwd: process.cwd(),
    env: process.env,
  });
  child.on('error', (err) => logger.error({ err }, 'restart failed'));
  // The replacement must outlive this process.
  child.unref();
  logger.info({ pid: child.pid, why }, 'restart: the program runs again in a new process');
}
