/**
 * Reading postage's environment variables: boolean flags and choices, with one rule for all of
 * them, and a warning (never silence) for a value postage does not understand.
 */

/** Where a warning about a bad value goes (any postage Logger). */
export interface EnvWarnings {
  warn(fields: Readonly<Record<string, unknown>>, message: string): void;
}

/** Values that turn a flag on, and off (compared without case, trimmed). */
const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** Each bad value is reported once per process, not once per component. */
const warned = new Set<string>();

function warnOnce(to: EnvWarnings, name: string, value: string, expected: string): void {
  const key = `${name}=${value}`;
  if (warned.has(key)) return;
  warned.add(key);
  to.warn({ variable: name, value, expected }, `${name}=${JSON.stringify(value)} is not understood: ignored`);
}

/**
 * A boolean environment variable: true for `1`, `true`, `yes`, `on`; false for `0`, `false`,
 * `no`, `off` (any case); undefined when unset or empty. Anything else is undefined too, with a
 * warning (once per process and value).
 */
export function envFlag(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
  warnings: EnvWarnings,
): boolean | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (value === '') return undefined;
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  warnOnce(warnings, name, raw, '1, true, yes, on or 0, false, no, off');
  return undefined;
}

/**
 * An environment variable that names one of `choices` (any case); undefined when unset or
 * empty, and for anything else, with a warning (once per process and value).
 */
export function envChoice<T extends string>(
  name: string,
  choices: readonly T[],
  env: Readonly<Record<string, string | undefined>>,
  warnings: EnvWarnings,
): T | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (value === '') return undefined;
  const found = choices.find((choice) => choice === value);
  if (found !== undefined) return found;
  warnOnce(warnings, name, raw, choices.join(' or '));
  return undefined;
}
