// An unhandled rejection fails the run: see spec/helpers/strict-rejections.cjs.
require('./spec/helpers/strict-rejections.cjs');

/**
 * `npm run test:faults`: fault tests against real RabbitMQ nodes that each spec starts, kills,
 * restarts, alarms or cuts off (spec/faults). Run in band: they own their nodes and ports.
 * @type {import('jest').Config}
 */
module.exports = {
  displayName: 'faults',
  testEnvironment: 'node',
  roots: ['<rootDir>/spec/faults'],
  testMatch: ['**/*.spec.ts'],
  setupFiles: ['<rootDir>/spec/helpers/setup.ts'],
  testTimeout: 120_000,
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
};
