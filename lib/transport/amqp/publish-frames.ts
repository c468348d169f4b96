/**
 * Encodes a whole basic.publish (method frame, content header frame, one body frame) into one
 * buffer, following AMQP 0-9-1 section 4.2 and RabbitMQ's class and property tables.
 *
 * Why: amqplib 2 builds every publish from three zero-filled `Buffer.alloc` calls (method,
 * header, body) plus a BigInt for the body size, then copies them into a fourth buffer. A
 * `Buffer.alloc` above 64 bytes is an off-heap allocation (~1.2 us here, and work for the garbage
 * collector later); a message id alone takes the header frame over that line. Encoding the
 * publish once into a pooled `Buffer.allocUnsafe` writes the same bytes with one allocation.
 *
 * The bytes are exactly amqplib's (spec/unit/publish-frames.spec.ts compares them), including
 * the empty headers table amqplib always sends. Anything this encoder does not cover returns
 * undefined and the caller falls back to amqplib: headers, CC/BCC, a string longer than 255
 * bytes, a value of an unexpected type, or a body that needs more than one frame.
 */
import type { PublishOptions } from '../types';

const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_END = 0xce;
/** Frame type (1), channel (2), payload size (4). */
const FRAME_HEADER_SIZE = 7;
/** The frame header plus the frame-end octet. */
export const FRAME_OVERHEAD = FRAME_HEADER_SIZE + 1;
/** Class 60 (basic), method 40 (publish). */
const BASIC_PUBLISH = (60 << 16) | 40;
/** Class 60 (basic), weight 0. */
const BASIC_HEADER = 60 << 16;
/** Property flags, in the order of the property list. */
const FLAG = {
  contentType: 0x8000,
  contentEncoding: 0x4000,
  headers: 0x2000,
  deliveryMode: 0x1000,
  priority: 0x0800,
  correlationId: 0x0400,
  replyTo: 0x0200,
  expiration: 0x0100,
  messageId: 0x0080,
  timestamp: 0x0040,
  type: 0x0020,
  userId: 0x0010,
  appId: 0x0008,
} as const;

/**
 * Bytes of a short string, or -1 when the value is not one amqplib would accept as such
 * (then the caller falls back, and amqplib raises its own error).
 */
function shortLength(value: unknown): number {
  // UTF-8 never takes fewer bytes than UTF-16 units: a longer string cannot fit.
  if (typeof value !== 'string' || value.length > 255) return -1;
  const length = byteLengthSmall(value);
  return length < 256 ? length : -1;
}

/** UTF-8 length of a short string without a call into the runtime when it is ASCII. */
function byteLengthSmall(value: string): number {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f) return Buffer.byteLength(value);
  }
  return value.length;
}

/** 1 + the bytes of a short string; 0 when absent; NaN when not one (the caller falls back). */
function shortSize(value: unknown): number {
  if (value == null) return 0;
  const length = shortLength(value);
  return length < 0 ? Number.NaN : 1 + length;
}

function isOctet(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 255;
}

/**
 * The frames of one publish on `channel`, or undefined when this encoder does not cover the
 * options (see the file's comment).
 * @param maxBody - the largest body frame payload: the connection's frameMax minus 8
 */
