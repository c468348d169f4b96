/**
 * Message translators: turn a foreign body (plain JSON from a producer that does not speak
 * postage) into a postage message, so a processor can consume queues other programs fill.
 */
import { ErrorCode, ValidationError } from '../errors';
import { Message } from '../messages/message';
import { assertEnvelope, type ReceivedBody } from '../messages/schema';
import type { MessageFields, MessageProperties } from '../transport/types';

/** What a translator knows about the delivery besides the body. */
export interface TranslationContext {
  readonly queue: string;
  readonly fields: MessageFields;
  readonly properties: MessageProperties;
}

/**
 * Turns a decoded foreign body into a postage message (a Message instance or an envelope
 * object). Throwing, or returning something that is not an envelope, dead-letters the message
 * with reason `TRANSLATION_FAILED`.
 *
 * @example
 * ```ts
 * // A legacy producer publishes {"order": 42, "action": "ship"} on 'orders'.
 * const translators = { orders: (body: any) => new MessageCommand(body.action, { order: body.order }) };
 * ```
 */
export type MessageTranslator = (body: unknown, context: TranslationContext) => Message<unknown> | unknown;

/** Runs a translator and checks what it returns. @internal */
export function translate(
  translator: MessageTranslator,
  body: unknown,
  context: TranslationContext,
): ReceivedBody {
  let translated: unknown;
  try {
    translated = translator(body, context);
  } catch (err) {
    throw new ValidationError(
      ErrorCode.TRANSLATION_FAILED,
      `the translator of queue '${context.queue}' failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const envelope = translated instanceof Message ? translated.body : translated;
  try {
    assertEnvelope(envelope);
  } catch (err) {
    throw new ValidationError(
      ErrorCode.TRANSLATION_FAILED,
      `the translator of queue '${context.queue}' returned no postage message`,
      { cause: err },
    );
  }
  return envelope;
}
