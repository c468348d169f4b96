/**
 * Runs a command next to a throwaway RabbitMQ node: `tsx scripts/with-broker.ts [--management] -- <command...>`.
 * This is what `npm test` and `npm run bench` use.
 *
 * With POSTAGE_TEST_URL set, it only runs the command against that broker. Otherwise it installs
 * the broker POSTAGE_TEST_BROKER names if needed (as root: `rabbitmq3`, the default, is the host's
 * rabbitmq-server; `rabbitmq4` is RabbitMQ 4.0 in a Debian trixie root), starts a node on free
 * loopback ports in a temp dir, runs the command with POSTAGE_TEST_BROKER / POSTAGE_TEST_URL /
 * POSTAGE_TEST_NODE / POSTAGE_TEST_NODE_DIR set, and stops the node (and the epmd it started)
 * whatever happens, exiting with the command's code.
 */
import { spawn } from 'node:child_process';

import { RabbitNode, freePort } from './rabbit-node';

function log(line: string): void {
  process.stderr.write(`[with-broker] ${line}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const separator = argv.indexOf('--');
  const flags = separator < 0 ? [] : argv.slice(0, separator);
  const command = separator < 0 ? [...argv] : argv.slice(separator + 1);
  if (command.length === 0) {
    log('usage: tsx scripts/with-broker.ts [--management] -- <command> [args...]');
    return 2;
  }
  const existing = process.env['POSTAGE_TEST_URL'];
  if (existing !== undefined && existing !== '') {
    log('POSTAGE_TEST_URL is set: using that broker');
    return runCommand(command, process.env);
  }

  let node: RabbitNode | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (node !== undefined) {
        const t0 = Date.now();
        await node.stop().catch((err: unknown) => log(`stop failed: ${String(err)}`));
        log(`node ${node.name} stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
      await RabbitNode.shutdownEpmd();
    })();
    return stopping;
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping the broker`);
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await RabbitNode.ensureInstalled((line) => log(line));
    const options = flags.includes('--management') ? { managementPort: await freePort() } : {};
    node = await RabbitNode.start({ ...options, log });
    if (interrupted) return 1;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      POSTAGE_TEST_BROKER: node.broker,
      POSTAGE_TEST_URL: node.url,
      POSTAGE_TEST_NODE: node.name,
      POSTAGE_TEST_NODE_DIR: node.dir,
    };
    if (node.managementPort !== undefined) env['POSTAGE_TEST_MANAGEMENT_PORT'] = String(node.managementPort);
    const code = await runCommand(command, env);
    return interrupted ? 1 : code;
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return 1;
  } finally {
    await stop();
  }
}

function runCommand(command: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, { stdio: 'inherit', env, shell: false });
    const forward = (signal: NodeJS.Signals): void => {
      if (child.exitCode === null) child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (err) => {
      log(`cannot run ${file}: ${err.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(String(err));
    process.exit(1);
  },
);
