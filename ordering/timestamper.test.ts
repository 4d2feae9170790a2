/**
 * Timestamps are strictly increasing per replica, and across restarts: a restarted replica starts
 * above its last durable reservation, whatever its clock says.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Timestamper, TS_RESERVATION_US } from './timestamper.js';

const FIRST = 1_005_000;

describe('Timestamper', () => {
  it('follows the clock and stays strictly increasing when the clock stalls or goes back', () => {
    const t = new Timestamper(FIRST, 0);
    const given = [2_000_000, 2_000_000, 1_500_000, 2_000_010, 2_000_011].map((now) => t.next(now).ts);
    expect(given).toEqual([2_000_000, 2_000_001, 2_000_002, 2_000_010, 2_000_011]);
  });

  it('never gives a timestamp below the first allowed one', () => {
    expect(new Timestamper(FIRST, 0).next(0).ts).toBe(FIRST);
  });

  it('asks for a durable reservation ahead of the clock, once per reservation window', () => {
    const t = new Timestamper(FIRST, 0);
    expect(t.next(2_000_000)).toEqual({ ts: 2_000_000, reserveUntilUs: 2_000_000 + TS_RESERVATION_US });
    expect(t.next(2_100_000).reserveUntilUs).toBeNull();
    expect(t.next(2_000_000 + TS_RESERVATION_US).reserveUntilUs).toBe(2_000_000 + 2 * TS_RESERVATION_US);
  });

  it('after a restart from the persisted reservation, never repeats or goes back', () => {
    const step = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('ts' as const), advanceUs: fc.integer({ min: -400_000, max: 300_000 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), advanceUs: fc.integer({ min: -1_000_000, max: 300_000 }) }) },
    );
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
        let durable = 0;
        let clock = 2_000_000;
        let t = new Timestamper(FIRST, durable);
        let last = -1;
        for (const s of steps) {
          // The clock may jump back (a restart on a machine whose clock was stepped back, say).
          clock = Math.max(0, clock + s.advanceUs);
          if (s.kind === 'restart') {
            t = new Timestamper(FIRST, durable);
            continue;
          }
          const { ts, reserveUntilUs } = t.next(clock);
          // The driver persists the reservation before the timestamp leaves.
          if (reserveUntilUs !== null) durable = Math.max(durable, reserveUntilUs);
          expect(ts).toBeGreaterThan(last);
          expect(ts).toBeLessThanOrEqual(durable);
          last = ts;
        }
      }),
    );
  });
});
