/**
 * Strict readers for JSON files written by people (cluster config, key files): every field is
 * checked for type and range, unknown fields are rejected (a typo must not be silently ignored),
 * and every problem is reported with the path of the field it is about. Problems are collected,
 * so one run of a tool lists every mistake in a file, not just the first.
 */
import { fromHex } from './bytes.js';
import { err, ErrorCode, ok, type Result } from './errors.js';

export type JsonObject = Readonly<Record<string, unknown>>;

/** Problems listed in one error message; more are summarised as a count. */
const MAX_LISTED_PROBLEMS = 20;

export class Problems {
  private readonly messages: string[] = [];
  private unlisted = 0;

  /** `what` names the file kind in the final message, e.g. "cluster config". */
  constructor(private readonly what: string) {}

  add(message: string): void {
    if (this.messages.length < MAX_LISTED_PROBLEMS) this.messages.push(message);
    else this.unlisted++;
  }

  get empty(): boolean {
    return this.messages.length === 0;
  }

  toError(): Result<never> {
    const more = this.unlisted > 0 ? `; and ${this.unlisted} more` : '';
    return err(ErrorCode.InvalidConfig, `invalid ${this.what}: ${this.messages.join('; ')}${more}`);
  }
}

/** JSON.parse for bounded text from a file; never throws. */
export function parseJsonText(text: string, what: string, maxChars: number): Result<unknown> {
  if (text.length > maxChars) {
    return err(ErrorCode.InvalidConfig, `invalid ${what}: ${text.length} characters, more than the limit of ${maxChars}`);
  }
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (e) {
    return err(ErrorCode.InvalidConfig, `invalid ${what}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

export function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

const isPlainObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const fieldPath = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/**
 * An object with exactly the given fields: the required ones present, no others. Returns it even
 * when fields are missing or unknown (those are reported), so the known fields still get checked.
 */
export function readObject(
  value: unknown,
  path: string,
  required: readonly string[],
  optional: readonly string[],
  problems: Problems,
): JsonObject | undefined {
  const name = path === '' ? 'the top level' : path;
  if (!isPlainObject(value)) {
    problems.add(`${name} must be an object, got ${describeJsonType(value)}`);
    return undefined;
  }
  for (const key of required) {
    if (!Object.hasOwn(value, key)) problems.add(`${fieldPath(path, key)} is missing`);
  }
  for (const key of Object.keys(value)) {
    if (!required.includes(key) && !optional.includes(key)) {
      problems.add(`${fieldPath(path, key)} is not a known field (known: ${[...required, ...optional].join(', ')})`);
    }
  }
  return value;
}

/** The field's value, or undefined when absent (readObject already reported a missing one). */
const field = (obj: JsonObject, key: string): unknown => (Object.hasOwn(obj, key) ? obj[key] : undefined);

/** A safe integer in [min, max]. */
export function readInteger(obj: JsonObject, key: string, path: string, min: number, max: number, problems: Problems): number | undefined {
  if (!Object.hasOwn(obj, key)) return undefined;
  const value = field(obj, key);
  const name = fieldPath(path, key);
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    problems.add(`${name} must be an integer, got ${describeJsonType(value)}`);
    return undefined;
  }
  if (value < min || value > max) {
    problems.add(`${name} must be between ${min} and ${max}, got ${value}`);
    return undefined;
  }
  return value;
}

export function readBoolean(obj: JsonObject, key: string, path: string, problems: Problems): boolean | undefined {
  if (!Object.hasOwn(obj, key)) return undefined;
  const value = field(obj, key);
  if (typeof value !== 'boolean') {
    problems.add(`${fieldPath(path, key)} must be true or false, got ${describeJsonType(value)}`);
    return undefined;
  }
  return value;
}

/** A string of 1..maxChars characters. */
export function readString(obj: JsonObject, key: string, path: string, maxChars: number, problems: Problems): string | undefined {
  if (!Object.hasOwn(obj, key)) return undefined;
  const value = field(obj, key);
  const name = fieldPath(path, key);
  if (typeof value !== 'string') {
    problems.add(`${name} must be a string, got ${describeJsonType(value)}`);
    return undefined;
  }
  if (value.length === 0 || value.length > maxChars) {
    problems.add(`${name} must be 1 to ${maxChars} characters, got ${value.length}`);
    return undefined;
  }
  return value;
}

/** A hex string of exactly `bytes` bytes. */
export function readHex(obj: JsonObject, key: string, path: string, bytes: number, problems: Problems): Uint8Array | undefined {
  if (!Object.hasOwn(obj, key)) return undefined;
  const value = field(obj, key);
  const name = fieldPath(path, key);
  if (typeof value !== 'string') {
    problems.add(`${name} must be a hex string, got ${describeJsonType(value)}`);
    return undefined;
  }
  const decoded = fromHex(value);
  if (decoded === null) {
    problems.add(`${name} is not valid hex (an even number of characters 0-9, a-f)`);
    return undefined;
  }
  if (decoded.length !== bytes) {
    problems.add(`${name} must be ${bytes} bytes (${2 * bytes} hex characters), got ${decoded.length} bytes`);
    return undefined;
  }
  return decoded;
}
