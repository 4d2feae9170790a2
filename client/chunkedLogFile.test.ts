/**
 * A log file takes lines as text and as bytes, in any interleaving, and the file holds them in the
 * order of the calls — across chunk hand-offs and backpressure.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkedLogFile } from './chunkedLogFile.js';

let dir: string | null = null;
afterEach(async () => {
  if (dir !== null) await rm(dir, { recursive: true, force: true });
  dir = null;
});

describe('ChunkedLogFile', () => {
  it('keeps the order of text and byte appends, across chunks', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pompe-chunked-'));
    const file = await ChunkedLogFile.open(join(dir, 'log'), { chunkBytes: 100 });
    const expected: string[] = [];
    for (let i = 0; i < 500; i++) {
      const line = `line ${i} ${'x'.repeat(i % 37)}\n`;
      expected.push(line);
      if (i % 3 === 0) file.appendBytes(Buffer.from(line, 'latin1'), 1);
      else file.append(line, 1);
    }
    await file.close();
    expect(file.linesAccepted).toBe(500);
    expect(await readFile(join(dir, 'log'), 'latin1')).toBe(expected.join(''));
  });

  it('refuses byte appends once closing, and counts them', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pompe-chunked-'));
    const file = await ChunkedLogFile.open(join(dir, 'log'));
    file.appendBytes(Buffer.from('a\n'), 1);
    const closed = file.close();
    expect(file.appendBytes(Buffer.from('b\n'), 1)).toBe(false);
    await closed;
    expect(file.linesRefused).toBe(1);
    expect(await readFile(join(dir, 'log'), 'latin1')).toBe('a\n');
  });
});
