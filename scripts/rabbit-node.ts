/**
 * A throwaway RabbitMQ node from the Debian package: its own name, loopback ports and temp
 * directory, so tests, benchmarks and demos never touch a broker they did not start.
 *
 * The /usr/sbin wrappers run the node as user `rabbitmq` (sharing its Erlang cookie), so every
 * directory handed to the node is chowned to that user. Readiness is `rabbitmqctl wait PIDFILE`
 * (await_startup fails before the node registers with epmd).
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

/** Options of {@link RabbitNode.start}. */
export interface RabbitNodeOptions {
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
  /** Data directory. @default a new temp dir */
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

function run(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      { timeout: options.timeoutMs ?? 120_000, env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            Object.assign(new Error(`${command} ${args.join(' ')}: ${stderr || err.message}`), {
              stdout,
              stderr,
            }),
          );
        else resolve({ stdout, stderr });
      },
    );
  });
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

/** A RabbitMQ node started by this process. */
export class RabbitNode {
  readonly name: string;
  readonly port: number;
  readonly distPort: number;
  readonly managementPort: number | undefined;
  readonly dir: string;
  readonly url: string;
  private readonly keepDir: boolean;
  private readonly log: (line: string) => void;
  private readonly config: string;

  private constructor(
    options: Required<Pick<RabbitNodeOptions, 'name' | 'port' | 'distPort' | 'dir'>> & RabbitNodeOptions,
  ) {
    this.name = options.name;
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
   * Installs rabbitmq-server when it is missing: with apt-get when running as root, otherwise
   * it stops with what to do.
   */
  static async ensureInstalled(
    log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ): Promise<void> {
    if (which('rabbitmq-server') !== undefined && which('rabbitmqctl') !== undefined) return;
    if (process.getuid?.() !== 0) {
      throw new Error(
        'rabbitmq-server is not installed. Install it with `sudo apt-get install -y rabbitmq-server`, ' +
          'or set POSTAGE_TEST_URL to an existing broker (amqp://user:password@host:port/vhost).',
      );
    }
    log('rabbitmq-server is missing: installing it with apt-get (about 15 s)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'rabbitmq-server'], {
      env,
      timeoutMs: 900_000,
    });
    if (which('rabbitmq-server') === undefined) throw new Error('apt-get did not install rabbitmq-server');
    log('rabbitmq-server installed');
  }

  /** Starts a node and waits until it accepts connections. */
  static async start(options: RabbitNodeOptions = {}): Promise<RabbitNode> {
    const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), 'postage-rabbit-'));
    const port = options.port ?? (await freePort());
    let distPort = options.distPort ?? (await freePort());
    while (distPort === port) distPort = await freePort();
    const name = options.name ?? `postage-${process.pid}-${++counter}@localhost`;
    const node = new RabbitNode({ ...options, name, port, distPort, dir });
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

  /** Runs `rabbitmqctl -n <node> ...args` and returns stdout. */
  async ctl(...args: string[]): Promise<string> {
    return (await run('rabbitmqctl', ['-q', '-n', this.name, ...args], { timeoutMs: 120_000 })).stdout;
  }

  /** Evaluates an Erlang expression on the node. */
  eval(expression: string): Promise<string> {
    return this.ctl('eval', expression);
  }

  /** Stops the node gracefully (SIGKILL after 60 s), removes its directory unless kept. */
  async stop(): Promise<void> {
    await this.shutdown();
    liveNodes.delete(this);
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

  private async shutdown(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !alive(pid)) return;
    try {
      await run('rabbitmqctl', ['-q', '-n', this.name, 'stop', this.pidFile], { timeoutMs: 60_000 });
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
    for (let i = 0; i < 500; i++) {
      const names = await run('epmd', ['-names'], { timeoutMs: 5000 }).then(
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
    await ensureEpmd();
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(path.join(this.dir, 'rabbitmq.conf'), this.config);
    writeFileSync(
      path.join(this.dir, 'enabled_plugins'),
      this.managementPort === undefined ? '[].\n' : '[rabbitmq_management].\n',
    );
    rmSync(this.pidFile, { force: true });
    await run('chown', ['-R', 'rabbitmq:rabbitmq', this.dir]);
    const logFile = path.join(this.dir, 'out.log');
    const out = openSync(logFile, 'a');
    const started = Date.now();
    const child = spawn(which('rabbitmq-server') ?? 'rabbitmq-server', [], {
      detached: true,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        RABBITMQ_NODENAME: this.name,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(this.port),
        RABBITMQ_DIST_PORT: String(this.distPort),
        RABBITMQ_MNESIA_BASE: path.join(this.dir, 'mnesia'),
        RABBITMQ_LOG_BASE: path.join(this.dir, 'log'),
        RABBITMQ_CONFIG_FILE: path.join(this.dir, 'rabbitmq.conf'),
        RABBITMQ_ENABLED_PLUGINS_FILE: path.join(this.dir, 'enabled_plugins'),
        RABBITMQ_PID_FILE: this.pidFile,
        ERL_CRASH_DUMP: path.join(this.dir, 'erl_crash.dump'),
        ERL_EPMD_ADDRESS: '127.0.0.1',
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      },
    });
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
      const ready = run('rabbitmqctl', ['-q', '-n', this.name, 'wait', '--timeout', '90', this.pidFile], {
        timeoutMs: 100_000,
      });
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
      `rabbit ${this.name} up on 127.0.0.1:${this.port} in ${((Date.now() - started) / 1000).toFixed(1)} s (dir ${this.dir})`,
    );
  }
}

async function ensureEpmd(): Promise<void> {
  if (ownEpmd !== undefined && ownEpmd.exitCode === null) return;
  const running = await run('epmd', ['-names'], { timeoutMs: 5000 }).then(
    () => true,
    () => false,
  );
  if (running) return;
  // Started in the foreground as our child, so we hold its PID and can end it ourselves.
  ownEpmd = spawn('epmd', ['-address', '127.0.0.1'], {
    stdio: 'ignore',
    detached: true,
    env: { ...process.env, ERL_EPMD_ADDRESS: '127.0.0.1' },
  });
  ownEpmd.unref();
  for (let i = 0; i < 100; i++) {
    if (
      await run('epmd', ['-names'], { timeoutMs: 5000 }).then(
        () => true,
        () => false,
      )
    )
      return;
    await sleep(20);
  }
  throw new Error('epmd did not start');
}
