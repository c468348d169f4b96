/**
 * What a synchronous throw of a channel's `publish` means, for the publisher and the RPC client.
 * @internal
 */
import { ChannelError, ErrorCode, ValidationError, type PostageError } from '../errors';

/**
 * amqplib throws its IllegalOperationError once the channel or the connection is closing (the
 * in-process broker uses the same words): the publish may go again on another channel, so
 * CHANNEL_CLOSED. Anything else is the encoder refusing this message, permanent whatever the
 * channel: MESSAGE_TOO_LARGE for a size limit (a RangeError for a header table over amqplib's
 * 64 KiB encoding buffer), ENCODE_FAILED otherwise (e.g. a TypeError for a value it cannot
 * encode, a `messageId` over 255 bytes).
 * @internal
 */
export function publishThrowError(err: unknown, exchange: string): PostageError {
  const where = `publish to exchange '${exchange}'`;
  const raw = err instanceof Error ? err : new Error(String(err));
  if (
    raw.name === 'IllegalOperationError' ||
    /^(channel|connection) (closed|closing|ended)/i.test(raw.message)
  ) {
    return new ChannelError(ErrorCode.CHANNEL_CLOSED, `${where}: ${raw.message}`, { cause: raw });
  }
  if (raw instanceof RangeError && /exceeds/i.test(raw.message)) {
    return new ValidationError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `${where}: the message's properties do not fit the client's frame encoder (${raw.message})`,
      { cause: raw },
    );
  }
  return new ValidationError(
    ErrorCode.ENCODE_FAILED,
    `${where}: the message cannot be encoded (${raw.message})`,
    {
      cause: raw,
    },
  );
}
