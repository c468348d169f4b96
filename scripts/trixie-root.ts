/**
 * A Debian trixie root folder holding `rabbitmq-server` 4.0 and its Erlang 27, for the
 * `rabbitmq4` test broker: made once with debootstrap (variant minbase) from the Debian mirror
 * the machine's apt already uses, then reused by every run.
 *
 * The root is built in a sibling temp folder and renamed into place at the end, so a half-built
 * root is never reused; a kernel lock (`flock`, released when its holder dies) keeps two
 * concurrent runs from building it twice. Everything that runs inside the root runs in a private
 * mount namespace with its own /proc (`unshare --mount --mount-proc --root`): the mounts go away
 * with the last process in the namespace, whatever happens to the test run, and the host never
 * sees them. Without a new PID namespace, process ids inside are the host's, so nodes are still
 * stopped by PID from outside.
 *
 * `tsx scripts/trixie-root.ts` builds the root if needed and prints where it is and how long it took.
 */
import { execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

/** The suite debootstrap installs. */
const SUITE = 'trixie';
/** Where the root lives unless POSTAGE_RABBITMQ4_ROOT says otherwise. */
const DEFAULT_ROOT = '/var/cache/postage/trixie-rabbitmq4';
/** Written last into a finished root: a root without it is never used. */
const MARKER = 'etc/postage-root.json';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** PATH inside the root. */
const ROOT_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** What a finished root records about itself. */
export interface TrixieRootInfo {
  readonly rabbitmq: string;
  readonly erlang: string;
  readonly mirror: string;
  /** How long the first creation took, in seconds. */
  readonly buildSeconds: number;
  readonly debootstrapSeconds: number;
  readonly installSeconds: number;
  readonly created: string;
}

/** The root folder (POSTAGE_RABBITMQ4_ROOT, or /var/cache/postage/trixie-rabbitmq4). */
export function trixieRootPath(): string {
  const configured = process.env['POSTAGE_RABBITMQ4_ROOT'];
  return configured !== undefined && configured !== '' ? path.resolve(configured) : DEFAULT_ROOT;
}

/** What the finished root at `root` records, or undefined when it is missing or half-built. */
export function rootInfo(root = trixieRootPath()): TrixieRootInfo | undefined {
  try {
    return JSON.parse(readFileSync(path.join(root, MARKER), 'utf8')) as TrixieRootInfo;
  } catch {
    return undefined;
  }
}

/**
 * The command line that runs `command` inside `root`: a private mount namespace with a fresh
 * /proc (RabbitMQ's memory monitor and `rabbitmqctl wait` read it), chrooted, with a clean
 * environment holding only `env`.
 */
export function inRoot(
  root: string,
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): { file: string; args: string[] } {
  const pairs = Object.entries({ PATH: ROOT_PATH, LANG: 'C.UTF-8', HOME: '/root', ...env }).map(
    ([key, value]) => `${key}=${value}`,
  );
  return {
    file: which('unshare') ?? 'unshare',
    args: [
      '--mount',
      '--propagation',
      'private',
      '--mount-proc=/proc',
      `--root=${root}`,
      '/usr/bin/env',
      '-i',
      ...pairs,
      command,
      ...args,
    ],
  };
}

/** Runs a command inside the root and resolves with its stdout. */
export function runInRoot(
  root: string,
  command: string,
  args: readonly string[],
  options: { env?: Readonly<Record<string, string>>; timeoutMs?: number } = {},
): Promise<string> {
  const line = inRoot(root, command, args, options.env);
  return run(line.file, line.args, { timeoutMs: options.timeoutMs ?? 120_000 });
}

/**
 * Returns the root, building it first when it is missing (as root only; about 30 s on a fresh
 * machine). Concurrent callers wait for the one that builds.
 */
export async function ensureTrixieRoot(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<string> {
  const root = trixieRootPath();
  if (rootInfo(root) !== undefined) return root;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `the RabbitMQ 4 test broker needs a Debian trixie root at ${root}, which only root can build ` +
        '(debootstrap, chroot): run the tests as root, or set POSTAGE_TEST_URL to an existing broker.',
    );
  }
  mkdirSync(path.dirname(root), { recursive: true });
  await withLock(`${root}.lock`, log, async () => {
    // Another run may have finished it while this one waited for the lock.
    if (rootInfo(root) === undefined) await build(root, log);
  });
  return root;
}

