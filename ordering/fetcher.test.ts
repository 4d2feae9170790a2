import { describe, expect, it } from 'vitest';
import { toHex } from '../common/bytes.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import { Fetcher } from './fetcher.js';

const RETRY_US = 200_000;
const digest = (b: number): Digest => new Uint8Array(32).fill(b) as Digest;
const ids = (...r: number[]): ReplicaId[] => r as ReplicaId[];

/** Who each successive retry of one wanted batch asks. */
function askSequence(fetcher: Fetcher, tries: number): number[] {
  const asked: number[] = [];
  for (let t = 0; t < tries; t++) {
    const requests = fetcher.due(t * RETRY_US);
    expect(requests).toHaveLength(1);
    asked.push(requests[0]!.to);
  }
  return asked;
}

describe('Fetcher', () => {
  it('asks the listed holders first, then every other replica, never itself', () => {
    const fetcher = new Fetcher(2 as ReplicaId, 7, RETRY_US);
    fetcher.want(digest(1), ids(5, 2, 0, 5), 'x');
    // A sole listed holder that is down or Byzantine must not stall execution forever.
    expect(askSequence(fetcher, 8)).toEqual([5, 0, 1, 3, 4, 6, 5, 0]);
  });

  it('asks again only after the retry interval', () => {
    const fetcher = new Fetcher(0 as ReplicaId, 4, RETRY_US);
    fetcher.want(digest(1), ids(1), 'x');
    expect(fetcher.due(0)).toHaveLength(1);
    expect(fetcher.due(RETRY_US - 1)).toEqual([]);
    expect(fetcher.nextDueUs()).toBe(RETRY_US);
    expect(fetcher.due(RETRY_US).map((r) => r.to)).toEqual([2]);
  });

  it('groups due digests by peer and hands every waiter back once the bytes arrive', () => {
    const fetcher = new Fetcher(0 as ReplicaId, 4, RETRY_US);
    fetcher.want(digest(1), ids(3), 'block-a');
    fetcher.want(digest(2), ids(3), 'x');
    fetcher.want(digest(1), ids(3), 'x');
    const requests = fetcher.due(0);
    expect(requests.map((r) => [r.to, r.digests.length])).toEqual([[3, 2]]);
    const key = toHex(digest(1));
    expect([...fetcher.arrived(key)].sort()).toEqual(['block-a', 'x']);
    expect(fetcher.isWanted(key)).toBe(false);
    expect(fetcher.size).toBe(1);
  });

  it('asks no one in a single-replica cluster', () => {
    const fetcher = new Fetcher(0 as ReplicaId, 1, RETRY_US);
    fetcher.want(digest(1), ids(0), 'x');
    expect(fetcher.due(0)).toEqual([]);
  });
});
