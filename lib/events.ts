import { EventEmitter } from 'node:events';

import type { PostageError } from './errors';
import type { Logger } from './logger';

/** Events every postage emitter has: `error` always carries a {@link PostageError}. */
export interface ErrorEvents {
  error: [error: PostageError];
}

/** The names of the events of an event map. */
export type EventName<T> = keyof T & string;

/** A listener of event `K` of the event map `T`: it gets the event's arguments. */
export type EventListener<T extends Record<keyof T, unknown[]>, K extends keyof T> = (...args: T[K]) => void;

/**
 * An EventEmitter typed by an event map (event name to argument tuple), whose `error` event
 * never crashes the process: with no listener the error is logged instead of thrown (Node's
 * default would throw, which is how rascal and amqplib users lose processes).
 *
 * The listener methods are declared here rather than taken from `EventEmitter<T>`, so the
 * typing does not depend on the version of `@types/node` a project has.
 *
 * @example
 * ```ts
 * const connection = new Connection({ url: 'memory://' });
 * connection.on('status', (status) => console.log(status.type)); // status: ConnectionStatus
 * connection.once('error', (error) => console.log(error.code)); //   error: PostageError
 * ```
 */
export class SafeEmitter<T extends Record<keyof T, unknown[]> & ErrorEvents> extends EventEmitter {
  /** Where this component (and those built on it) log. */
  constructor(readonly logger: Logger) {
    super();
  }

  /** Adds a listener of `event`. */
  override on<K extends EventName<T>>(event: K, listener: EventListener<T, K>): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  /** Alias of {@link on}. */
  override addListener<K extends EventName<T>>(event: K, listener: EventListener<T, K>): this {
    return super.addListener(event, listener as (...args: unknown[]) => void);
  }

  /** Adds a listener of the next `event` only. */
  override once<K extends EventName<T>>(event: K, listener: EventListener<T, K>): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  /** Adds a listener of `event`, called before those already added. */
  override prependListener<K extends EventName<T>>(event: K, listener: EventListener<T, K>): this {
    return super.prependListener(event, listener as (...args: unknown[]) => void);
  }

  /** Adds a listener of the next `event` only, called before those already added. */
  override prependOnceListener<K extends EventName<T>>(event: K, listener: EventListener<T, K>): this {
    return super.prependOnceListener(event, listener as (...args: unknown[]) => void);
  }

  /** Removes a listener of `event`. */
  override off<K extends EventName<T>>(event: K, listener: EventListener<T, K>): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }

  /** Alias of {@link off}. */
  override removeListener<K extends EventName<T>>(event: K, listener: EventListener<T, K>): this {
    return super.removeListener(event, listener as (...args: unknown[]) => void);
  }

  /** Calls the listeners of `event` with `args`; true when it had listeners. */
  override emit<K extends EventName<T>>(event: K, ...args: T[K]): boolean {
    return super.emit(event, ...args);
  }

  /** Emits `error` to listeners, or logs it when there are none. */
  protected reportError(error: PostageError, context: string): void {
    if (this.listenerCount('error') > 0) {
      super.emit('error', error);
    } else {
      this.logger.error({ code: error.code, err: error }, `${context}: ${error.message}`);
    }
  }
}
