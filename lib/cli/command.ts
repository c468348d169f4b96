/**
 * The contract of a `postage` command: what it is called, what it takes, and how it runs. The
 * command line is a thin layer over the library: a command parses its arguments, calls the
 * public API and turns the outcome into output and an exit code.
 */
import type { ConnectionOptions } from '..';

/** Exit codes of `postage` (sysexits.h where one fits). */
export const Exit = {
  /** Success. */
  ok: 0,
  /** The command ran and failed (an error, an RPC error or exception, a timeout, a message left). */
  failure: 1,
  /** The command line is wrong: unknown command or option, missing or bad argument. */
  usage: 2,
  /** No component answered within the timeout (EX_UNAVAILABLE). */
  noReply: 69,
} as const;
/** One of {@link Exit}'s codes. */
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** A wrong command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Where a command writes, and what it reads of its environment. */
export interface CliIo {
  /** Writes text to standard output as it is (add the newline). */
  readonly stdout: (text: string) => void;
  /** Writes text to standard error as it is (add the newline). */
  readonly stderr: (text: string) => void;
  /** The environment: POSTAGE_* settings. */
  readonly env: NodeJS.ProcessEnv;
}

/** What every command gets: the global options, resolved, and its output. */
export interface CliContext {
  readonly io: CliIo;
  /** `--json`: one JSON document on standard output instead of lines for people. */
  readonly json: boolean;
  /** `--timeout SECONDS` in milliseconds, when given. */
  readonly timeoutMs: number | undefined;
  /**
   * Connection options for the library: `url` from `--url` when given, the environment
   * otherwise (the library reads POSTAGE_URL and the other POSTAGE_* variables itself).
   */
  readonly connection: ConnectionOptions;
  /** A line for people on standard output (nothing in `--json` mode). */
  line(text: string): void;
  /** A line on standard error (also in `--json` mode), credentials redacted. */
  warn(text: string): void;
  /** The `--json` document on standard output (nothing otherwise). */
  document(value: unknown): void;
}

/** An option of a command, as `util.parseArgs` takes it, with its help text. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** What the option does, for `--help`. */
  readonly help: string;
  /** The placeholder of a string option's value in `--help`, e.g. `N`. @default 'VALUE' */
  readonly value?: string;
}

/** What a command's `run` gets from the command line. */
export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
}

/** A `postage` command, or a group of subcommands (`postage dlq list`). */
export interface Command {
  /** The word that selects it. */
  readonly name: string;
  /** One line for `postage --help`. */
  readonly summary: string;
  /** The arguments after the name, e.g. `EXCHANGE KEY NAME [JSON]`. */
  readonly usage: string;
  /** More lines for `postage NAME --help`. */
  readonly details?: readonly string[];
  /** Its own options (the global ones are always accepted). */
  readonly options?: Readonly<Record<string, OptionSpec>>;
  /** Fewest and most positional arguments. @default any number */
  readonly positionals?: { readonly min: number; readonly max: number };
  /** Subcommands: the next word selects one; `run` is then not called. */
  readonly subcommands?: readonly Command[];
  /** Runs the command and returns its exit code. Throws {@link UsageError} for a bad command line. */
  run?(context: CliContext, args: ParsedArgs): Promise<number>;
}

/** A string option's value (the last one when given twice), or undefined. */
export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  if (Array.isArray(value)) {
    const last = value[value.length - 1];
    return typeof last === 'string' ? last : undefined;
  }
  return typeof value === 'string' ? value : undefined;
}

/** Every value of a repeatable string option. */
export function stringOptions(args: ParsedArgs, name: string): string[] {
  const value = args.values[name];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return typeof value === 'string' ? [value] : [];
}

/** A boolean option's value. */
export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** A non-negative integer option (e.g. `--limit N`), or the default; a bad value is a usage error. */
export function integerOption(args: ParsedArgs, name: string, fallback: number): number {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0)
    throw new UsageError(`--${name} takes a whole number, not '${text}'`);
  return value;
}

/** Parses a JSON argument (parameters of a message); a bad one is a usage error naming it. */
export function jsonArgument(text: string | undefined, what: string): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}
