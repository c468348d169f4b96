/**
 * Connection settings from options and the environment, resolved in one place.
 *
 * Each setting comes from the most specific source that sets it:
 *   1. an explicit option field (`host`, `port`, `vhost`, `user`, `password`)
 *   2. the explicit `url` option
 *   3. an environment field (POSTAGE_HOST, POSTAGE_PORT, POSTAGE_VHOST, POSTAGE_USER, POSTAGE_PASSWORD)
 *   4. POSTAGE_URL
 *   5. the defaults (localhost, 5672, `/`, guest, guest)
 * A URL only sets what it spells out: `amqp://h` sets the host, not the vhost or the user.
 * The environment is read when a connection is configured, never at module load.
 */
import { inspect, type InspectOptionsStylized } from 'node:util';

import { envFlag } from './env';
import { ErrorCode, PostageError } from '../errors';
import { getLogger, type Logger } from '../logger';
import type { Transport } from '../transport/types';

/** Connection options accepted by every component (producer, consumer, processor). */
export interface ConnectionOptions {
  /**
   * An `amqp://user:password@host:port/vhost?heartbeat=20` URL. Several brokers may be listed,
   * separated by commas (tried in order on failure). Overrides POSTAGE_URL.
   */
  url?: string;
  /** Broker host. @default POSTAGE_HOST, else `localhost` */
  host?: string;
  /** Broker port. @default POSTAGE_PORT, else 5672 (5671 for amqps) */
  port?: number;
  /** Virtual host. @default POSTAGE_VHOST, else `/` */
  vhost?: string;
  /** User name. @default POSTAGE_USER, else `guest` */
  user?: string;
  /** Password. Never logged. @default POSTAGE_PASSWORD, else `guest` */
  password?: string;
  /**
   * Heartbeat interval in seconds; 0 disables heartbeats. A stalled peer is detected within
   * about two intervals. @default 10
   */
  heartbeat?: number;
  /**
   * Time allowed for the first connection, in ms: endpoints are retried with backoff until it
   * runs out, then open() fails with CONNECTION_FAILED. @default 10_000
   */
  connectTimeout?: number;
  /**
   * Time a publish may wait for the broker's confirm, buffered time included, in ms; then it
   * rejects with CONFIRM_TIMEOUT. @default 30_000
   */
  confirmTimeout?: number;
  /** What a publish does while the connection is down. @default {@link DEFAULT_PUBLISH_BUFFER} */
  publishBuffer?: Partial<PublishBufferOptions>;
  /** Reconnection after an unexpected close. @default {@link DEFAULT_RECONNECT} */
  reconnect?: Partial<ReconnectOptions>;
  /**
   * Log every publish and receive at debug level. @default POSTAGE_DEBUG_MODE: on for `1`,
   * `true`, `yes` or `on` (any case); another value than those or `0`, `false`, `no`, `off` is
   * ignored with a warning
   */
  debug?: boolean;
  /** The logger of this component. @default the process-wide logger ({@link setLogger}) */
  logger?: Logger;
  /** A transport to use instead of the one the URL scheme selects (tests, custom brokers). */
  transport?: Transport;
}

/**
 * The outage buffer: publishes made while disconnected (or blocked by the broker) wait here.
 */
export interface PublishBufferOptions {
  /** Messages held at most; one more rejects with BUFFER_FULL. @default 10_000 */
  maxMessages: number;
  /** Bytes of bodies held at most; one more rejects with BUFFER_FULL. @default 64 MiB */
  maxBytes: number;
  /**
   * `wait`: a publish made while disconnected waits for the reconnection (bounded by
   * confirmTimeout). `fail-fast`: it rejects at once with DISCONNECTED. @default 'wait'
   */
  policy: 'wait' | 'fail-fast';
}

/** Reconnection: exponential backoff with jitter, through the URL list. */
export interface ReconnectOptions {
  /** First delay, in ms. @default 100 */
  initialDelay: number;
  /** Largest delay, in ms. @default 5_000 */
  maxDelay: number;
  /** Each delay is moved by up to this fraction, up or down. @default 0.2 */
  jitter: number;
  /** Attempts before the connection gives up (status `failed`). @default Infinity */
  maxAttempts: number;
}

/** Default outage buffer. */
export const DEFAULT_PUBLISH_BUFFER: Readonly<PublishBufferOptions> = {
  maxMessages: 10_000,
  maxBytes: 64 * 1024 * 1024,
  policy: 'wait',
};

/** Default reconnection: 100 ms doubling to 5 s, +-20 %, forever. */
export const DEFAULT_RECONNECT: Readonly<ReconnectOptions> = {
  initialDelay: 100,
  maxDelay: 5_000,
  jitter: 0.2,
  maxAttempts: Infinity,
};

/** Default confirm timeout in milliseconds. */
export const DEFAULT_CONFIRM_TIMEOUT = 30_000;

