import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forEachLine, MAX_LINE_CHARS } from './forEachLine.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pompe-lines-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function linesOf(content: string | Buffer): Promise<{ lines: string[]; overlong: number }> {
  const path = join(dir, 'f.log');
  await writeFile(path, content);
  const lines: string[] = [];
  const overlong = await forEachLine(path, (line) => lines.push(line));
  return { lines, overlong };
}

describe('forEachLine', () => {
  it('reads a gzip-compressed log (name ending in .gz) as its text', async () => {
    const path = join(dir, 'client0.exec.log.gz');
    const text = Array.from({ length: 50_000 }, (_, i) => `line ${i}`).join('\n');
    await writeFile(path, gzipSync(text));
    const lines: string[] = [];
    expect(await forEachLine(path, (line) => lines.push(line))).toBe(0);
    expect(lines).toEqual(text.split('\n'));
  });

  it('splits lines, including a last line without a newline', async () => {
    expect(await linesOf('a\nb\n\nc')).toEqual({ lines: ['a', 'b', '', 'c'], overlong: 0 });
  });

  it('joins lines split across read chunks (files larger than one 1 MiB read)', async () => {
    const lines = Array.from({ length: 200_000 }, (_, i) => `line ${i}`);
    const result = await linesOf(`${lines.join('\n')}\n`);
    expect(result.lines).toEqual(lines);
  });

  it('skips and counts overlong lines (a binary file) without buffering them', async () => {
    const huge = 'x'.repeat(3 * 1024 * 1024); // longer than a read chunk
    const long = 'y'.repeat(MAX_LINE_CHARS + 1);
    expect(await linesOf(`a\n${huge}\nb\n${long}\nc\n${huge}`)).toEqual({ lines: ['a', 'b', 'c'], overlong: 3 });
  });
});
