/**
 * The package from CommonJS (`require`), compiled by scripts/check-package.ts in a
 * `"type": "commonjs"` folder of a fresh project with `module` `nodenext` and
 * `skipLibCheck: false`: the require condition's declarations type-check, the typed events
 * compile, and `require` and `import` in one process get one copy of postage (no dual-package
 * hazard: one PostageError class, one registry of in-process brokers).
 */
import assert from 'node:assert/strict';

import { Connection, MemoryBroker, PostageError, ValidationError, type ConnectionStatus } from 'postage-amqp';

async function main(): Promise<void> {
  const esm = await import('postage-amqp');
  assert.equal(esm.PostageError, PostageError, 'import and require give one PostageError class');
  assert.equal(esm.MemoryBroker.named('commonjs-check'), MemoryBroker.named('commonjs-check'));
  assert.ok(new esm.ValidationError('INVALID_MESSAGE', 'x') instanceof PostageError);
  assert.ok(new ValidationError('INVALID_MESSAGE', 'x') instanceof esm.PostageError);

  const statuses: ConnectionStatus['type'][] = [];
  const connection = new Connection({ url: 'memory://commonjs-check' });
  connection.on('status', (status) => statuses.push(status.type));
  connection.once('error', (error) => assert.fail(`error event: ${error.code}`));
  await connection.open();
  await connection.close();
  assert.deepEqual(statuses, ['connected', 'closed']);
  process.stdout.write('commonjs: ok\n');
}

main().catch((error: unknown) => {
  process.stderr.write(
    `commonjs check failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
