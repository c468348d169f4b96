import type { LogFields, Logger } from '../../lib';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: LogFields | undefined;
}

/** A logger that keeps every line, for specs that assert on what was logged. */
export class MemoryLogger implements Logger {
  readonly lines: LogLine[] = [];

  debug(first: LogFields | string, message?: string): void {
    this.record('debug', first, message);
  }
  info(first: LogFields | string, message?: string): void {
    this.record('info', first, message);
  }
  warn(first: LogFields | string, message?: string): void {
    this.record('warn', first, message);
  }
  error(first: LogFields | string, message?: string): void {
    this.record('error', first, message);
  }

  private record(level: LogLine['level'], first: LogFields | string, message?: string): void {
    if (typeof first === 'string') this.lines.push({ level, message: first, fields: undefined });
    else this.lines.push({ level, message: message ?? '', fields: first });
  }

  /** Every line as text (message and JSON fields), to search for leaks. */
  text(): string {
    return this.lines
      .map((l) => `${l.level} ${l.message} ${JSON.stringify(l.fields ?? {}, errorsAsText)}`)
      .join('\n');
  }

  at(level: LogLine['level']): LogLine[] {
    return this.lines.filter((l) => l.level === level);
  }
}

/** Errors in fields print with their message and stack (a leak may hide in either). */
function errorsAsText(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}
