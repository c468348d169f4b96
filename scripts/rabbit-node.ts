/**
 * A throwaway RabbitMQ node from the Debian package: its own name, loopback ports and temp
 * directory, so tests, benchmarks and demos never touch a broker they did not start.
 *
 * Two kinds of broker (`POSTAGE_TEST_BROKER`): `rabbitmq3`, the host's own rabbitmq-server
 * (Debian bookworm: 3.10), and `rabbitmq4`, trixie's rabbitmq-server 4.0 run inside a trixie
 * root folder (scripts/trixie-root.ts) with chroot. Both run the same way: the /usr/sbin
 * wrappers run the node as that system's user `rabbitmq` (sharing its Erlang cookie), so every
 * directory handed to the node is chowned to that user; readiness is `rabbitmqctl wait PIDFILE`
 * (await_startup fails before the node registers with epmd); the node is stopped by the PID in
 * its pid file, and a watcher process kills it (and removes its directory) if the process that
 * started it dies without stopping it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  closeSync,
  writeFileSync,
  rmSync,
  mkdtempSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { ensureTrixieRoot, inRoot, rootInfo, trixieRootPath } from './trixie-root';

/**
 * Which RabbitMQ a node runs: `rabbitmq3` is the host's rabbitmq-server (3.10 on bookworm),
 * `rabbitmq4` is Debian trixie's 4.0 inside a trixie root.
 */
export type BrokerKind = 'rabbitmq3' | 'rabbitmq4';

/** The broker kind POSTAGE_TEST_BROKER names (`rabbitmq3` when unset). */
export function testBroker(): BrokerKind {
  const value = process.env['POSTAGE_TEST_BROKER'];
  if (value === undefined || value === '' || value === 'rabbitmq3') return 'rabbitmq3';
  if (value === 'rabbitmq4') return 'rabbitmq4';
  throw new Error(`POSTAGE_TEST_BROKER must be rabbitmq3 or rabbitmq4, got '${value}'`);
}

/** Options of {@link RabbitNode.start}. */
export interface RabbitNodeOptions {
  /** Which RabbitMQ to run. @default {@link testBroker} (POSTAGE_TEST_BROKER, else `rabbitmq3`) */
  broker?: BrokerKind;
  /** Node name. @default `postage-<pid>-<n>@localhost` */
  name?: string;
  /** AMQP port on 127.0.0.1. @default a free port */
  port?: number;
  /** Erlang distribution port on 127.0.0.1. @default a free port */
  distPort?: number;
  /** Enable the management plugin on this loopback port. */
  managementPort?: number;
  /** Extra rabbitmq.conf lines. */
  extraConfig?: readonly string[];
  /** Data directory (for `rabbitmq4`, inside the trixie root). @default a new temp dir */
  dir?: string;
  /** Keep the directory on stop(). @default false */
  keepDir?: boolean;
  /** Where progress lines go. @default stderr */
  log?: (line: string) => void;
}

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin'];
let counter = 0;
/** The epmd this process started (only when none was running), ended by PID at the end. */
let ownEpmd: ChildProcess | undefined;
const liveNodes = new Set<RabbitNode>();

