import { brokerVersion, label, reportedVersion, target } from '../helpers/contract';

describe(`release under test (contract, ${label})`, () => {
  test('release - the broker under test is the release whose expectations this run checks', async () => {
    const release = await brokerVersion();
    if (target === 'memory') {
      expect(release).toBe(process.env['POSTAGE_CONTRACT_VERSION'] === '3.10' ? '3.10' : '4.0');
      return;
    }
    // A node `npm test` started: its kind names the release (rabbitmq4 is trixie's 4.0).
    if (process.env['POSTAGE_TEST_NODE'] !== undefined) {
      expect(release).toBe(process.env['POSTAGE_TEST_BROKER'] === 'rabbitmq4' ? '4.0' : '3.10');
    }
    expect(await reportedVersion()).toMatch(new RegExp(`^${release.replace('.', '\\.')}\\.`));
  });
});
