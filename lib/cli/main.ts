/**
 * `postage`, the command line: global options, the choice of command, help, and the mapping of
 * outcomes to exit codes. Each command lives in `commands/` and uses the library's public API.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { PostageError, redactCredentials } from '../errors';
import { commands } from './commands';
import {
  Exit,
  UsageError,
  type CliContext,
  type CliIo,
  type Command,
  type OptionSpec,
  type ParsedArgs,
} from './command';

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  url: {
    type: 'string',
    value: 'URL',
    help: 'the broker (else POSTAGE_URL and the other POSTAGE_* variables)',
  },
  json: { type: 'boolean', help: 'machine-readable output: one JSON document on standard output' },
  timeout: {
    type: 'string',
    value: 'SECONDS',
    help: 'how long to wait for replies (each command says its default)',
  },
  help: { type: 'boolean', short: 'h', help: 'show help' },
  version: { type: 'boolean', help: 'print the version of postage' },
};

/** The standard streams and environment of this process. */
export function processIo(): CliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
  };
}

/**
 * Runs `postage` with these arguments (without `node` and the script) and returns the exit code.
 * It never throws and never calls `process.exit`.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let chosen: Chosen | undefined;
  try {
    chosen = choose(argv);
    const args = parse(chosen, argv);
    if (args.values['version'] === true) {
      io.stdout(`${version()}\n`);
      return Exit.ok;
    }
    const command = chosen.command;
    if (args.values['help'] === true) {
      io.stdout(help(chosen.path, command));
      return Exit.ok;
    }
    if (command === undefined) {
      io.stderr(help([], undefined));
      return Exit.usage;
    }
    if (command.run === undefined) {
      throw new UsageError(`'${chosen.path.join(' ')}' needs a subcommand`);
    }
    checkPositionals(command, args.positionals);
    return await command.run(context(io, args), args);
  } catch (err) {
    return report(err, io, chosen);
  }
}

interface Chosen {
  /** The words that chose the command, e.g. ['dlq', 'list']. */
  readonly path: readonly string[];
  /** The command, or undefined for the top level. */
  readonly command: Command | undefined;
  /** Indices in argv of those words. */
  readonly indices: ReadonlySet<number>;
}

/** Finds the command (and subcommand) among the arguments, whatever global options come first. */
function choose(argv: readonly string[]): Chosen {
  const { tokens } = parseArgs({
    args: [...argv],
    options: toParseArgs(GLOBAL_OPTIONS),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const words: string[] = [];
  const indices = new Set<number>();
  let level: readonly Command[] | undefined = commands;
  let command: Command | undefined;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') break;
    if (token.kind !== 'positional' || level === undefined) {
      if (token.kind === 'positional') break;
      continue;
    }
    const next: Command | undefined = level.find((candidate) => candidate.name === token.value);
    if (next === undefined) {
      if (command === undefined) throw new UsageError(`unknown command '${token.value}'`);
      if (command.run === undefined) {
        throw new UsageError(`unknown subcommand '${token.value}' of '${words.join(' ')}'`);
      }
      break;
    }
    command = next;
    words.push(token.value);
    indices.add(token.index);
    level = next.subcommands;
  }
  return { path: words, command, indices };
}

/** Parses the command's own and the global options, strictly. */
function parse(chosen: Chosen, argv: readonly string[]): ParsedArgs {
  const args = argv.filter((_, index) => !chosen.indices.has(index));
  const options = { ...GLOBAL_OPTIONS, ...chosen.command?.options };
  try {
    const { values, positionals } = parseArgs({
      args,
      options: toParseArgs(options),
      strict: true,
      allowPositionals: true,
    });
    return { values, positionals };
  } catch (err) {
    throw new UsageError(
      err instanceof Error ? err.message.replace(/\. To specify a positional.*$/s, '') : String(err),
    );
  }
}

function toParseArgs(options: Readonly<Record<string, OptionSpec>>): NonNullable<ParseArgsConfig['options']> {
  const result: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(options)) {
    result[name] = {
      type: spec.type,
      ...(spec.short === undefined ? {} : { short: spec.short }),
      ...(spec.multiple === undefined ? {} : { multiple: spec.multiple }),
    };
  }
  return result;
}