function which(command: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), ...SBIN];
  for (const dir of dirs) {
    const candidate = path.join(dir, command);
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** A command line ready for execFile/spawn. */
interface CommandLine {
  readonly file: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
}

/** How a broker kind runs its programs and where its files are. */
interface Runtime {
  readonly kind: BrokerKind;
  /** A new node directory, as a host path. */
  newDir(): string;
  /** A host path as the broker's programs see it. */
  inner(hostPath: string): string;
  /** The command line of one of the broker's programs (rabbitmq-server, rabbitmqctl, chown...). */
  command(name: string, args: readonly string[], env?: Readonly<Record<string, string>>): CommandLine;
}

const hostRuntime: Runtime = {
  kind: 'rabbitmq3',
  newDir: () => mkdtempSync(path.join(os.tmpdir(), 'postage-rabbit-')),
  inner: (hostPath) => hostPath,
  command: (name, args, env = {}) => ({
    file: which(name) ?? name,
    args: [...args],
    env: { ...process.env, ...env },
  }),
};

/** The trixie root's runtime: programs run chrooted (scripts/trixie-root.ts), files live inside it. */
function trixieRuntime(root: string): Runtime {
  return {
    kind: 'rabbitmq4',
    newDir: () => {
      mkdirSync(path.join(root, 'tmp'), { recursive: true });
      return mkdtempSync(path.join(root, 'tmp', 'postage-rabbit-'));
    },
    inner: (hostPath) => {
      const relative = path.relative(root, path.resolve(hostPath));
      if (relative.startsWith('..') || path.isAbsolute(relative)) {
        throw new Error(`${hostPath} is outside the trixie root ${root}: a rabbitmq4 node cannot use it`);
      }
      return `/${relative}`;
    },
    command: (name, args, env = {}) => ({ ...inRoot(root, name, args, env), env: process.env }),
  };
}

function runtimeOf(kind: BrokerKind): Runtime {
  return kind === 'rabbitmq3' ? hostRuntime : trixieRuntime(trixieRootPath());
}

/** epmd's client and daemon: the host's when it has one (one epmd serves every node), else the root's. */
function epmdRuntime(runtime: Runtime): Runtime {
  return which('epmd') !== undefined ? hostRuntime : runtime;
}

function run(line: CommandLine, timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      line.file,
      line.args,
      { timeout: timeoutMs, env: line.env, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            Object.assign(new Error(`${line.file} ${line.args.join(' ')}: ${stderr || err.message}`), {
              stdout,
              stderr,
            }),
          );
        else resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * Runs `rabbitmqctl -q -n <node> ...args` with the CLI of the broker kind that runs the node
 * (the spec helpers' memory alarms and close_all_connections), and resolves with stdout.
 */
export async function rabbitmqctl(
  node: string,
  args: readonly string[],
  options: { broker?: BrokerKind; timeoutMs?: number } = {},
): Promise<string> {
  const runtime = runtimeOf(options.broker ?? testBroker());
  return (await run(runtime.command('rabbitmqctl', ['-q', '-n', node, ...args]), options.timeoutMs)).stdout;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A process that outlives this one for one purpose: when this process dies without stopping the
 * node (SIGKILL, an interrupted jest), it kills the node's beam by the PID in its pid file (if
 * that process still is this node: its environment names the node) and removes the node's
 * directory. stop() ends it by PID.
 */
function startWatcher(pidFile: string, name: string, dir: string, keepDir: boolean): ChildProcess {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'pid=$(cat "$2" 2>/dev/null)',
    'if [ -n "$pid" ] && tr "\\0" "\\n" < "/proc/$pid/environ" 2>/dev/null | grep -qxF -- "RABBITMQ_NODENAME=$3"; then',
    '  kill -9 "$pid"; i=0; while [ -d "/proc/$pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
    'fi',
    '[ "$4" = keep ] || rm -rf -- "$5"',
  ].join('\n');
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      script,
      'postage-node-watch',
      String(process.pid),
      pidFile,
      name,
      keepDir ? 'keep' : 'remove',
      dir,
    ],
    { detached: true, stdio: 'ignore' },
  );
  child.unref();
  return child;
}

/** A RabbitMQ node started by this process. */
export class RabbitNode {
  readonly name: string;
  readonly broker: BrokerKind;
  readonly port: number;
  readonly distPort: number;
  readonly managementPort: number | undefined;
  /** The node's directory, as a host path. */
  readonly dir: string;
  readonly url: string;
  private readonly keepDir: boolean;
  private readonly log: (line: string) => void;
  private readonly config: string;
  private readonly runtime: Runtime;
  private watcher: ChildProcess | undefined;

  private constructor(
    options: Required<Pick<RabbitNodeOptions, 'name' | 'port' | 'distPort' | 'dir'>> & RabbitNodeOptions,
    runtime: Runtime,
  ) {
    this.name = options.name;
    this.broker = runtime.kind;
    this.runtime = runtime;
    this.port = options.port;
    this.distPort = options.distPort;
    this.managementPort = options.managementPort;
    this.dir = options.dir;
    this.keepDir = options.keepDir ?? false;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.url = `amqp://guest:guest@127.0.0.1:${this.port}`;
    const lines = [
      `listeners.tcp.default = 127.0.0.1:${this.port}`,
      'log.console = false',
      ...(options.extraConfig ?? []),
    ];
    if (this.managementPort !== undefined) {
      lines.push('management.tcp.ip = 127.0.0.1', `management.tcp.port = ${this.managementPort}`);
    }
    this.config = `${lines.join('\n')}\n`;
  }

