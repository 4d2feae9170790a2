/**
 * Checkers for the consensus-only simulation, run on every commit and at the end of a run:
 * agreement (no two correct replicas commit different blocks at a height; each replica's commits
 * are contiguous) and liveness after the network stabilises (every correct replica commits within
 * a bound after GST, and is still committing at the end).
 */
import { toHex } from '../common/bytes.js';
import type { CommittedBlock } from '../consensus/types.js';
import type { CommitObserver } from './consensusNode.js';

export class ConsensusChecker implements CommitObserver {
  private readonly digestAtHeight = new Map<number, string>();
  readonly heights: number[];
  readonly commitTimesUs: number[][];
  readonly violations: string[] = [];

  constructor(
    n: number,
    private readonly isCorrect: (replica: number) => boolean,
  ) {
    this.heights = new Array<number>(n).fill(0);
    this.commitTimesUs = Array.from({ length: n }, () => []);
  }

  onCommit(replica: number, commits: readonly CommittedBlock[], atUs: number): void {
    if (!this.isCorrect(replica)) return;
    for (const { block, digest } of commits) {
      if (block.height !== this.heights[replica]! + 1) {
        this.violations.push(`agreement: replica ${replica} committed height ${block.height} after ${this.heights[replica]} (at ${atUs} µs)`);
      }
      this.heights[replica] = block.height;
      const hex = toHex(digest);
      const known = this.digestAtHeight.get(block.height);
      if (known === undefined) this.digestAtHeight.set(block.height, hex);
      else if (known !== hex) {
        this.violations.push(`agreement: replica ${replica} committed ${hex.slice(0, 12)} at height ${block.height}, another correct replica ${known.slice(0, 12)} (at ${atUs} µs)`);
      }
      this.commitTimesUs[replica]!.push(atUs);
    }
  }

  /** Liveness after GST, for the replicas that are correct and up at the end. */
  checkLiveness(replicas: readonly number[], gstUs: number, endUs: number, boundUs: number): void {
    for (const r of replicas) {
      const times = this.commitTimesUs[r]!;
      const first = times.find((t) => t >= gstUs);
      if (first === undefined || first > gstUs + boundUs) {
        this.violations.push(`liveness: replica ${r} committed nothing within ${boundUs / 1e6} s after GST (${gstUs / 1e6} s)`);
        continue;
      }
      const last = times[times.length - 1]!;
      if (last < endUs - boundUs) {
        this.violations.push(`liveness: replica ${r} stopped committing at ${last / 1e6} s (run ends ${endUs / 1e6} s)`);
      }
    }
  }

  get maxHeight(): number {
    return Math.max(...this.heights);
  }
}