function checkPositionals(command: Command, positionals: readonly string[]): void {
  const bounds = command.positionals;
  if (bounds === undefined) return;
  if (positionals.length < bounds.min) throw new UsageError('missing arguments');
  if (positionals.length > bounds.max) {
    throw new UsageError(`unexpected argument '${positionals[bounds.max] ?? ''}'`);
  }
}

function context(io: CliIo, args: ParsedArgs): CliContext {
  const json = args.values['json'] === true;
  const url = args.values['url'];
  return {
    io,
    json,
    timeoutMs: timeout(args.values['timeout']),
    connection: typeof url === 'string' ? { url } : {},
    line: (text) => {
      if (!json) io.stdout(`${text}\n`);
    },
    warn: (text) => io.stderr(`${redactCredentials(text)}\n`),
    document: (value) => {
      if (json) io.stdout(`${JSON.stringify(value, null, 2)}\n`);
    },
  };
}

function timeout(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !(seconds > 0) || !Number.isFinite(seconds)) {
    throw new UsageError(`--timeout takes a positive number of seconds, not '${String(value)}'`);
  }
  return Math.round(seconds * 1000);
}

/** Prints a failure and returns its exit code: 2 for the command line, 1 for the rest. */
function report(err: unknown, io: CliIo, chosen: Chosen | undefined): number {
  if (err instanceof UsageError) {
    const where = chosen?.path.length ? ` ${chosen.path.join(' ')}` : '';
    io.stderr(`postage${where}: ${err.message}\n`);
    io.stderr(`Run 'postage${where} --help' for usage.\n`);
    return Exit.usage;
  }
  const text =
    err instanceof PostageError
      ? `${err.code}: ${err.message}`
      : err instanceof Error
        ? err.message
        : String(err);
  io.stderr(`postage: ${redactCredentials(text)}\n`);
  return Exit.failure;
}

/** The version of the installed postage. */
export function version(): string {
  // lib/cli/ and dist/cli/ are both two levels below the package root.
  const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? 'unknown';
}

/** The help text of the top level, or of one command. */
export function help(words: readonly string[], command: Command | undefined): string {
  const lines: string[] = [];
  if (command === undefined) {
    lines.push('usage: postage [--url URL] [--json] [--timeout SECONDS] COMMAND [ARGS...]', '');
    lines.push('Send, call, inspect and operate postage components over AMQP.', '', 'Commands:');
    lines.push(...table(commands.map((c) => [`${c.name} ${c.usage}`.trim(), c.summary])));
    lines.push('', 'Global options:', ...optionLines(GLOBAL_OPTIONS));
    lines.push('', "Run 'postage COMMAND --help' for a command's arguments and options.");
    lines.push('Exit codes: 0 success, 1 failure, 2 usage error, 69 no component answered.');
  } else {
    lines.push(`usage: postage ${words.join(' ')} ${command.usage}`.trimEnd(), '', command.summary);
    if (command.details !== undefined) lines.push('', ...command.details);
    if (command.subcommands !== undefined) {
      lines.push('', 'Subcommands:');
      lines.push(...table(command.subcommands.map((c) => [`${c.name} ${c.usage}`.trim(), c.summary])));
    }
    if (command.options !== undefined && Object.keys(command.options).length > 0) {
      lines.push('', 'Options:', ...optionLines(command.options));
    }
    lines.push('', 'Global options: --url URL, --json, --timeout SECONDS (see postage --help).');
  }
  return `${lines.join('\n')}\n`;
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  return table(
    Object.entries(options).map(([name, spec]) => {
      const short = spec.short === undefined ? '' : `-${spec.short}, `;
      const value = spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : '';
      return [`${short}--${name}${value}`, spec.help];
    }),
  );
}

function table(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}
