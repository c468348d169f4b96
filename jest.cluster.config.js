// An unhandled rejection fails the run: see spec/helpers/strict-rejections.cjs.
require('./spec/helpers/strict-rejections.cjs');

/**
 * `npm run test:cluster`: specs that start their own 3-node RabbitMQ cluster (spec/cluster).
 * Kept out of `npm test`'s projects: a cluster takes ~20 s to form.
 * @type {import('jest').Config}
 */
module.exports = {
  displayName: 'cluster',
  testEnvironment: 'node',
  roots: ['<rootDir>/spec/cluster'],
  testMatch: ['**/*.spec.ts'],
  setupFiles: ['<rootDir>/spec/helpers/setup.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
};
