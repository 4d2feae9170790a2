/**
 * Parses one latency log line in the Pompe-HS format:
 *
 *   2026-11-20 12:00:00.123456 [pompe info] 0.002481
 *
 * local wall-clock completion time, a bracketed tag (Pompe-HS writes `[pompe info]` or
 * `[hotstuff info]`; any tag is accepted), then the latency in seconds (digits, optional fraction).
 *
 * Written as a character scanner rather than a regular expression because logs run to hundreds of
 * millions of lines: this is the process script's hot loop, and the scanner is several times faster.
 */

export interface LatencyLine {
  /** Completion time, wall-clock µs since the epoch (the line's local time, read in this machine's zone). */
  readonly completionWallUs: number;
  readonly latencyUs: number;
}

const ZERO = 48;
const DASH = 45;
const COLON = 58;
const SPACE = 32;
const DOT = 46;
const OPEN_BRACKET = 91;
const TAB = 9;
const CR = 13;
/** Characters "YYYY-MM-DD HH:MM:SS". */
const SECOND_TEXT_LENGTH = 19;
/** More integer digits than this is a latency of decades: a damaged line, not a measurement. */
const MAX_LATENCY_INTEGER_DIGITS = 9;
/** Multiplier turning the first k (1..6) fraction digits of a second into µs. */
const FRACTION_TO_US = [0, 100_000, 10_000, 1000, 100, 10, 1];
/** Multiplier turning the first k (1..9) fraction digits of a second into ns (a table: Math.pow is slow here). */
const FRACTION_TO_NS = [0, 1e8, 1e7, 1e6, 1e5, 1e4, 1000, 100, 10, 1];

/** Where "YYYY-MM-DD HH:MM:SS" has its separators. */
const SECOND_TEXT_SEPARATORS: ReadonlyArray<readonly [number, number]> = [[4, DASH], [7, DASH], [10, SPACE], [13, COLON], [16, COLON]];

const isDigit = (code: number): boolean => code >= ZERO && code <= ZERO + 9;

/** The integer written by `count` digits at `start`, or −1 if any is not a digit. */
function digitsAt(line: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const code = line.charCodeAt(i);
    if (!isDigit(code)) return -1;
    value = value * 10 + (code - ZERO);
  }
  return value;
}

/**
 * Turning a local date into epoch time is the expensive part, and consecutive lines mostly share
 * their second, so the last conversion is cached by the text of the second.
 */
let cachedSecondText = '';
let cachedSecondMs = 0;

/** Epoch ms of the line's "YYYY-MM-DD HH:MM:SS" read as local time, or undefined if malformed. */
function localSecondMs(line: string): number | undefined {
  if (cachedSecondText !== '' && line.startsWith(cachedSecondText)) return cachedSecondMs;
  if (line.length < SECOND_TEXT_LENGTH) return undefined;
  if (!SECOND_TEXT_SEPARATORS.every(([at, code]) => line.charCodeAt(at) === code)) return undefined;
  const year = digitsAt(line, 0, 4);
  const month = digitsAt(line, 5, 2);
  const day = digitsAt(line, 8, 2);
  const hour = digitsAt(line, 11, 2);
  const minute = digitsAt(line, 14, 2);
  const second = digitsAt(line, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return undefined;
  const date = new Date(year, month - 1, day, hour, minute, second);
  // The Date constructor rolls overflow forward (Feb 31 → Mar 3); such a line is malformed.
  if (date.getDate() !== day) return undefined;
  cachedSecondText = line.slice(0, SECOND_TEXT_LENGTH);
  cachedSecondMs = date.getTime();
  return cachedSecondMs;
}

/** The parsed line, or undefined if it is malformed. */
export function parseLatencyLine(line: string): LatencyLine | undefined {
  const secondMs = localSecondMs(line);
  if (secondMs === undefined) return undefined;
  let pos = SECOND_TEXT_LENGTH;

  // Fraction of the second: Pompe-HS writes 6 digits; fewer are scaled up, beyond µs ignored.
  let fractionUs = 0;
  if (line.charCodeAt(pos) === DOT) {
    pos++;
    let digits = 0;
    for (let code = line.charCodeAt(pos); isDigit(code); code = line.charCodeAt(++pos)) {
      if (digits < 6) fractionUs = fractionUs * 10 + (code - ZERO);
      digits++;
    }
    if (digits === 0) return undefined;
    fractionUs *= FRACTION_TO_US[Math.min(digits, 6)] as number;
  }

  // " [tag]" then one or more spaces.
  if (line.charCodeAt(pos) !== SPACE || line.charCodeAt(pos + 1) !== OPEN_BRACKET) return undefined;
  const tagEnd = line.indexOf(']', pos + 2);
  if (tagEnd < 0 || line.charCodeAt(tagEnd + 1) !== SPACE) return undefined;
  pos = tagEnd + 1;
  while (line.charCodeAt(pos) === SPACE) pos++;

  // Latency in seconds: integer digits, then optionally '.' and fraction digits (kept to the ns).
  let seconds = 0;
  let integerDigits = 0;
  for (let code = line.charCodeAt(pos); isDigit(code); code = line.charCodeAt(++pos)) {
    seconds = seconds * 10 + (code - ZERO);
    integerDigits++;
  }
  if (integerDigits === 0 || integerDigits > MAX_LATENCY_INTEGER_DIGITS) return undefined;
  let fractionNs = 0;
  if (line.charCodeAt(pos) === DOT) {
    pos++;
    let digits = 0;
    for (let code = line.charCodeAt(pos); isDigit(code); code = line.charCodeAt(++pos)) {
      if (digits < 9) fractionNs = fractionNs * 10 + (code - ZERO);
      digits++;
    }
    if (digits === 0) return undefined;
    fractionNs *= FRACTION_TO_NS[Math.min(digits, 9)] as number;
  }

  // Only trailing whitespace may follow (CRLF files, padded lines).
  for (; pos < line.length; pos++) {
    const code = line.charCodeAt(pos);
    if (code !== SPACE && code !== TAB && code !== CR) return undefined;
  }
  return { completionWallUs: secondMs * 1000 + fractionUs, latencyUs: seconds * 1e6 + fractionNs / 1000 };
}