  /**
   * Makes the broker kind runnable: for `rabbitmq3`, installs rabbitmq-server when it is missing
   * (with apt-get when running as root, otherwise it stops with what to do); for `rabbitmq4`,
   * builds the trixie root when it is missing (once, about 30 s).
   */
  static async ensureInstalled(
    log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
    broker: BrokerKind = testBroker(),
  ): Promise<void> {
    if (broker === 'rabbitmq4') {
      const root = await ensureTrixieRoot(log);
      const info = rootInfo(root);
      log(`rabbitmq4: rabbitmq-server ${info?.rabbitmq ?? '?'} (erlang ${info?.erlang ?? '?'}) in ${root}`);
      return;
    }
    if (which('rabbitmq-server') !== undefined && which('rabbitmqctl') !== undefined) return;
    if (process.getuid?.() !== 0) {
      throw new Error(
        'rabbitmq-server is not installed. Install it with `sudo apt-get install -y rabbitmq-server`, ' +
          'or set POSTAGE_TEST_URL to an existing broker (amqp://user:password@host:port/vhost).',
      );
    }
    log('rabbitmq-server is missing: installing it with apt-get (about 15 s)');
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    await run(hostRuntime.command('apt-get', ['update', '-qq'], env), 600_000);
    await run(
      hostRuntime.command(
        'apt-get',
        ['install', '-y', '-qq', '--no-install-recommends', 'rabbitmq-server'],
        env,
      ),
      900_000,
    );
    if (which('rabbitmq-server') === undefined) throw new Error('apt-get did not install rabbitmq-server');
    log('rabbitmq-server installed');
  }

  /** Starts a node and waits until it accepts connections. */
  static async start(options: RabbitNodeOptions = {}): Promise<RabbitNode> {
    const runtime = runtimeOf(options.broker ?? testBroker());
    const dir = options.dir ?? runtime.newDir();
    runtime.inner(dir); // a rabbitmq4 node's directory must be inside the root: fail before booting
    const port = options.port ?? (await freePort());
    let distPort = options.distPort ?? (await freePort());
    while (distPort === port) distPort = await freePort();
    const name = options.name ?? `postage-${process.pid}-${++counter}@localhost`;
    const node = new RabbitNode({ ...options, name, port, distPort, dir }, runtime);
    await node.boot();
    return node;
  }

  /** Stops every node this process started (for exit paths). */
  static async stopAll(): Promise<void> {
    await Promise.all([...liveNodes].map((node) => node.stop().catch(() => undefined)));
  }

  /** Ends the epmd this process started, if any (never one it found running). */
  static async shutdownEpmd(): Promise<void> {
    const epmd = ownEpmd;
    ownEpmd = undefined;
    if (epmd?.pid !== undefined && epmd.exitCode === null) {
      epmd.kill('SIGTERM');
      for (let i = 0; i < 50 && alive(epmd.pid); i++) await sleep(20);
    }
  }

  /** The beam process id, from the pid file. */
  get pid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private get pidFile(): string {
    return path.join(this.dir, 'pid');
  }

  /** Runs `rabbitmqctl -n <node> ...args` (this node's broker kind's CLI) and returns stdout. */
  async ctl(...args: string[]): Promise<string> {
    return (await run(this.runtime.command('rabbitmqctl', ['-q', '-n', this.name, ...args]))).stdout;
  }

  /** Evaluates an Erlang expression on the node. */
  eval(expression: string): Promise<string> {
    return this.ctl('eval', expression);
  }

  /** Stops the node gracefully (SIGKILL after 60 s), removes its directory unless kept. */
  async stop(): Promise<void> {
    await this.shutdown();
    liveNodes.delete(this);
    this.endWatcher();
    if (!this.keepDir) rmSync(this.dir, { recursive: true, force: true });
    if (liveNodes.size === 0) await RabbitNode.shutdownEpmd();
  }

  /** Stops gracefully but keeps the data directory, so {@link RabbitNode.restart} can follow. */
  async stopKeepingData(): Promise<void> {
    await this.shutdown();
  }