async function build(root: string, log: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  removeStaleBuilds(root);
  // A root folder without the marker is half-built or foreign: never reuse or overwrite it.
  if (existsSync(root)) {
    throw new Error(`${root} exists but is not a finished trixie root: remove it and run again`);
  }
  await ensureDebootstrap(log);
  const mirror = debianMirror();
  const temp = `${root}.build-${process.pid}`;
  log(`building the trixie root for RabbitMQ 4 in ${temp} from ${mirror} (about 30 s, once)`);
  try {
    // In a mount namespace of its own: whatever debootstrap mounts inside the target goes away
    // with it, even if this run is killed.
    await run(
      which('unshare') ?? 'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        which('debootstrap') ?? 'debootstrap',
        '--variant=minbase',
        `--keyring=${KEYRING}`,
        SUITE,
        temp,
        mirror,
      ],
      { timeoutMs: 900_000 },
    );
    const debootstrapSeconds = (Date.now() - t0) / 1000;
    // The chroot's own / must be traversable by its rabbitmq user (mkdtemp-like modes are not).
    chmodSync(temp, 0o755);
    // As in Debian's container images: package scripts never start services.
    writeFileSync(path.join(temp, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    const apt = { DEBIAN_FRONTEND: 'noninteractive' };
    const t1 = Date.now();
    await runInRoot(temp, 'apt-get', ['update', '-qq'], { env: apt, timeoutMs: 600_000 });
    await runInRoot(temp, 'apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'rabbitmq-server'], {
      env: apt,
      timeoutMs: 900_000,
    });
    await runInRoot(temp, 'apt-get', ['clean'], { env: apt });
    const installSeconds = (Date.now() - t1) / 1000;
    const version = async (pkg: string): Promise<string> =>
      (await runInRoot(temp, 'dpkg-query', ['-W', '-f', '${Version}', pkg])).trim();
    const rabbitmq = await version('rabbitmq-server');
    const erlang = await version('erlang-base');
    if (!rabbitmq.startsWith('4.')) throw new Error(`trixie gave rabbitmq-server ${rabbitmq}, not 4.x`);
    const info: TrixieRootInfo = {
      rabbitmq,
      erlang,
      mirror,
      buildSeconds: Number(((Date.now() - t0) / 1000).toFixed(1)),
      debootstrapSeconds: Number(debootstrapSeconds.toFixed(1)),
      installSeconds: Number(installSeconds.toFixed(1)),
      created: new Date().toISOString(),
    };
    writeFileSync(path.join(temp, MARKER), `${JSON.stringify(info, null, 2)}\n`);
    renameSync(temp, root);
    log(
      `trixie root ready at ${root} in ${info.buildSeconds} s (debootstrap ${info.debootstrapSeconds} s, ` +
        `rabbitmq-server ${rabbitmq} with erlang ${erlang} ${info.installSeconds} s)`,
    );
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    throw err;
  }
}

/** Builds left by a run that died: only the lock holder calls this, so none is in progress. */
function removeStaleBuilds(root: string): void {
  const dir = path.dirname(root);
  const prefix = `${path.basename(root)}.build-`;
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith(prefix)) rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}

async function ensureDebootstrap(log: (line: string) => void): Promise<void> {
  const missing = [
    ...(which('debootstrap') === undefined ? ['debootstrap'] : []),
    ...(existsSync(KEYRING) ? [] : ['debian-archive-keyring']),
  ];
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    env,
    timeoutMs: 600_000,
  });
}

/**
 * The Debian archive the machine's apt uses (the first `deb` source of a Debian suite that is
 * not -security), from one-line and deb822 sources; deb.debian.org when none is found.
 */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list'];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) {
    for (const entry of readdirSync(dir).sort()) {
      if (entry.endsWith('.list') || entry.endsWith('.sources')) files.push(path.join(dir, entry));
    }
  }
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const found = file.endsWith('.sources') ? fromDeb822(text) : fromOneLine(text);
    if (found !== undefined) return found.replace(/\/+$/, '');
  }
  return 'http://deb.debian.org/debian';
}

const DEBIAN_SUITES = /^(bookworm|trixie|bullseye|stable|testing|sid|unstable)(-updates)?$/;

function fromOneLine(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (match !== null && DEBIAN_SUITES.test(match[2] as string)) return match[1];
  }
  return undefined;
}

function fromDeb822(text: string): string | undefined {
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string[] => {
      const match = new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza.replace(/^#.*$/gm, ''));
      return match === null ? [] : (match[1] as string).trim().split(/\s+/);
    };
    if (field('Enabled')[0] === 'no' || !field('Types').includes('deb')) continue;
    const uri = field('URIs')[0];
    if (uri !== undefined && field('Suites').some((suite) => DEBIAN_SUITES.test(suite))) return uri;
  }
  return undefined;
}

/**
 * Runs `fn` holding an exclusive flock on `lockPath`. The lock is held by a `flock` child that
 * waits on its stdin: if this process dies, the pipe closes, the child exits and the kernel
 * releases the lock, so a killed run never leaves a stale lock.
 */
async function withLock<T>(lockPath: string, log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  const holder = spawn(
    which('flock') ?? 'flock',
    ['--exclusive', lockPath, 'sh', '-c', 'echo locked; read -r _ || true'],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => holder.once('close', () => resolve()));
  const waiting = setTimeout(() => log(`waiting for another run building the root (${lockPath})`), 2000);
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      holder.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('locked')) resolve();
      });
      holder.once('error', reject);
      holder.once('close', (code) => reject(new Error(`flock ${lockPath} exited with ${code}`)));
    });
  } finally {
    clearTimeout(waiting);
  }
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await exited;
  }
}

function which(command: string): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), ...SBIN]) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function run(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      { timeout: options.timeoutMs ?? 120_000, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const tail = (stderr || stdout || err.message).trim().split('\n').slice(-15).join('\n');
          reject(new Error(`${path.basename(command)} ${args.slice(0, 8).join(' ')}: ${tail}`));
        } else resolve(stdout);
      },
    );
  });
}

if (require.main === module) {
  ensureTrixieRoot().then(
    (root) => {
      process.stdout.write(`${JSON.stringify({ root, ...rootInfo(root) }, null, 2)}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