/**
 * One broker address, fully resolved. Those {@link resolveConnectionConfig} returns print
 * without their password: `util.inspect`, `JSON.stringify` and `String()` show `***` (or the
 * described endpoint, for `String()`).
 */
export interface Endpoint {
  readonly protocol: 'amqp' | 'amqps' | 'memory';
  readonly host: string;
  readonly port: number;
  readonly vhost: string;
  readonly user: string;
  readonly password: string;
}

/** What a password prints as. */
export const REDACTED = '***';

/**
 * An {@link Endpoint} that never prints its password: the fields are plain (spread and
 * compared like any object), the printing methods live on the prototype.
 */
class ResolvedEndpoint implements Endpoint {
  readonly protocol: Endpoint['protocol'];
  readonly host: string;
  readonly port: number;
  readonly vhost: string;
  readonly user: string;
  readonly password: string;

  constructor(fields: Endpoint) {
    this.protocol = fields.protocol;
    this.host = fields.host;
    this.port = fields.port;
    this.vhost = fields.vhost;
    this.user = fields.user;
    this.password = fields.password;
  }

  toJSON(): Omit<Endpoint, 'password'> & { password: typeof REDACTED } {
    return { ...this, password: REDACTED };
  }

  toString(): string {
    return describeEndpoint(this);
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    return `Endpoint ${show(this.toJSON(), options)}`;
  }
}

/** The result of {@link resolveConnectionConfig}. */
export interface ConnectionConfig {
  readonly endpoints: readonly Endpoint[];
  /** Seconds; 0 disables. */
  readonly heartbeat: number;
  /** Milliseconds. */
  readonly connectTimeout: number;
  /** Milliseconds. */
  readonly confirmTimeout: number;
  readonly publishBuffer: Readonly<PublishBufferOptions>;
  readonly reconnect: Readonly<ReconnectOptions>;
  readonly debug: boolean;
  readonly transport: Transport | undefined;
}

/** Default heartbeat in seconds: a dead peer is noticed within about two intervals. */
export const DEFAULT_HEARTBEAT = 10;
/** Default connect timeout in milliseconds. Without one a black-holed connect hangs. */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;

interface Settings {
  hosts?: Array<{ host: string; port?: number }>;
  protocol?: Endpoint['protocol'];
  port?: number;
  vhost?: string;
  user?: string;
  password?: string;
  heartbeat?: number;
  connectTimeout?: number;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Resolves the connection settings of one component.
 * @param options - explicit options; they win over the environment
 * @param env - the environment to read (default `process.env`)
 */
export function resolveConnectionConfig(
  options: ConnectionOptions = {},
  env: Env = process.env,
): ConnectionConfig {
  // Highest precedence first.
  const sources: Settings[] = [
    fieldSource(options.host, options.port, options.vhost, options.user, options.password, 'option'),
    options.url === undefined ? {} : parseUrlList(options.url, 'the url option'),
    fieldSource(
      nonEmpty(env['POSTAGE_HOST']),
      parsePort(nonEmpty(env['POSTAGE_PORT']), 'POSTAGE_PORT'),
      nonEmpty(env['POSTAGE_VHOST']),
      nonEmpty(env['POSTAGE_USER']),
      env['POSTAGE_PASSWORD'],
      'environment',
    ),
    nonEmpty(env['POSTAGE_URL']) === undefined
      ? {}
      : parseUrlList(env['POSTAGE_URL'] as string, 'POSTAGE_URL'),
  ];
  const pick = <K extends keyof Settings>(key: K): { value: Settings[K] | undefined; rank: number } => {
    for (let rank = 0; rank < sources.length; rank++) {
      const value = sources[rank]?.[key];
      if (value !== undefined) return { value, rank };
    }
    return { value: undefined, rank: sources.length };
  };

  const hosts = pick('hosts');
  const port = pick('port');
  const protocol = pick('protocol').value ?? 'amqp';
  const defaultPort = protocol === 'amqps' ? 5671 : 5672;
  const vhost = pick('vhost').value ?? '/';
  const user = pick('user').value ?? 'guest';
  const password = pick('password').value ?? 'guest';
  const list = hosts.value ?? [{ host: 'localhost' }];
  const endpoints = list.map(
    (entry) =>
      new ResolvedEndpoint({
        protocol,
        host: entry.host,
        // A port set by a more specific source than the one that named the hosts wins.
        port: (port.rank < hosts.rank ? port.value : (entry.port ?? port.value)) ?? defaultPort,
        vhost,
        user,
        password,
      }),
  );

  const heartbeat = options.heartbeat ?? pick('heartbeat').value ?? DEFAULT_HEARTBEAT;
  const connectTimeout = options.connectTimeout ?? pick('connectTimeout').value ?? DEFAULT_CONNECT_TIMEOUT;
  if (!(heartbeat >= 0)) throw invalid(`heartbeat must be >= 0 seconds, got ${heartbeat}`);
  if (!(connectTimeout > 0)) throw invalid(`connectTimeout must be > 0 ms, got ${connectTimeout}`);
  const confirmTimeout = options.confirmTimeout ?? DEFAULT_CONFIRM_TIMEOUT;
  if (!(confirmTimeout > 0)) throw invalid(`confirmTimeout must be > 0 ms, got ${confirmTimeout}`);
  const publishBuffer = { ...DEFAULT_PUBLISH_BUFFER, ...options.publishBuffer };
  if (!(publishBuffer.maxMessages >= 0 && publishBuffer.maxBytes >= 0))
    throw invalid('publishBuffer limits must be >= 0');
  if (publishBuffer.policy !== 'wait' && publishBuffer.policy !== 'fail-fast')
    throw invalid(`publishBuffer.policy must be 'wait' or 'fail-fast', got ${String(publishBuffer.policy)}`);
  const reconnect = { ...DEFAULT_RECONNECT, ...options.reconnect };
  if (!(reconnect.initialDelay > 0 && reconnect.maxDelay >= reconnect.initialDelay))
    throw invalid('reconnect delays must be > 0 with maxDelay >= initialDelay');
  if (!(reconnect.jitter >= 0 && reconnect.jitter < 1)) throw invalid('reconnect.jitter must be in [0, 1)');
  if (!(reconnect.maxAttempts >= 1)) throw invalid('reconnect.maxAttempts must be >= 1');
  return {
    endpoints,
    heartbeat,
    connectTimeout,
    confirmTimeout,
    publishBuffer,
    reconnect,
    debug: options.debug ?? envFlag('POSTAGE_DEBUG_MODE', env, options.logger ?? getLogger()) ?? false,
    transport: options.transport,
  };
}

/** `amqp://user@host:port/vhost`: an endpoint as it may appear in logs (never the password). */
export function describeEndpoint(endpoint: Endpoint): string {
  const vhost = endpoint.vhost === '/' ? '' : encodeURIComponent(endpoint.vhost);
  if (endpoint.protocol === 'memory') return `memory://${endpoint.host}`;
  return `${endpoint.protocol}://${encodeURIComponent(endpoint.user)}@${endpoint.host}:${endpoint.port}/${vhost}`;
}

function fieldSource(
  host: string | undefined,
  port: number | undefined,
  vhost: string | undefined,
  user: string | undefined,
  password: string | undefined,
  origin: string,
): Settings {
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65_536)) {
    throw invalid(`${origin} port must be an integer in 1..65535, got ${port}`);
  }
  const out: Settings = {};
  if (host !== undefined) out.hosts = [{ host }];
  if (port !== undefined) out.port = port;
  if (vhost !== undefined) out.vhost = vhost;
  if (user !== undefined) out.user = user;
  if (password !== undefined) out.password = password;
  return out;
}

