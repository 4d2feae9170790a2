/**
 * The virtual network: per-link base latency plus random jitter (which also reorders), loss and
 * duplication until the network stabilises at `gstUs`, and partitions. After GST every message
 * between connected nodes arrives within the link's base latency plus bounded jitter.
 */
import type { Rng } from './rng.js';

export interface NetworkProfile {
  /** Each link's fixed latency is drawn from [min, max]. */
  readonly baseLatencyUs: readonly [number, number];
  /** Mean of the exponential jitter added to every message. */
  readonly jitterMeanUs: number;
  /** Jitter is capped after GST so that delays are bounded (partial synchrony). */
  readonly maxJitterAfterGstUs: number;
  /** Probability that a message is lost, before GST. */
  readonly lossBeforeGst: number;
  /** Probability that a message is delivered twice, at any time (duplicates are harmless by design). */
  readonly duplicate: number;
  /** Global stabilisation time. */
  readonly gstUs: number;
}

export const CALM_NETWORK: NetworkProfile = {
  baseLatencyUs: [200, 2_000],
  jitterMeanUs: 300,
  maxJitterAfterGstUs: 5_000,
  lossBeforeGst: 0,
  duplicate: 0,
  gstUs: 0,
};

export class SimNetwork {
  private readonly baseLatency: number[][];
  /** Partition group of every node, or null when fully connected. */
  private groups: readonly number[] | null = null;

  constructor(
    private readonly rng: Rng,
    private readonly nodeCount: number,
    readonly profile: NetworkProfile,
  ) {
    const [lo, hi] = profile.baseLatencyUs;
    this.baseLatency = Array.from({ length: nodeCount }, () => Array.from({ length: nodeCount }, () => rng.int(lo, hi)));
  }

  /** Splits nodes into groups (group id per node); messages across groups are dropped. A node in
   *  group −1 stays connected to every group (clients, when only replicas are split). */
  partition(groups: readonly number[]): void {
    this.groups = groups;
  }

  heal(): void {
    this.groups = null;
  }

  get partitioned(): boolean {
    return this.groups !== null;
  }

  connected(from: number, to: number): boolean {
    if (this.groups === null) return true;
    const a = this.groups[from];
    const b = this.groups[to];
    return a === b || a === -1 || b === -1;
  }

  /** Delivery delays for one message: empty when lost, two entries when duplicated. */
  delays(from: number, to: number, nowUs: number): number[] {
    if (!this.connected(from, to)) return [];
    const stable = nowUs >= this.profile.gstUs;
    if (!stable && this.rng.chance(this.profile.lossBeforeGst)) return [];
    const one = (): number => {
      let jitter = this.rng.exponential(this.profile.jitterMeanUs);
      if (stable) jitter = Math.min(jitter, this.profile.maxJitterAfterGstUs);
      return Math.max(1, Math.round(this.baseLatency[from]![to]! + jitter));
    };
    const first = one();
    return this.rng.chance(this.profile.duplicate) ? [first, one()] : [first];
  }

  get size(): number {
    return this.nodeCount;
  }
}
