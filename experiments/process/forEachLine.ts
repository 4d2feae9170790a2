/**
 * Streams a file line by line without holding it in memory: log files can be gigabytes. A file
 * whose name ends in .gz is decompressed on the way (experiments/data.sh can compress logs).
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';

/** Reading in large chunks keeps the per-chunk overhead negligible next to parsing. */
const READ_CHUNK_BYTES = 1 << 20;
/** No valid log line comes close; a longer one (a binary file, no newlines) is skipped, not buffered. */
export const MAX_LINE_CHARS = 4096;

/**
 * Calls `onLine` for every line (without its '\n'; a final line without one is included).
 * Lines longer than MAX_LINE_CHARS are skipped. Resolves to the number skipped that way.
 * Bytes are decoded as latin1: the logs are ASCII, and latin1 maps any byte, so garbage input
 * yields malformed lines rather than a decoding error.
 */
export async function forEachLine(path: string, onLine: (line: string) => void): Promise<number> {
  let carry = '';
  let skippingOverlong = false;
  let overlongLines = 0;
  const file = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  const source = path.endsWith('.gz') ? file.pipe(createGunzip({ chunkSize: READ_CHUNK_BYTES })) : file;
  for await (const chunk of source) {
    const text = carry + (chunk as Buffer).toString('latin1');
    let start = 0;
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      if (skippingOverlong) skippingOverlong = false;
      else if (newline - start > MAX_LINE_CHARS) overlongLines++;
      else onLine(text.slice(start, newline));
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    carry = text.slice(start);
    if (carry.length > MAX_LINE_CHARS) {
      // Drop the overlong line's text now; its end is found in a later chunk.
      if (!skippingOverlong) overlongLines++;
      skippingOverlong = true;
      carry = '';
    }
  }
  if (carry.length > 0 && !skippingOverlong) onLine(carry);
  return overlongLines;
}
