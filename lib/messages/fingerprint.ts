import os from 'node:os';

import { resolveConnectionConfig } from '../connection/config';

/**
 * The six fields that identify a component on the network. On the wire every field is a
 * string, as in Python postage (a missing name or type is the string `'None'`, which is what
 * Python peers send and compare against).
 */
export interface FingerprintDict {
  name: string;
  type: string;
  pid: string;
  host: string;
  user: string;
  vhost: string;
  /** A fingerprint is any dictionary: peers may add their own string fields. */
  [extra: string]: string;
}

/** The tuple form, in postage's order: (name, type, pid, host, user, vhost). */
export type FingerprintTuple = readonly [string, string, string, string, string, string];

/** Values that can be given to override what a Fingerprint reads from the OS. */
export interface FingerprintOverrides {
  pid?: number | string;
  host?: string;
  user?: string;
  vhost?: string;
}

/**
 * An automatic network fingerprint for a component: name and type are given, pid, host, user and
 * vhost are read from the process **when the fingerprint is created** (so a forked child reports
 * its own pid; postage froze them at import).
 *
 * @example
 * ```ts
 * const fp = new Fingerprint('echo_send', 'application');
 * const producer = new EchoProducer({ fingerprint: fp });
 * fp.asDict(); // { name: 'echo_send', type: 'application', pid: '4242', host: 'vm', user: 'me', vhost: '/' }
 * ```
 */
export class Fingerprint {
  readonly name: string;
  readonly type: string;
  readonly pid: string;
  readonly host: string;
  readonly user: string;
  readonly vhost: string;

  constructor(name?: string | null, type?: string | null, overrides: FingerprintOverrides = {}) {
    this.name = str(name);
    this.type = str(type);
    this.pid = String(overrides.pid ?? process.pid);
    this.host = overrides.host ?? os.hostname();
    this.user = overrides.user ?? currentUser();
    this.vhost = overrides.vhost ?? currentVhost();
  }

  /** The dictionary form that travels in every message. */
  asDict(): FingerprintDict {
    return {
      name: this.name,
      type: this.type,
      pid: this.pid,
      host: this.host,
      user: this.user,
      vhost: this.vhost,
    };
  }

  /** The tuple form: (name, type, pid, host, user, vhost). */
  asTuple(): FingerprintTuple {
    return [this.name, this.type, this.pid, this.host, this.user, this.vhost];
  }

  /** Alias of {@link Fingerprint.asDict} for postage users. */
  as_dict(): FingerprintDict {
    return this.asDict();
  }

  /** Alias of {@link Fingerprint.asTuple} for postage users. */
  as_tuple(): FingerprintTuple {
    return this.asTuple();
  }

  /** JSON form is the dictionary form. */
  toJSON(): FingerprintDict {
    return this.asDict();
  }
}

/** A fingerprint as accepted by producers and processors: an instance or any (partial) dictionary. */
export type FingerprintLike = Fingerprint | Readonly<Record<string, unknown>>;

/**
 * Normalises any fingerprint-like value to a dictionary of strings (non-string values are
 * turned into strings, as postage's `str()` did).
 * @internal
 */
export function fingerprintDict(value: FingerprintLike | undefined): Record<string, string> {
  if (value === undefined) return {};
  if (value instanceof Fingerprint) return value.asDict();
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v !== undefined) out[key] = typeof v === 'string' ? v : str(v);
  }
  return out;
}

function str(value: unknown): string {
  if (value === undefined || value === null) return 'None';
  if (typeof value === 'string') return value;
  if (typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry (some containers): fall back to the environment.
    return process.env['USER'] ?? process.env['LOGNAME'] ?? String(process.getuid?.() ?? 'unknown');
  }
}

function currentVhost(): string {
  // The vhost a component would connect to with no explicit options (POSTAGE_VHOST, POSTAGE_URL).
  try {
    return resolveConnectionConfig().endpoints[0]?.vhost ?? '/';
  } catch {
    return '/';
  }
}
