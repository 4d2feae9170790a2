/**
 * The voting and commit rules of the two commit rules, and the durable state they depend on.
 * Both rules assume every block's parent is the block its QC certifies (the core enforces it), so a
 * chain of blocks is a chain of certificates.
 *
 * 3-chain (classic chained HotStuff with view-based locking, as in LibraBFT/DiemBFT v3):
 *   vote for B  ⇔  B.view > lastVotedView  ∧  B.justify.view ≥ lockedView
 *   on voting:     lastVotedView ← B.view;  lockedView ← max(lockedView, view of B's grandparent)
 *   commit B0   when B0 ← B1 ← B2 are parent-linked with consecutive views and B2 is certified.
 *   Invariant kept: once B0 commits, q replicas (f+1 correct) have locked at B0's view, so no QC
 *   for a block that does not extend B0 can gather a quorum at a higher view.
 *
 * 2-chain (Jolteon / DiemBFT v4):
 *   vote for B  ⇔  B.view > lastVotedView  ∧  ( B.justify.view = B.view − 1
 *                  ∨ (TC for B.view − 1  ∧  B.justify.view ≥ the highest QC view in the TC) )
 *   on voting:     lastVotedView ← B.view;  lockedView ← max(lockedView, B.justify.view)
 *   timeout in v:  only with highQc.view ≥ lockedView; then lastVotedView ← max(lastVotedView, v)
 *   commit B0   when B0 ← B1 are parent-linked with consecutive views and B1 is certified.
 *   Invariant kept: once B0 (view v) commits, f+1 correct replicas voted for B1 in v+1 and so hold
 *   lockedView ≥ v; any TC for v+1 includes one of them, whose timeout reports a QC at view ≥ v, so
 *   every proposal the TC justifies extends B0, and so does every later QC.
 *
 * Both rules: a replica that timed out in view v never votes in v, and (lastVotedView, lockedView)
 * are made durable before any vote or timeout that relies on them leaves the replica.
 */
import type { View } from '../common/ids.js';
import type { Block, QuorumCert, TimeoutCert } from '../common/messages.js';
import { maxHighQcView } from './certs.js';
import type { CommitRule, SafetyState } from './types.js';

export class SafetyRules {
  private lastVotedView: View;
  private lockedView: View;
  private highQcCert: QuorumCert;
  private lastTcCert: TimeoutCert | null;
  /** Set when the state changed and must be persisted before the next send. */
  dirty = false;

  constructor(
    readonly rule: CommitRule,
    initial: SafetyState,
  ) {
    this.lastVotedView = initial.lastVotedView;
    this.lockedView = initial.lockedView;
    this.highQcCert = initial.highQc;
    this.lastTcCert = initial.lastTc;
  }

  state(): SafetyState {
    return { lastVotedView: this.lastVotedView, lockedView: this.lockedView, highQc: this.highQcCert, lastTc: this.lastTcCert };
  }

  get highQc(): QuorumCert {
    return this.highQcCert;
  }

  get lastTc(): TimeoutCert | null {
    return this.lastTcCert;
  }

  get votedView(): View {
    return this.lastVotedView;
  }

  get locked(): View {
    return this.lockedView;
  }

  /** The voting rule (see the file comment). `tc` is the certificate the proposal entered its view with. */
  canVote(block: Block, tc: TimeoutCert | null): boolean {
    if (block.view <= this.lastVotedView) return false;
    if (this.rule === '3-chain') return block.justify.view >= this.lockedView;
    if (block.justify.view + 1 === block.view) return true;
    return tc !== null && tc.view + 1 === block.view && block.justify.view >= maxHighQcView(tc);
  }

  /** `parent` is the block certified by block.justify. */
  recordVote(block: Block, parent: Block): void {
    this.lastVotedView = block.view;
    const lock = this.rule === '3-chain' ? parent.justify.view : block.justify.view;
    if (lock > this.lockedView) this.lockedView = lock;
    this.dirty = true;
  }

  canTimeout(v: View): boolean {
    if (v < this.lastVotedView) return false;
    return this.rule === '3-chain' || this.highQcCert.view >= this.lockedView;
  }

  recordTimeout(v: View): void {
    if (v > this.lastVotedView) {
      this.lastVotedView = v;
      this.dirty = true;
    }
  }

  /** Adopts a verified QC if it is the highest seen. */
  observeQc(qc: QuorumCert): boolean {
    if (qc.view <= this.highQcCert.view) return false;
    this.highQcCert = qc;
    this.dirty = true;
    return true;
  }

  observeTc(tc: TimeoutCert): boolean {
    if (this.lastTcCert !== null && tc.view <= this.lastTcCert.view) return false;
    this.lastTcCert = tc;
    this.dirty = true;
    return true;
  }

  /** How many parent-linked blocks with consecutive views a certified block must head for its
   *  oldest one to commit: B2 ← B1 ← B0 for 3-chain, B1 ← B0 for 2-chain. */
  get chainLength(): number {
    return this.rule === '3-chain' ? 3 : 2;
  }
}

export function initialSafety(genesisQc: QuorumCert): SafetyState {
  return { lastVotedView: 0 as View, lockedView: 0 as View, highQc: genesisQc, lastTc: null };
}
