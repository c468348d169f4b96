import { EventEmitter } from 'node:events';

import type { PostageError } from './errors';
import type { Logger } from './logger';

/** Events every postage emitter has: `error` always carries a {@link PostageError}. */
export interface ErrorEvents {
  error: [error: PostageError];
}

/**
 * A typed EventEmitter whose `error` event never crashes the process: with no listener the
 * error is logged instead of thrown (Node's default would throw, which is how rascal and
 * amqplib users lose processes).
 * @internal
 */
export class SafeEmitter<T extends Record<keyof T, unknown[]> & ErrorEvents> extends EventEmitter<T> {
  /** Where this component (and those built on it) log. */
  constructor(readonly logger: Logger) {
    super();
  }

  /** Emits `error` to listeners, or logs it when there are none. */
  protected reportError(error: PostageError, context: string): void {
    // The generic EventEmitter cannot see that 'error' is a key of every T.
    const self = this as unknown as EventEmitter;
    if (self.listenerCount('error') > 0) {
      self.emit('error', error);
    } else {
      this.logger.error(`${context}: ${error.message}`, { code: error.code });
    }
  }
}
