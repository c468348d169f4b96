import { ErrorCode, ValidationError } from '../errors';

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
      // toString() without arguments is Buffer's UTF-8 fast path (no encoding lookup).
      return JSON.parse(data.toString());
    } catch (cause) {
      throw new ValidationError(
        ErrorCode.DECODE_FAILED,
        `body is not valid JSON (${data.length} bytes): ${describe(cause)}`,
        { cause },
      );
    }
  }
}

/** The keys of an envelope, in the order postage writes them. */
const ENVELOPE_KEYS = ['type', 'name', 'category', 'version', 'fingerprint', 'content', '_reserved'] as const;

/**
 * Encodes an envelope whose fingerprint is already serialised, as JSON.stringify would have
 * (same bytes): a producer sends thousands of messages with the same fingerprint, and
 * serialising it again is a third of the encode. Returns undefined when the body is not a plain
 * seven-key envelope in postage's key order; the caller then encodes it the ordinary way.
 * @internal
 */
export function encodeEnvelopeJson(
  body: Readonly<Record<string, unknown>>,
  fingerprint: unknown,
  fingerprintJson: string,
): Buffer | undefined {
  let i = 0;
  for (const key in body) {
    if (key !== ENVELOPE_KEYS[i]) return undefined;
    i++;
  }
  if (i !== ENVELOPE_KEYS.length || body['fingerprint'] !== fingerprint) return undefined;
  const { type, name, category, version, content, _reserved } = body;
  if (typeof type !== 'string' || typeof category !== 'string' || typeof version !== 'string')
    return undefined;
  if (typeof name !== 'string' && name !== null) return undefined;
  let contentJson: string | undefined;
  let reservedJson: string | undefined;
  try {
    contentJson = JSON.stringify(content);
    reservedJson = isEmptyPlainObject(_reserved) ? '{}' : JSON.stringify(_reserved);
  } catch {
    return undefined; // the ordinary path raises the typed error
  }
  if (contentJson === undefined || reservedJson === undefined) return undefined;
  const head = envelopeHead(type, name, category, version, fingerprintJson);
  const text =
    reservedJson === '{}'
      ? `${head}${contentJson},"_reserved":{}}`
      : `${head}${contentJson},"_reserved":${reservedJson}}`;
  return Buffer.from(text, 'utf8');
}

/**
 * The text of an envelope up to its content, `{"type":…,"fingerprint":…,"content":`, kept for the
 * last fields seen: a producer sending one command over and over writes the same head each time,
 * and one string instead of a dozen pieces to join is less garbage per message.
 */
let lastHead = {
  type: '',
  name: '' as string | null,
  category: '',
  version: '',
  fingerprintJson: '',
  text: '',
};

function envelopeHead(
  type: string,
  name: string | null,
  category: string,
  version: string,
  fingerprintJson: string,
): string {
  const last = lastHead;
  if (
    last.type === type &&
    last.name === name &&
    last.category === category &&
    last.version === version &&
    last.fingerprintJson === fingerprintJson &&
    last.text !== ''
  ) {
    return last.text;
  }
  const text =
    `{"type":${quoted(type)},"name":${name === null ? 'null' : quoted(name)},"category":${quoted(category)},` +
    `"version":${quoted(version)},"fingerprint":${fingerprintJson},"content":`;
  // Flattened once here (V8 flattens a joined string to slice it), not on every message.
  const flat = `.${text}`.slice(1);
  lastHead = { type, name, category, version, fingerprintJson, text: flat };
  return flat;
}

/**
 * JSON string literals of the few strings every envelope repeats (type, name, category,
 * version): a producer sends the same handful over and over. Bounded, as names can be many.
 */
const QUOTED = new Map<string, string>();
const QUOTED_MAX = 1024;

function quoted(value: string): string {
  let json = QUOTED.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    if (QUOTED.size >= QUOTED_MAX) QUOTED.clear();
    if (value.length <= 64) QUOTED.set(value, json);
  }
  return json;
}

/** `{}` with no toJSON: what `_reserved` almost always is. */
function isEmptyPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype)
    return false;
  if ('toJSON' in value) return false;
  for (const _key in value) return false;
  return true;
}

/**
 * Set to `true` on a publish's options by a producer whose content buffer was just encoded and is
 * never written again: the in-process broker may then keep that buffer instead of copying it.
 * Any other caller's buffer is copied on publish, so that changing it afterwards cannot change
 * what was sent (RabbitMQ's semantics; amqplib writes it to the socket). A symbol, so amqplib
 * and the message properties never see it.
 * @internal
 */
export const CONTENT_HANDED_OVER: unique symbol = Symbol('postage.contentHandedOver');

/** The shared default {@link JsonEncoder}. */
export const jsonEncoder: Encoder = new JsonEncoder();

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
