/**
 * Two projects: `unit` needs no broker; `broker` talks to the RabbitMQ that
 * `npm test` starts (or to POSTAGE_TEST_URL). Broker specs run serially: they
 * share one small node and the machine has two cores.
 * @type {import('jest').Config}
 */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }];

module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      roots: ['<rootDir>/spec/unit'],
      testMatch: ['**/*.spec.ts'],
      setupFiles: ['<rootDir>/spec/helpers/setup.ts'],
      transform: { '^.+\\.ts$': tsJest },
    },
    {
      displayName: 'broker',
      testEnvironment: 'node',
      roots: ['<rootDir>/spec/broker'],
      testMatch: ['**/*.spec.ts'],
      setupFiles: ['<rootDir>/spec/helpers/setup.ts'],
      transform: { '^.+\\.ts$': tsJest },
    },
  ],
};
