/**
 * Fetching batch bytes a replica lacks — for a block it is about to vote on, or for a committed
 * entry it must execute — from the replicas whose seals list them. Requests rotate through the
 * holders on timeout and never give up: execution waits for the bytes and never skips an entry.
 */
import { toHex } from '../common/bytes.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import { MAX_DIGESTS_PER_REQUEST } from '../common/limits.js';

interface Want {
  readonly digest: Digest;
  readonly holders: readonly ReplicaId[];
  attempt: number;
  /** When to ask (again); 0 = at the next flush. */
  dueUs: number;
  readonly waiters: Set<string>;
}

export interface FetchRequest {
  readonly to: ReplicaId;
  readonly digests: Digest[];
}

export class Fetcher {
  private readonly wanted = new Map<string, Want>();

  constructor(
    private readonly self: ReplicaId,
    private readonly n: number,
    private readonly retryUs: number,
  ) {}

  get size(): number {
    return this.wanted.size;
  }

  isWanted(key: string): boolean {
    return this.wanted.has(key);
  }

  /** Asks for a batch on behalf of `waiter` (a block key, or an execution marker). */
  want(digest: Digest, holders: readonly ReplicaId[], waiter: string): void {
    const key = toHex(digest);
    const existing = this.wanted.get(key);
    if (existing !== undefined) {
      existing.waiters.add(waiter);
      return;
    }
    let others = holders.filter((r) => r !== this.self);
    if (others.length === 0) others = [...Array(this.n).keys()].filter((r) => r !== this.self) as ReplicaId[];
    this.wanted.set(key, { digest, holders: others, attempt: 0, dueUs: 0, waiters: new Set([waiter]) });
  }

  /** The bytes arrived: returns who was waiting for them. */
  arrived(key: string): ReadonlySet<string> {
    const want = this.wanted.get(key);
    if (want === undefined) return new Set();
    this.wanted.delete(key);
    return want.waiters;
  }

  /** Requests due now, grouped by holder; each ask moves on to the next holder for its retry. */
  due(nowUs: number): FetchRequest[] {
    const byPeer = new Map<ReplicaId, Digest[]>();
    for (const want of this.wanted.values()) {
      if (want.dueUs > nowUs) continue;
      const to = want.holders[want.attempt % want.holders.length]!;
      want.attempt++;
      want.dueUs = nowUs + this.retryUs;
      let list = byPeer.get(to);
      if (list === undefined) byPeer.set(to, (list = []));
      list.push(want.digest);
    }
    const requests: FetchRequest[] = [];
    for (const [to, digests] of byPeer) {
      for (let i = 0; i < digests.length; i += MAX_DIGESTS_PER_REQUEST) {
        requests.push({ to, digests: digests.slice(i, i + MAX_DIGESTS_PER_REQUEST) });
      }
    }
    return requests;
  }

  nextDueUs(): number | null {
    let next: number | null = null;
    for (const want of this.wanted.values()) if (next === null || want.dueUs < next) next = want.dueUs;
    return next;
  }
}
