/**
 * Writing log lines straight into bytes: decimal integers and copied fields, with no string built
 * per line. At peak the benchmark client writes three lines per command (order, exec and detail
 * logs, ~1 M lines a second in all), and a string per line with its copy into a Buffer cost it more
 * than its signature checks.
 */

const ZERO = 0x30;
const MINUS = 0x2d;

/** The most bytes writeInteger writes: a sign and the 16 digits of a safe integer. */
export const MAX_INTEGER_BYTES = 17;

/** Writes `value` (a safe integer) in decimal at `at`; returns the offset after it. */
export function writeInteger(out: Uint8Array, at: number, value: number): number {
  if (!Number.isSafeInteger(value)) throw new RangeError(`expected a safe integer, got ${value}`);
  if (value < 0) {
    out[at] = MINUS;
    return writeDigits(out, at + 1, -value, 1);
  }
  return writeDigits(out, at, value, 1);
}

/** Below this, digits come from 32-bit integer arithmetic (the fast path of the JIT); above it a
 *  value is split in two such parts, since `%` and `/` on doubles are several times slower. */
const INT31 = 2 ** 31;
const LOW_PART = 1e8;
const LOW_PART_DIGITS = 8;

/** Writes `value` (a safe integer ≥ 0) in decimal with at least `width` digits (zeros in front). */
export function writeDigits(out: Uint8Array, at: number, value: number, width: number): number {
  if (value < INT31) return writeSmall(out, at, value, width);
  // Math.floor(value / 1e8) may be off by one where the quotient rounds; the remainder shows it.
  let high = Math.floor(value / LOW_PART);
  let low = value - high * LOW_PART;
  if (low < 0) {
    high--;
    low += LOW_PART;
  } else if (low >= LOW_PART) {
    high++;
    low -= LOW_PART;
  }
  // A safe integer's high part is below 2^53 / 1e8 < 2^31.
  return writeSmall(out, writeSmall(out, at, high, width - LOW_PART_DIGITS), low, LOW_PART_DIGITS);
}

/** writeDigits for 0 ≤ value < 2^31. */
function writeSmall(out: Uint8Array, at: number, value: number, width: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = (rest / 10) | 0) digits++;
  if (digits < width) digits = width;
  const end = at + digits;
  let rest = value;
  for (let i = end - 1; i >= at; i--) {
    const quotient = (rest / 10) | 0;
    out[i] = ZERO + rest - quotient * 10;
    rest = quotient;
  }
  return end;
}

/** Copies `bytes` to `at`; returns the offset after them. */
export function writeBytes(out: Uint8Array, at: number, bytes: Uint8Array): number {
  out.set(bytes, at);
  return at + bytes.length;
}