  /** Kills the node with SIGKILL and waits until it is really gone. */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.waitGone(pid);
  }

  /** Starts the node again on the same name, ports and data (after kill() or stopKeepingData()). */
  async restart(): Promise<void> {
    await this.boot();
  }

  private endWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher?.pid !== undefined && watcher.exitCode === null) {
      try {
        process.kill(watcher.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }

  private async shutdown(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !alive(pid)) return;
    try {
      await run(
        this.runtime.command('rabbitmqctl', [
          '-q',
          '-n',
          this.name,
          'stop',
          this.runtime.inner(this.pidFile),
        ]),
        60_000,
      );
    } catch (err) {
      this.log(
        `graceful stop of ${this.name} failed (${(err as Error).message.split('\n')[0]}): killing pid ${pid}`,
      );
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.waitGone(pid);
  }

  private async waitGone(pid: number): Promise<void> {
    const epmd = epmdRuntime(this.runtime);
    for (let i = 0; i < 500; i++) {
      const names = await run(epmd.command('epmd', ['-names']), 5000).then(
        (r) => r.stdout,
        () => '',
      );
      const short = this.name.split('@')[0] as string;
      if (!alive(pid) && !new RegExp(`^name ${short} at`, 'm').test(names)) return;
      await sleep(20);
    }
    throw new Error(`node ${this.name} (pid ${pid}) did not go away`);
  }

  private async boot(): Promise<void> {
    const existing = this.pid;
    if (existing !== undefined && alive(existing)) {
      throw new Error(`node ${this.name} is already running (pid ${existing}): refusing a second start`);
    }
    await ensureEpmd(this.runtime);
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(path.join(this.dir, 'rabbitmq.conf'), this.config);
    writeFileSync(
      path.join(this.dir, 'enabled_plugins'),
      this.managementPort === undefined ? '[].\n' : '[rabbitmq_management].\n',
    );
    rmSync(this.pidFile, { force: true });
    const inner = (name: string): string => this.runtime.inner(path.join(this.dir, name));
    // The rabbitmq user of the system that runs the node (the root's has its own uid).
    await run(this.runtime.command('chown', ['-R', 'rabbitmq:rabbitmq', this.runtime.inner(this.dir)]));
    this.watcher ??= startWatcher(this.pidFile, this.name, this.dir, this.keepDir);
    const logFile = path.join(this.dir, 'out.log');
    const out = openSync(logFile, 'a');
    const started = Date.now();
    const line = this.runtime.command('rabbitmq-server', [], {
      RABBITMQ_NODENAME: this.name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: inner('mnesia'),
      RABBITMQ_LOG_BASE: inner('log'),
      RABBITMQ_CONFIG_FILE: inner('rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: inner('enabled_plugins'),
      RABBITMQ_PID_FILE: inner('pid'),
      ERL_CRASH_DUMP: inner('erl_crash.dump'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    });
    const child = spawn(line.file, line.args, { detached: true, stdio: ['ignore', out, out], env: line.env });
    closeSync(out);
    child.unref();
    liveNodes.add(this);
    let failed: string | undefined;
    const watch = setInterval(() => {
      const text = readFileSync(logFile, 'utf8');
      if (/BOOT FAILED|Kernel pid terminated|could not bind|ERROR: /.test(text))
        failed = text.split('\n').slice(-20).join('\n');
    }, 200);
    try {
      const ready = run(
        this.runtime.command('rabbitmqctl', ['-q', '-n', this.name, 'wait', '--timeout', '90', inner('pid')]),
        100_000,
      );
      while (failed === undefined) {
        const done = await Promise.race([ready.then(() => true), sleep(250).then(() => false)]);
        if (done) break;
      }
      if (failed !== undefined) {
        ready.catch(() => undefined);
        throw new Error(`node ${this.name} failed to boot:\n${failed}`);
      }
    } finally {
      clearInterval(watch);
    }
    this.log(
      `${this.broker} ${this.name} up on 127.0.0.1:${this.port} in ${((Date.now() - started) / 1000).toFixed(1)} s (dir ${this.dir})`,
    );
  }
}

async function ensureEpmd(runtime: Runtime): Promise<void> {
  if (ownEpmd !== undefined && ownEpmd.exitCode === null) return;
  const epmd = epmdRuntime(runtime);
  const names = (): Promise<boolean> =>
    run(epmd.command('epmd', ['-names']), 5000).then(
      () => true,
      () => false,
    );
  if (await names()) return;
  // Started in the foreground as our child, so we hold its PID and can end it ourselves.
  const line = epmd.command('epmd', ['-address', '127.0.0.1'], { ERL_EPMD_ADDRESS: '127.0.0.1' });
  ownEpmd = spawn(line.file, line.args, { stdio: 'ignore', detached: true, env: line.env });
  ownEpmd.unref();
  for (let i = 0; i < 100; i++) {
    if (await names()) return;
    await sleep(20);
  }
  throw new Error('epmd did not start');
}
