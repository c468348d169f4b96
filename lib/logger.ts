/**
 * A replaceable logger. postage never prints directly: everything goes through the logger of the
 * component (an option) or the process-wide default ({@link setLogger}).
 *
 * The calling convention is the Node ecosystem's (pino, bunyan): `(fields, message)`, or
 * `(message)` alone. Fields carry the error under `err` (pino's and bunyan's serializers read
 * that key), and the queue, handler, exchange... of the event.
 */
import { envFlag } from './connection/env';

/** Structured fields attached to a log line. Values must never hold credentials. */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * One level of a {@link Logger}: `log(message)` or `log(fields, message)`, as pino's and
 * bunyan's methods are called.
 */
export interface LogMethod {
  (message: string): void;
  (fields: LogFields, message: string): void;
}

/**
 * The logger interface postage writes to: pino and bunyan loggers fit as they are
 * (`setLogger(pino())`); a message-first logger (winston, console) fits through
 * {@link messageFirstLogger}.
 */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}

/** A logger called `(message, meta)`, as winston's are. */
export interface MessageFirstTarget {
  debug(message: string, meta?: LogFields): unknown;
  info(message: string, meta?: LogFields): unknown;
  warn(message: string, meta?: LogFields): unknown;
  error(message: string, meta?: LogFields): unknown;
}

/**
 * Adapts a message-first logger (winston, `console`) to postage's fields-first {@link Logger}:
 * `(fields, message)` becomes `target.level(message, fields)`.
 *
 * @example
 * ```ts
 * setLogger(messageFirstLogger(winston.createLogger({ transports: [new winston.transports.Console()] })));
 * ```
 */
export function messageFirstLogger(target: MessageFirstTarget): Logger {
  const level =
    (name: keyof MessageFirstTarget): LogMethod =>
    (first: LogFields | string, message?: string): void => {
      if (typeof first === 'string') target[name](first);
      else target[name](message ?? '', first);
    };
  return { debug: level('debug'), info: level('info'), warn: level('warn'), error: level('error') };
}

/** The levels of {@link ConsoleLogger}, least severe first. */
export const LogLevel = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
/** A level name of {@link LogLevel}. */
export type LogLevel = keyof typeof LogLevel;

/**
 * The default logger: one line per event on stderr, `postage <level> <message> <json fields>`
 * (an error field prints as its name, message and code). Debug lines appear only at level
 * `debug` (POSTAGE_DEBUG_MODE=1 sets it).
 */
export class ConsoleLogger implements Logger {
  constructor(public level: LogLevel = 'info') {}

  debug(first: LogFields | string, message?: string): void {
    this.write('debug', first, message);
  }
  info(first: LogFields | string, message?: string): void {
    this.write('info', first, message);
  }
  warn(first: LogFields | string, message?: string): void {
    this.write('warn', first, message);
  }
  error(first: LogFields | string, message?: string): void {
    this.write('error', first, message);
  }

  private write(level: Exclude<LogLevel, 'silent'>, first: LogFields | string, message?: string): void {
    if (LogLevel[level] < LogLevel[this.level]) return;
    const text = typeof first === 'string' ? first : (message ?? '');
    const tail = typeof first === 'string' ? '' : ` ${safeJson(first)}`;
    process.stderr.write(`postage ${level} ${text}${tail}\n`);
  }
}

function safeJson(fields: LogFields): string {
  try {
    return JSON.stringify(fields, (_key, value: unknown) => {
      if (value instanceof Error) {
        const code = (value as { code?: unknown }).code;
        return code === undefined
          ? { name: value.name, message: value.message }
          : { name: value.name, message: value.message, code };
      }
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
    const created = new ConsoleLogger();
    defaultLogger = created;
    const debug = envFlag('POSTAGE_DEBUG_MODE', process.env, created);
    if (debug === true) created.level = 'debug';
  }
  return defaultLogger;
}