export function encodePublish(
  channel: number,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: PublishOptions | undefined,
  maxBody: number,
): Buffer | undefined {
  if (!Buffer.isBuffer(content) || content.length > maxBody || content.length === 0) return undefined;
  const exchangeLength = shortLength(exchange);
  const keyLength = shortLength(routingKey);
  if (exchangeLength < 0 || keyLength < 0) return undefined;
  const o = (options ?? {}) as PublishOptions & {
    headers?: unknown;
    CC?: unknown;
    BCC?: unknown;
    timestamp?: unknown;
    expiration?: unknown;
  };
  if (o.headers != null || o.CC !== undefined || o.BCC !== undefined) return undefined;

  // Sizes first (the buffer is allocated once), checking each value as amqplib would. Each
  // property is read once, by name (a loop over names was a third slower).
  const contentType = o.contentType;
  const contentEncoding = o.contentEncoding;
  const correlationId = o.correlationId;
  const replyTo = o.replyTo;
  // amqplib turns a numeric expiration into its string.
  const expiration = o.expiration == null ? undefined : String(o.expiration);
  const messageId = o.messageId;
  const type = o.type;
  const userId = o.userId;
  const appId = o.appId;
  const priority = o.priority;
  const timestamp = o.timestamp;
  let deliveryMode: number | undefined;
  if (o.persistent !== undefined) deliveryMode = o.persistent ? 2 : 1;
  else if (typeof o.deliveryMode === 'number') deliveryMode = o.deliveryMode;
  else if (o.deliveryMode) deliveryMode = 2;
  if (deliveryMode !== undefined && !isOctet(deliveryMode)) return undefined;
  if (priority != null && !isOctet(priority)) return undefined;
  if (
    timestamp != null &&
    !(typeof timestamp === 'number' && Number.isSafeInteger(timestamp) && timestamp >= 0)
  ) {
    return undefined;
  }
  const strings =
    shortSize(contentType) +
    shortSize(contentEncoding) +
    shortSize(correlationId) +
    shortSize(replyTo) +
    shortSize(expiration) +
    shortSize(messageId) +
    shortSize(type) +
    shortSize(userId) +
    shortSize(appId);
  if (!(strings >= 0)) return undefined; // NaN: one of them is not a short string
  // Header payload: class, weight, body size (12) + flags (2) + the empty headers table (4).
  const propertiesSize =
    18 +
    strings +
    (deliveryMode === undefined ? 0 : 1) +
    (priority == null ? 0 : 1) +
    (timestamp == null ? 0 : 8);

  // Method payload: class+method (4), ticket (2), exchange, routing key, flag bits (1).
  const methodSize = 4 + 2 + 1 + exchangeLength + 1 + keyLength + 1;
  const total =
    FRAME_OVERHEAD + methodSize + FRAME_OVERHEAD + propertiesSize + FRAME_OVERHEAD + content.length;
  // Below 4 KiB this comes from Node's shared pool: no allocation of its own.
  const out = Buffer.allocUnsafe(total);

  // Method frame.
  let at = 0;
  out[at++] = FRAME_METHOD;
  out.writeUInt16BE(channel, at);
  out.writeUInt32BE(methodSize, at + 2);
  at += 6;
  out.writeUInt32BE(BASIC_PUBLISH, at);
  at += 4;
  out[at++] = 0; // ticket
  out[at++] = 0;
  at = writeShort(out, at, exchange);
  at = writeShort(out, at, routingKey);
  out[at++] = o.mandatory ? 1 : 0; // immediate is never set: RabbitMQ refuses it
  out[at++] = FRAME_END;

  // Content header frame.
  out[at++] = FRAME_HEADER;
  out.writeUInt16BE(channel, at);
  out.writeUInt32BE(propertiesSize, at + 2);
  at += 6;
  out.writeUInt32BE(BASIC_HEADER, at);
  out.writeUInt32BE(0, at + 4); // body size, high word (the body fits one frame)
  out.writeUInt32BE(content.length, at + 8);
  at += 12;
  const flagsAt = at;
  at += 2;
  let flags = FLAG.headers;
  if (contentType != null) {
    flags |= FLAG.contentType;
    at = writeShort(out, at, contentType);
  }
  if (contentEncoding != null) {
    flags |= FLAG.contentEncoding;
    at = writeShort(out, at, contentEncoding);
  }
  out.writeUInt32BE(0, at); // the empty headers table
  at += 4;
  if (deliveryMode !== undefined) {
    flags |= FLAG.deliveryMode;
    out[at++] = deliveryMode;
  }
  if (priority != null) {
    flags |= FLAG.priority;
    out[at++] = priority;
  }
  if (correlationId != null) {
    flags |= FLAG.correlationId;
    at = writeShort(out, at, correlationId);
  }
  if (replyTo != null) {
    flags |= FLAG.replyTo;
    at = writeShort(out, at, replyTo);
  }
  if (expiration !== undefined) {
    flags |= FLAG.expiration;
    at = writeShort(out, at, expiration);
  }
  if (messageId != null) {
    flags |= FLAG.messageId;
    at = writeShort(out, at, messageId);
  }
  if (typeof timestamp === 'number') {
    flags |= FLAG.timestamp;
    out.writeUInt32BE(Math.floor(timestamp / 0x1_0000_0000), at);
    out.writeUInt32BE(timestamp >>> 0, at + 4);
    at += 8;
  }
  if (type != null) {
    flags |= FLAG.type;
    at = writeShort(out, at, type);
  }
  if (userId != null) {
    flags |= FLAG.userId;
    at = writeShort(out, at, userId);
  }
  if (appId != null) {
    flags |= FLAG.appId;
    at = writeShort(out, at, appId);
  }
  out.writeUInt16BE(flags, flagsAt);
  out[at++] = FRAME_END;

  // Body frame.
  out[at++] = FRAME_BODY;
  out.writeUInt16BE(channel, at);
  out.writeUInt32BE(content.length, at + 2);
  at += 6;
  at += content.copy(out, at);
  out[at] = FRAME_END;
  return out;
}

/** Writes a short string (length octet, then UTF-8) and returns the next offset. */
function writeShort(out: Buffer, at: number, value: string): number {
  // ASCII (names, ids, content types) is copied in JavaScript: cheaper than a call into the
  // runtime's UTF-8 encoder for a few dozen characters.
  const length = value.length;
  let i = 0;
  for (; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code > 0x7f) break;
    out[at + 1 + i] = code;
  }
  if (i === length) {
    out[at] = length;
    return at + 1 + length;
  }
  const written = out.write(value, at + 1, 'utf8');
  out[at] = written;
  return at + 1 + written;
}
