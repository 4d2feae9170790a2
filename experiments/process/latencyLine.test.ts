import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLogLine } from '../../client/latencyLog.js';
import { parseLatencyLine } from './latencyLine.js';

const NOON_US = new Date(2026, 10, 20, 12, 0, 0).getTime() * 1000;

describe('parseLatencyLine', () => {
  it('reads a Pompe-HS line as local time and µs latency', () => {
    expect(parseLatencyLine('2026-11-20 12:00:00.123456 [pompe info] 0.002481')).toEqual({
      completionWallUs: NOON_US + 123_456,
      latencyUs: 2481,
    });
  });

  it('accepts the HotStuff baseline tag, CRLF endings and fewer fraction digits', () => {
    expect(parseLatencyLine('2026-11-20 12:00:00.5 [hotstuff info] 1.5\r')).toEqual({ completionWallUs: NOON_US + 500_000, latencyUs: 1_500_000 });
  });

  it('rejects malformed lines', () => {
    for (const line of [
      '',
      'garbage',
      '2026-11-20 12:00:00.123456 [pompe info]',
      '2026-11-20 12:00:00.123456 [pompe info] abc',
      '2026-11-20 12:00:00.123456 [pompe info] -0.1',
      '2026-11-20 12:00:00.123456 [pompe info] 0x10',
      '2026-13-20 12:00:00.123456 [pompe info] 0.1',
      '2026-02-31 12:00:00.123456 [pompe info] 0.1',
      '2026-11-20 25:00:00.123456 [pompe info] 0.1',
      '20 12:00:00.123456 [pompe info] 0.1',
    ]) {
      expect(parseLatencyLine(line), line).toBeUndefined();
    }
  });

  it('reads back exactly what the client writer formats', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4e15 }), fc.integer({ min: 0, max: 1e11 }), (wallUs, latencyUs) => {
        expect(parseLatencyLine(formatLogLine(wallUs, latencyUs))).toEqual({ completionWallUs: wallUs, latencyUs });
      }),
    );
  });
});
