/**
 * The postage envelope (the wire format, identical to Python postage's dictionary) and its
 * ajv schemas, compiled once at module load and used as type guards.
 */
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';

import { ErrorCode, ValidationError } from '../errors';

/** `message` marks fire-and-forget messages, `rpc` marks calls that expect a reply. */
export const Category = { message: 'message', rpc: 'rpc' } as const;
/** A message category. */
export type Category = (typeof Category)[keyof typeof Category];

/** The three kinds of result a reply can carry. */
export const ResultType = { success: 'success', error: 'error', exception: 'exception' } as const;
/** A result kind. */
export type ResultType = (typeof ResultType)[keyof typeof ResultType];

/** The dictionary form of every postage message, exactly as it travels on the wire. */
export interface MessageBody<C = Record<string, unknown>> {
  type: string;
  /** Postage allows a null name (a handler registered with no name matches it). */
  name: string | null;
  category: Category;
  version: string;
  fingerprint: Record<string, string>;
  content: C;
  _reserved: Record<string, unknown>;
}

/** The content of a result message. */
export interface ResultContent {
  type: ResultType;
  value: unknown;
  message: string;
}

/**
 * What a receiver accepts. `version`, `fingerprint` and `_reserved` may be absent (foreign
 * producers); `fingerprint` may hold non-string values, which are kept as they are. Exported for
 * the spec that holds the hand-written check ({@link isWellFormedEnvelope}) to it.
 * @internal
 */
export const envelopeSchema = {
  type: 'object',
  required: ['type', 'name', 'category', 'content'],
  properties: {
    type: { type: 'string' },
    name: { type: ['string', 'null'] },
    category: { enum: [Category.message, Category.rpc] },
    version: { type: 'string' },
    fingerprint: { type: 'object' },
    content: { type: 'object' },
    _reserved: { type: 'object' },
  },
} as const;

const resultContentSchema = {
  type: 'object',
  required: ['type', 'message'],
  properties: {
    type: { enum: [ResultType.success, ResultType.error, ResultType.exception] },
    message: { type: ['string', 'null'] },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
const envelopeValidator: ValidateFunction = ajv.compile(envelopeSchema);
const resultValidator: ValidateFunction = ajv.compile(resultContentSchema);

/** A received envelope: the wire fields that may be missing are optional. */
export type ReceivedBody = Omit<MessageBody, 'version' | 'fingerprint' | '_reserved'> &
  Partial<Pick<MessageBody, 'version' | 'fingerprint' | '_reserved'>>;

/** True when `value` is a postage envelope. */
export function isEnvelope(value: unknown): value is ReceivedBody {
  return isWellFormedEnvelope(value) || envelopeValidator(value) === true;
}

/**
 * The envelope schema written out by hand: every received message goes through it, and ajv's
 * generated code plus its error bookkeeping cost more than these few typeof checks. It accepts
 * exactly what {@link envelopeSchema} accepts (spec/unit/envelope-check.spec.ts compares the
 * verdicts); ajv still runs on a rejection, so the error lists the schema's complaints.
 * @internal
 */
export function isWellFormedEnvelope(value: unknown): boolean {
  if (!isJsonObject(value)) return false;
  const body = value as Record<string, unknown>;
  const name = body['name'];
  const category = body['category'];
  const version = body['version'];
  const fingerprint = body['fingerprint'];
  const reserved = body['_reserved'];
  return (
    typeof body['type'] === 'string' &&
    (typeof name === 'string' || name === null) &&
    (category === Category.message || category === Category.rpc) &&
    isJsonObject(body['content']) &&
    (version === undefined || typeof version === 'string') &&
    (fingerprint === undefined || isJsonObject(fingerprint)) &&
    (reserved === undefined || isJsonObject(reserved))
  );
}

/** ajv's `type: 'object'`: not null, not an array. */
function isJsonObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `value` is the content of a result message. */
export function isResultContent(value: unknown): value is ResultContent {
  return resultValidator(value) === true;
}

/**
 * Checks that a decoded body is a postage envelope.
 * @throws {@link ValidationError} with code INVALID_MESSAGE, listing what is wrong
 */
export function assertEnvelope(value: unknown): asserts value is ReceivedBody {
  if (isWellFormedEnvelope(value)) return;
  if (envelopeValidator(value) !== true) {
    const issues = formatIssues(envelopeValidator.errors);
    throw new ValidationError(ErrorCode.INVALID_MESSAGE, `not a postage message: ${issues.join('; ')}`, {
      issues,
    });
  }
}

/**
 * Compiles a user schema once (e.g. for a handler's content) and returns a guard that throws a
 * {@link ValidationError} with code INVALID_MESSAGE and the schema's complaints.
 */
export function compileSchema<T = unknown>(schema: object): (value: unknown) => asserts value is T {
  const validate = ajv.compile(schema);
  return (value: unknown): asserts value is T => {
    if (validate(value) !== true) {
      const issues = formatIssues(validate.errors);
      throw new ValidationError(
        ErrorCode.INVALID_MESSAGE,
        `content does not match its schema: ${issues.join('; ')}`,
        {
          issues,
        },
      );
    }
  };
}

function formatIssues(errors: ErrorObject[] | null | undefined): string[] {
  if (!errors || errors.length === 0) return ['not an object'];
  return errors.map(
    (e) => `${e.instancePath === '' ? '(body)' : e.instancePath} ${e.message ?? 'is invalid'}`,
  );
}
