/**
 * How `restart` decides (issue 13, point 10): the option, then POSTAGE_RESTART, then the signs
 * of a supervisor. The process-level behaviour is spec/broker/restart.spec.ts's.
 */
import {
  Exchange,
  MemoryBroker,
  MessageCommand,
  MessageProcessor,
  TestClient,
  detectSupervisor,
  type Eqk,
  type SupervisorProbe,
} from '../../lib';
import { decideRestart } from '../../lib/processor/restart';
import { MemoryLogger } from '../helpers/memory-logger';

function probe(env: Record<string, string> = {}, pid = 4242, files: string[] = []): SupervisorProbe {
  return { env, pid, exists: (file) => files.includes(file) };
}

describe('restart policy', () => {
  it.each<[string, SupervisorProbe, string | undefined]>([
    ['nothing', probe(), undefined],
    ['systemd INVOCATION_ID', probe({ INVOCATION_ID: 'abc' }), 'systemd'],
    ['systemd NOTIFY_SOCKET', probe({ NOTIFY_SOCKET: '/run/systemd/notify' }), 'systemd'],
    ['PID 1', probe({}, 1), 'container (this process is PID 1)'],
    ['/.dockerenv', probe({}, 4242, ['/.dockerenv']), 'container (/.dockerenv)'],
    ['/run/.containerenv', probe({}, 4242, ['/run/.containerenv']), 'container (/run/.containerenv)'],
    ['container=podman', probe({ container: 'podman' }), 'container (container=podman)'],
    ['Kubernetes', probe({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }), 'kubernetes'],
    ['pm2', probe({ pm_id: '3' }), 'pm2'],
    ['supervisord', probe({ SUPERVISOR_ENABLED: '1' }), 'supervisord'],
    ['an empty INVOCATION_ID', probe({ INVOCATION_ID: '' }), undefined],
  ])('restart - detectSupervisor: %s', (_what, given, expected) => {
    expect(detectSupervisor(given)).toBe(expected);
  });

  it('restart - the default: exit under a supervisor, respawn otherwise', () => {
    const logger = new MemoryLogger();
    expect(decideRestart(undefined, logger, probe({ INVOCATION_ID: 'abc' })).policy).toBe('exit');
    expect(decideRestart(undefined, logger, probe()).policy).toBe('respawn');
  });

  it('restart - POSTAGE_RESTART overrides the detection (any case); the option overrides both', () => {
    const logger = new MemoryLogger();
    expect(
      decideRestart(undefined, logger, probe({ POSTAGE_RESTART: 'Respawn', INVOCATION_ID: 'x' })).policy,
    ).toBe('respawn');
    expect(decideRestart(undefined, logger, probe({ POSTAGE_RESTART: 'exit' })).policy).toBe('exit');
    expect(decideRestart('respawn', logger, probe({ POSTAGE_RESTART: 'exit' })).policy).toBe('respawn');
    expect(logger.lines).toEqual([]);
  });

  it('restart - a POSTAGE_RESTART value that is not understood is ignored with a warning', () => {
    const logger = new MemoryLogger();
    const decision = decideRestart(undefined, logger, probe({ POSTAGE_RESTART: 'reboot' }));
    expect(decision.policy).toBe('respawn');
    expect(logger.at('warn')[0]?.fields).toMatchObject({ variable: 'POSTAGE_RESTART', value: 'reboot' });
  });

  it('restart - an invalid restart option is an INVALID_ARGUMENT', () => {
    expect(() => new MessageProcessor({ url: 'memory://restart', restart: 'reboot' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  describe('a function as the policy', () => {
    afterEach(() => MemoryBroker.resetAll());

    class RestartExchange extends Exchange {
      static override name = 'restart-exchange';
    }

    it('restart - the function runs once the processor has stopped; its rejection is reported, not thrown', async () => {
      const calls: string[] = [];
      let processor: MessageProcessor | undefined = undefined;
      const eqk: Eqk = [[RestartExchange, [['restart-queue', 'control']]]];
      const p = new MessageProcessor({
        url: 'memory://restart',
        eqk,
        restart: async () => {
          calls.push(`restart after stop: ${String(processor?.handling === 0)}`);
          throw new Error('the orchestrator is away');
        },
      });
      processor = p;
      const errors: string[] = [];
      p.on('error', (error) => errors.push(error.message));
      const client = await TestClient.for(p);
      await client.send(new MessageCommand('restart'));
      await expect(p.done).resolves.toEqual({ reason: 'restart' });
      const deadline = Date.now() + 5_000;
      while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(calls).toEqual(['restart after stop: true']);
      expect(errors).toEqual([expect.stringContaining('the orchestrator is away')]);
      await client.close();
    });
  });
});
