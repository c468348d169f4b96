/**
 * Python postage on the wire, for the compatibility specs. Two kinds of peer:
 *
 * - wire peers written with plain amqplib (`pythonBody`, `pythonRpcServer`, `pythonRpcCall`)
 *   that speak postage 1.2.1's wire format exactly (reference/postage-semantics.md): bodies are
 *   JSON dictionaries with seven keys, publishes set only content_type, the RPC client uses a
 *   private exclusive queue per attempt and no correlation id, and the RPC server replies to
 *   reply_to through the default exchange with no properties;
 * - a real Python program (spec/fixtures/python/postage_peer.py, pika) that behaves on the wire
 *   as Python postage's demos do, run as a child process (`startPython`, `runPython`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import type { Channel, ConsumeMessage } from 'amqplib';

import { waitFor } from './broker';

/** A fingerprint as Python postage builds it: six strings, 'None' for a missing name or type. */
export const pythonFingerprint = {
  name: 'py_sender',
  type: 'None',
  pid: '6220',
  host: 'pyhost',
  user: 'pyuser',
  vhost: '/',
} as const;

/** Python's json.dumps of a postage message (key order as a Python 2 dict happened to give it). */
export function pythonBody(
  type: string,
  name: string,
  category: 'message' | 'rpc',
  content: object,
  fingerprint: object = pythonFingerprint,
): Buffer {
  return Buffer.from(
    JSON.stringify({ category, name, _reserved: {}, content, version: '2', fingerprint, type }),
  );
}

/** A result's content, as Python postage's MessageResult* build it. */
export type PythonResultContent = {
  type: 'success' | 'error' | 'exception';
  value: unknown;
  message: string;
};

/** A request a {@link pythonRpcServer} got: its decoded body and AMQP properties. */
export interface PythonRequest {
  readonly body: { name: string; content: { parameters: unknown }; [key: string]: unknown };
  readonly properties: ConsumeMessage['properties'];
}

/**
 * A Python postage RPC server on `exchange`/`key` (declared direct, durable, auto-delete, with
 * an exclusive queue): for each request it publishes `answer(request)` as a result message to
 * reply_to through the default exchange with no properties at all (postage's rpc_reply), then
 * acks. Resolves with the list of requests it got.
 */
export async function pythonRpcServer(
  channel: Channel,
  exchange: string,
  key: string,
  answer: (request: PythonRequest) => PythonResultContent,
): Promise<PythonRequest[]> {
  const requests: PythonRequest[] = [];
  await channel.assertExchange(exchange, 'direct', { durable: true, autoDelete: true });
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, exchange, key);
  await channel.consume(queue, (m) => {
    if (m === null) return;
    const request: PythonRequest = {
      body: JSON.parse(m.content.toString()) as PythonRequest['body'],
      properties: m.properties,
    };
    requests.push(request);
    channel.publish(
      '',
      m.properties.replyTo as string,
      pythonBody('result', 'none', 'message', answer(request)),
    );
    channel.ack(m);
  });
  return requests;
}

/** A reply a {@link pythonRpcCall} got. */
export interface PythonReply {
  readonly body: Record<string, unknown>;
  readonly properties: ConsumeMessage['properties'];
}

/**
 * Python postage's `_rpc_send` + `consume_rpc`: a new exclusive auto-delete queue as reply_to,
 * no correlation id; waits for one reply.
 */
export async function pythonRpcCall(
  channel: Channel,
  exchange: string,
  key: string,
  name: string,
  parameters: unknown,
): Promise<PythonReply> {
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  const replies: PythonReply[] = [];
  await channel.consume(queue, (m) => {
    if (m !== null) replies.push({ body: JSON.parse(m.content.toString()), properties: m.properties });
  });
  channel.publish(exchange, key, pythonBody('command', name, 'rpc', { parameters }), {
    contentType: 'application/json',
    replyTo: queue,
  });
  await waitFor(() => replies.length === 1, { what: `the reply to ${name}` });
  return replies[0] as PythonReply;
}

const ROOT = path.resolve(__dirname, '../..');
const PEER = path.join(ROOT, 'spec/fixtures/python/postage_peer.py');

/** The interpreter that imports pika, once found. */
let python: string | undefined;

/** Debian's python3 first: that is the one python3-pika installs for (a pyenv shim may not see it). */
const INTERPRETERS = ['/usr/bin/python3', 'python3'];

function importsPika(interpreter: string): boolean {
  return spawnSync(interpreter, ['-c', 'import pika'], { stdio: 'ignore' }).status === 0;
}

/**
 * A python3 that imports pika: installs Debian's `python3-pika` with apt-get when none does
 * (as root, as the test scripts install rabbitmq-server; PyPI is not needed). Returns its path.
 */
export function ensurePika(): string {
  if (python !== undefined) return python;
  python = INTERPRETERS.find(importsPika);
  if (python !== undefined) return python;
  if (process.getuid?.() !== 0) {
    throw new Error('python3 with pika is needed: install it with `sudo apt-get install -y python3-pika`');
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args: string[]): void => {
    const result = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
      timeout: 900_000,
    });
    if (result.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed: ${result.stderr}`);
  };
  process.stderr.write('[python-peer] python3-pika is missing: installing it with apt-get\n');
  try {
    apt(['install', '-y', '-qq', '--no-install-recommends', 'python3-pika']);
  } catch {
    // A fresh machine: the package lists come first.
    apt(['update', '-qq']);
    apt(['install', '-y', '-qq', '--no-install-recommends', 'python3-pika']);
  }
  python = INTERPRETERS.find(importsPika);
  if (python === undefined) throw new Error('apt-get installed python3-pika, but no python3 imports pika');
  return python;
}

/** A child process of a spec, with everything it printed. */
export interface Running {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}

/** Every process the specs start, so that `stopAll` ends them (by PID). */
const started: ChildProcess[] = [];

/** Starts a child process with its output collected. */
export function startProcess(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string = ROOT,
): Running {
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

/** Runs the Python peer (`postage_peer.py <mode> [args]`) against `url`. */
export function startPython(url: string, mode: string, args: readonly string[] = []): Running {
  return startProcess(ensurePika(), ['-u', PEER, mode, ...args], { ...process.env, POSTAGE_URL: url });
}

/** Runs the Python peer to its end; fails the spec unless it exits 0. Returns what it printed. */
export async function runPython(url: string, mode: string, args: readonly string[] = []): Promise<string> {
  const run = startPython(url, mode, args);
  const code = await run.exited;
  expect({ mode, code, output: run.output() }).toMatchObject({ code: 0 });
  return run.output();
}

/** Ends every process a spec started that is still running, by PID. */
export function stopAll(): void {
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
