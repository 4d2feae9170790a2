/**
 * Fetching batch bytes a replica lacks — for a block it is about to vote on, or for a committed
 * entry it must execute — from the replicas whose seals list them first, then from every other
 * replica: a block's correct voters hold its bytes durably whether or not a seal lists them, and
 * the only listed holder may be crashed or Byzantine (simulation seed 640, n=4 2-chain direct, had a
 * single listed holder behind a partition). Requests rotate on timeout; a want lasts while someone
 * waits for it: execution waits for its bytes and never skips an entry (every committed entry has
 * f+1 correct holders), while a wait for a block this replica can no longer vote on, or a proposal
 * it no longer makes, is cancelled (an entry only a Byzantine replica holds is never served, and
 * its fetch must not live forever).
 */
import { toHex } from '../common/bytes.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import { MAX_DIGESTS_PER_REQUEST } from '../common/limits.js';

interface Want {
  readonly digest: Digest;
  /** Listed holders, then every other replica; never this one. */
  readonly askOrder: readonly ReplicaId[];
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
    const order = [...new Set(holders)].filter((r) => r !== this.self);
    for (let r = 0; r < this.n; r++) if (r !== this.self && !order.includes(r as ReplicaId)) order.push(r as ReplicaId);
    this.wanted.set(key, { digest, askOrder: order, attempt: 0, dueUs: 0, waiters: new Set([waiter]) });
  }

  /** `waiter` no longer waits: wants nobody else waits for are dropped. */
  cancel(waiter: string): void {
    for (const [key, want] of this.wanted) {
      if (!want.waiters.delete(waiter)) continue;
      if (want.waiters.size === 0) this.wanted.delete(key);
    }
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
      // A single-replica cluster has no one to ask.
      if (want.dueUs > nowUs || want.askOrder.length === 0) continue;
      const to = want.askOrder[want.attempt % want.askOrder.length]!;
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