function parseUrlList(list: string, origin: string): Settings {
  const parts = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) throw invalid(`${origin} is empty`);
  const parsed = parts.map((p) => parseUrl(p, origin));
  const first = parsed[0] as Settings;
  for (const other of parsed.slice(1)) {
    if (other.protocol !== first.protocol) throw invalid(`${origin} mixes URL schemes`);
  }
  return { ...first, hosts: parsed.flatMap((p) => p.hosts ?? []) };
}

function parseUrl(text: string, origin: string): Settings {
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    // The text may hold a password: do not echo it.
    throw new PostageError(ErrorCode.INVALID_CONFIG, `${origin} is not a valid URL`, {
      cause: redactError(cause),
    });
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (scheme !== 'amqp' && scheme !== 'amqps' && scheme !== 'memory') {
    throw invalid(`${origin} must use amqp://, amqps:// or memory://, got ${scheme}://`);
  }
  const out: Settings = { protocol: scheme };
  if (scheme === 'memory') {
    out.hosts = [{ host: url.hostname || url.pathname.replace(/^\/+/, '') || 'default' }];
    return out;
  }
  if (url.hostname !== '') {
    const entry: { host: string; port?: number } = { host: url.hostname.replace(/^\[(.*)\]$/, '$1') };
    if (url.port !== '') entry.port = Number(url.port);
    out.hosts = [entry];
  }
  if (url.username !== '') out.user = decodeURIComponent(url.username);
  if (url.password !== '') out.password = decodeURIComponent(url.password);
  if (url.pathname.length > 1) out.vhost = decodeURIComponent(url.pathname.slice(1));
  const heartbeat = url.searchParams.get('heartbeat');
  if (heartbeat !== null) out.heartbeat = Number(heartbeat);
  const timeout = url.searchParams.get('connection_timeout');
  if (timeout !== null) out.connectTimeout = Number(timeout);
  return out;
}

function parsePort(text: string | undefined, origin: string): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!(Number.isInteger(port) && port > 0 && port < 65_536))
    throw invalid(`${origin} must be a port number`);
  return port;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function invalid(message: string): PostageError {
  return new PostageError(ErrorCode.INVALID_CONFIG, message);
}

function redactError(cause: unknown): Error {
  return new Error(cause instanceof Error ? cause.name : 'invalid URL');
}
