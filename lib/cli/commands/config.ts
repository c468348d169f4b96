/** `postage config`: the effective connection settings, password redacted. */
import { describeEndpoint, resolveConnectionConfig } from '../..';
import { Exit, type CliContext, type Command } from '../command';

function run(context: CliContext): Promise<number> {
  const config = resolveConnectionConfig(context.connection, context.io.env);
  const endpoints = config.endpoints.map((endpoint) => ({
    url: describeEndpoint(endpoint),
    host: endpoint.host,
    port: endpoint.port,
    vhost: endpoint.vhost,
    user: endpoint.user,
    password: endpoint.password === '' ? '' : '***',
  }));
  const settings = {
    endpoints,
    heartbeat: config.heartbeat,
    connectTimeout: config.connectTimeout,
    confirmTimeout: config.confirmTimeout,
    publishBuffer: config.publishBuffer,
    reconnect: config.reconnect,
    debug: config.debug,
  };
  context.document(settings);
  for (const endpoint of endpoints)
    context.line(`endpoint        ${endpoint.url} (password ${endpoint.password === '' ? 'empty' : 'set'})`);
  context.line(`heartbeat       ${config.heartbeat} s`);
  context.line(`connectTimeout  ${config.connectTimeout} ms`);
  context.line(`confirmTimeout  ${config.confirmTimeout} ms`);
  context.line(
    `publishBuffer   ${config.publishBuffer.maxMessages} messages, ${config.publishBuffer.maxBytes} bytes, ${config.publishBuffer.policy}`,
  );
  context.line(`reconnect       ${JSON.stringify(config.reconnect)}`);
  context.line(`debug           ${String(config.debug)}`);
  return Promise.resolve(Exit.ok);
}

/** The `config` command. */
export const config: Command = {
  name: 'config',
  summary: 'print the effective connection settings (the password redacted)',
  usage: '',
  details: [
    'Settings come from --url, else POSTAGE_HOST, POSTAGE_PORT, POSTAGE_VHOST, POSTAGE_USER,',
    'POSTAGE_PASSWORD, POSTAGE_URL and the defaults, in that order.',
  ],
  positionals: { min: 0, max: 0 },
  run,
};
