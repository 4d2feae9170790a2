import { afterEach, describe, expect, it } from 'vitest';
import { freePortRange } from './freePorts.js';

const saved = process.env['VITEST_POOL_ID'];
afterEach(() => {
  process.env['VITEST_POOL_ID'] = saved;
});

async function basesFor(pool: string, draws: number): Promise<number[]> {
  process.env['VITEST_POOL_ID'] = pool;
  const bases: number[] = [];
  for (let i = 0; i < draws; i++) bases.push(await freePortRange(3));
  return bases;
}

describe('free test ports', () => {
  it('gives test workers running at once disjoint slices of the range, so two files never race for a port', async () => {
    const first = await basesFor('1', 40);
    const second = await basesFor('2', 40);
    expect(Math.max(...first) + 3).toBeLessThanOrEqual(Math.min(...second));
    // A worker's draws spread over its slice rather than repeating one port.
    expect(new Set(first).size).toBeGreaterThan(20);
  });
});
