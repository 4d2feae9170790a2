import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, isLogLevel } from './logging.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('createLogger', () => {
  it('writes JSON lines to a file (creating its directory) and flushes everything on close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pompe-log-'));
    dirs.push(dir);
    const file = join(dir, 'nested', 'replica-0.log');
    const logger = createLogger({ name: 'replica-0', level: 'debug', file });
    for (let i = 0; i < 1000; i++) logger.info({ i }, 'line');
    logger.debug('last');
    logger.trace('below the level');
    await logger.close();
    await logger.close(); // idempotent
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; msg: string; i?: number });
    expect(lines).toHaveLength(1001);
    expect(lines[0]).toMatchObject({ name: 'replica-0', msg: 'line', i: 0 });
    expect(lines[1000]!.msg).toBe('last');
  });

  it('logs to stdout without a file; close resolves', async () => {
    const logger = createLogger({ name: 'x', level: 'silent' });
    logger.info('not shown');
    await logger.close();
    expect(isLogLevel('warn')).toBe(true);
    expect(isLogLevel('loud')).toBe(false);
  });
});
