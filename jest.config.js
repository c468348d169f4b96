// An unhandled rejection fails the run: see spec/helpers/strict-rejections.cjs.
require('./spec/helpers/strict-rejections.cjs');

/**
 * Projects: `unit` needs no broker; `broker` talks to the RabbitMQ that `npm test` starts (or to
 * POSTAGE_TEST_URL); `contract:rabbitmq`, `contract:memory` and `contract:memory:3.10` run the
 * same contract specs against that RabbitMQ and against the in-process broker following 4.0 and
 * 3.10, so any difference fails one of them (the specs state what differs between releases).
 * @type {import('jest').Config}
 */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }];

const project = (displayName, roots, setupFiles = []) => ({
  displayName,
  testEnvironment: 'node',
  roots,
  testMatch: ['**/*.spec.ts'],
  setupFiles: ['<rootDir>/spec/helpers/setup.ts', ...setupFiles],
  transform: { '^.+\\.ts$': tsJest },
});

module.exports = {
  projects: [
    project('unit', ['<rootDir>/spec/unit']),
    project('broker', ['<rootDir>/spec/broker']),
    project('contract:rabbitmq', ['<rootDir>/spec/contract']),
    project('contract:memory', ['<rootDir>/spec/contract'], ['<rootDir>/spec/helpers/contract-memory.ts']),
    project(
      'contract:memory:3.10',
      ['<rootDir>/spec/contract'],
      ['<rootDir>/spec/helpers/contract-memory-3.10.ts'],
    ),
  ],
};
