/**
 * A replaceable logger. postage never prints directly: everything goes through the logger of the
 * component (an option) or the process-wide default ({@link setLogger}).
 */

/** Structured fields attached to a log line. Values must never hold credentials. */
export type LogFields = Readonly<Record<string, unknown>>;

/** The logger interface postage writes to. Any object with these four methods fits (pino, winston, console). */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** The levels of {@link ConsoleLogger}, least severe first. */
export const LogLevel = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
/** A level name of {@link LogLevel}. */
export type LogLevel = keyof typeof LogLevel;

/**
 * The default logger: one line per event on stderr, `postage <level> <message> <json fields>`.
 * Debug lines appear only at level `debug` (POSTAGE_DEBUG_MODE=true sets it).
 */
export class ConsoleLogger implements Logger {
  constructor(public level: LogLevel = 'info') {}

  debug(message: string, fields?: LogFields): void {
    this.write('debug', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.write('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.write('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.write('error', message, fields);
  }

  private write(level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void {
    if (LogLevel[level] < LogLevel[this.level]) return;
    const tail = fields === undefined ? '' : ` ${safeJson(fields)}`;
    process.stderr.write(`postage ${level} ${message}${tail}\n`);
  }
}

function safeJson(fields: LogFields): string {
  try {
    return JSON.stringify(fields, (_key, value: unknown) => {
      if (value instanceof Error) return { name: value.name, message: value.message };
      if (typeof value === 'bigint') return value.toString();
      return value;
    });
  } catch {
    return '[unserialisable fields]';
  }
}

let defaultLogger: Logger | undefined;

/** Replaces the process-wide default logger (used by components built without a `logger` option). */
export function setLogger(logger: Logger): void {
  defaultLogger = logger;
}

/**
 * The process-wide default logger. Created on first use so that POSTAGE_DEBUG_MODE is read
 * when the program runs, not when the module loads.
 */
export function getLogger(): Logger {
  if (defaultLogger === undefined) {
    defaultLogger = new ConsoleLogger(
      process.env['POSTAGE_DEBUG_MODE']?.toLowerCase() === 'true' ? 'debug' : 'info',
    );
  }
  return defaultLogger;
}
