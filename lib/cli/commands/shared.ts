/**
 * What several commands share: a producer for one exchange the command line names, and the
 * fingerprint the command line sends as.
 */
import { Exchange, Fingerprint, GenericProducer, type ExchangeKey } from '../..';
import type { CliContext } from '../command';

/** The fingerprint of messages the command line sends: name `postage-cli`, type `cli`. */
export function cliFingerprint(): Fingerprint {
  return new Fingerprint('postage-cli', 'cli');
}

/**
 * The (exchange, key) pair of a command line: the exchange is only checked (passive), never
 * declared, so the command cannot create or change one; `''` is the default exchange.
 */
export function target(exchange: string, key: string): ExchangeKey {
  return [Exchange.define({ name: exchange, passive: true }), key];
}

/** A producer on the command line's broker; the caller closes it. */
export function producer(
  context: CliContext,
  extra: { rpcReplyMode?: 'direct' | 'per-call' } = {},
): GenericProducer {
  return new GenericProducer({
    ...context.connection,
    ...(context.timeoutMs === undefined ? {} : { connectTimeout: context.timeoutMs }),
    fingerprint: cliFingerprint(),
    ...extra,
  });
}
