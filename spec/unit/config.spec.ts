import { ErrorCode, describeEndpoint, resolveConnectionConfig } from '../../lib';

describe('config', () => {
  it('config - defaults are localhost:5672, vhost /, guest/guest', () => {
    const config = resolveConnectionConfig({}, {});
    expect(config.endpoints).toEqual([
      { protocol: 'amqp', host: 'localhost', port: 5672, vhost: '/', user: 'guest', password: 'guest' },
    ]);
    expect(config.debug).toBe(false);
    expect(config.heartbeat).toBeGreaterThan(0);
    expect(config.connectTimeout).toBeGreaterThan(0);
  });

  it('config - POSTAGE_VHOST, POSTAGE_USER, POSTAGE_PASSWORD, POSTAGE_HOST, POSTAGE_PORT and POSTAGE_DEBUG_MODE are read', () => {
    const config = resolveConnectionConfig(
      {},
      {
        POSTAGE_VHOST: 'development',
        POSTAGE_USER: 'bob',
        POSTAGE_PASSWORD: 's3cret',
        POSTAGE_HOST: 'rabbit.local',
        POSTAGE_PORT: '5673',
        POSTAGE_DEBUG_MODE: 'True',
      },
    );
    expect(config.endpoints[0]).toEqual({
      protocol: 'amqp',
      host: 'rabbit.local',
      port: 5673,
      vhost: 'development',
      user: 'bob',
      password: 's3cret',
    });
    expect(config.debug).toBe(true);
  });

  it('config - POSTAGE_URL sets what it spells out; field variables win over it', () => {
    const env = { POSTAGE_URL: 'amqp://alice:pw@h1:5680/prod?heartbeat=5', POSTAGE_VHOST: 'dev' };
    const config = resolveConnectionConfig({}, env);
    expect(config.endpoints[0]).toEqual({
      protocol: 'amqp',
      host: 'h1',
      port: 5680,
      vhost: 'dev',
      user: 'alice',
      password: 'pw',
    });
    expect(config.heartbeat).toBe(5);
  });

  it('config - explicit options win over the environment', () => {
    const env = {
      POSTAGE_URL: 'amqp://alice:pw@h1:5680/prod',
      POSTAGE_USER: 'envuser',
      POSTAGE_PORT: '1234',
    };
    expect(resolveConnectionConfig({ url: 'amqp://opt@h2/v2' }, env).endpoints[0]).toEqual({
      protocol: 'amqp',
      host: 'h2',
      port: 1234,
      vhost: 'v2',
      user: 'opt',
      password: 'pw',
    });
    expect(
      resolveConnectionConfig({ host: 'h3', port: 9999, vhost: '/', user: 'u', password: 'p' }, env)
        .endpoints[0],
    ).toEqual({
      protocol: 'amqp',
      host: 'h3',
      port: 9999,
      vhost: '/',
      user: 'u',
      password: 'p',
    });
    expect(resolveConnectionConfig({ debug: false }, { POSTAGE_DEBUG_MODE: 'true' }).debug).toBe(false);
  });

  it('config - a URL may list several brokers; a percent-encoded vhost is decoded', () => {
    const config = resolveConnectionConfig({ url: 'amqp://u:p@a:1/%2F, amqp://u:p@b:2/%2F' }, {});
    expect(config.endpoints.map((e) => [e.host, e.port, e.vhost])).toEqual([
      ['a', 1, '/'],
      ['b', 2, '/'],
    ]);
  });

  it('config - invalid settings are typed errors that never echo the password', () => {
    const attempts: Array<() => unknown> = [
      () => resolveConnectionConfig({ url: 'http://u:topsecret@h' }, {}),
      () => resolveConnectionConfig({ url: 'amqp://u:topsecret@h:notaport' }, {}),
      () => resolveConnectionConfig({}, { POSTAGE_PORT: 'abc' }),
      () => resolveConnectionConfig({ port: 70000 }, {}),
      () => resolveConnectionConfig({ heartbeat: -1 }, {}),
    ];
    for (const attempt of attempts) {
      let caught: unknown;
      try {
        attempt();
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code: ErrorCode.INVALID_CONFIG });
      expect(String((caught as Error).message)).not.toContain('topsecret');
    }
  });

  it('config - an endpoint is described without its password', () => {
    const [endpoint] = resolveConnectionConfig({ url: 'amqp://bob:topsecret@h:5/v' }, {}).endpoints;
    expect(describeEndpoint(endpoint!)).toBe('amqp://bob@h:5/v');
  });
});
