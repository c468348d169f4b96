import { ErrorCode, ValidationError } from './errors';

/**
 * Turns message bodies into bytes and back. Replaceable per producer and per processor
 * (option `encoder`); every component of a system must use the same one.
 */
export interface Encoder {
  /** The AMQP content type set on every published message. */
  readonly contentType: string;
  /** Encodes a body. Throws a {@link ValidationError} with code ENCODE_FAILED when it cannot. */
  encode(value: unknown): Buffer;
  /** Decodes bytes. Throws a {@link ValidationError} with code DECODE_FAILED when it cannot. */
  decode(data: Buffer): unknown;
}

/**
 * The default encoder: JSON in UTF-8, content type `application/json` (postage's JsonEncoder).
 *
 * @example
 * ```ts
 * const bytes = jsonEncoder.encode({ a: 1 });
 * jsonEncoder.decode(bytes); // { a: 1 }
 * ```
 */
export class JsonEncoder implements Encoder {
  readonly contentType = 'application/json';

  encode(value: unknown): Buffer {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (cause) {
      throw new ValidationError(ErrorCode.ENCODE_FAILED, `cannot encode as JSON: ${describe(cause)}`, {
        cause,
      });
    }
    if (text === undefined) {
      throw new ValidationError(ErrorCode.ENCODE_FAILED, `cannot encode ${typeof value} as JSON`);
    }
    return Buffer.from(text, 'utf8');
  }

  decode(data: Buffer): unknown {
    try {
      return JSON.parse(data.toString('utf8'));
    } catch (cause) {
      throw new ValidationError(
        ErrorCode.DECODE_FAILED,
        `body is not valid JSON (${data.length} bytes): ${describe(cause)}`,
        { cause },
      );
    }
  }
}

/** The shared default {@link JsonEncoder}. */
export const jsonEncoder: Encoder = new JsonEncoder();

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
