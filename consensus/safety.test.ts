/**
 * The voting rules of both commit rules, one table row per case (safety.ts states them): a replica
 * that votes when a row says "refuse" can help certify a block conflicting with a committed one; a
 * replica that refuses when a row says "vote" can stall the cluster.
 */
import { describe, expect, it } from 'vitest';
import { newBitmap } from '../common/bitmap.js';
import type { Digest, Height, ReplicaId, View } from '../common/ids.js';
import type { Block, QuorumCert, TimeoutCert } from '../common/messages.js';
import { initialSafety, SafetyRules } from './safety.js';
import type { CommitRule, SafetyState } from './types.js';

const N = 4;
const DIGEST = new Uint8Array(32) as Digest;

function qc(v: number): QuorumCert {
  return { view: v as View, block: DIGEST, signers: newBitmap(N), sigs: [] };
}

/** A block of view `v` whose QC is for view `justify` (only views matter to the voting rules). */
function block(v: number, justify: number): Block {
  return {
    parent: DIGEST,
    view: v as View,
    height: 1 as Height,
    proposer: 0 as ReplicaId,
    justify: qc(justify),
    payload: new Uint8Array(0),
  };
}

function tc(v: number, highQcViews: readonly number[]): TimeoutCert {
  return { view: v as View, signers: newBitmap(N), highQcViews: highQcViews as View[], sigs: [] };
}

function rules(rule: CommitRule, lastVotedView: number, lockedView: number, highQcView = lockedView): SafetyRules {
  const state: SafetyState = { lastVotedView: lastVotedView as View, lockedView: lockedView as View, highQc: qc(highQcView), lastTc: null };
  return new SafetyRules(rule, state);
}

interface VoteCase {
  readonly name: string;
  readonly lastVoted: number;
  readonly locked: number;
  readonly view: number;
  readonly justify: number;
  readonly tc?: TimeoutCert;
  readonly vote: boolean;
}

describe('3-chain voting rule: view > lastVotedView ∧ justify.view ≥ lockedView', () => {
  const cases: VoteCase[] = [
    { name: 'justify below the lock', lastVoted: 10, locked: 8, view: 11, justify: 7, vote: false },
    { name: 'justify far below the lock', lastVoted: 10, locked: 8, view: 11, justify: 1, vote: false },
    { name: 'justify at the lock', lastVoted: 10, locked: 8, view: 11, justify: 8, vote: true },
    { name: 'justify above the lock', lastVoted: 10, locked: 8, view: 11, justify: 10, vote: true },
    { name: 'justify not the previous view (after timeouts), still above the lock', lastVoted: 12, locked: 8, view: 15, justify: 9, vote: true },
    { name: 'view equal to the last voted view', lastVoted: 10, locked: 8, view: 10, justify: 9, vote: false },
    { name: 'view below the last voted view', lastVoted: 10, locked: 8, view: 9, justify: 8, vote: false },
    { name: 'a TC does not lift the lock', lastVoted: 10, locked: 8, view: 11, justify: 7, tc: tc(10, [7, 7, 7]), vote: false },
    { name: 'fresh replica, genesis QC', lastVoted: 0, locked: 0, view: 1, justify: 0, vote: true },
  ];
  it.each(cases)('$name → vote $vote', (c) => {
    expect(rules('3-chain', c.lastVoted, c.locked).canVote(block(c.view, c.justify), c.tc ?? null)).toBe(c.vote);
  });
});

describe('2-chain voting rule: view > lastVotedView ∧ (justify = view − 1 ∨ TC for view − 1 with justify ≥ max highQcViews)', () => {
  const cases: VoteCase[] = [
    { name: 'justify is the previous view', lastVoted: 10, locked: 9, view: 11, justify: 10, vote: true },
    { name: 'justify is the previous view, lock is irrelevant', lastVoted: 4, locked: 9, view: 11, justify: 10, vote: true },
    { name: 'justify two views back, no TC', lastVoted: 10, locked: 8, view: 11, justify: 9, vote: false },
    { name: 'justify at the lock but not the previous view, no TC', lastVoted: 10, locked: 9, view: 11, justify: 9, vote: false },
    { name: 'TC for view − 1, justify above its highest QC', lastVoted: 10, locked: 8, view: 12, justify: 10, tc: tc(11, [8, 9, 7]), vote: true },
    { name: 'TC for view − 1, justify equal to its highest QC', lastVoted: 10, locked: 8, view: 12, justify: 9, tc: tc(11, [8, 9, 7]), vote: true },
    { name: 'TC for view − 1, justify below its highest QC', lastVoted: 10, locked: 8, view: 12, justify: 8, tc: tc(11, [8, 9, 7]), vote: false },
    { name: 'TC for view − 2', lastVoted: 10, locked: 8, view: 12, justify: 9, tc: tc(10, [8, 9, 7]), vote: false },
    { name: 'TC for the block’s own view', lastVoted: 10, locked: 8, view: 12, justify: 9, tc: tc(12, [8, 9, 7]), vote: false },
    { name: 'view equal to the last voted view', lastVoted: 11, locked: 8, view: 11, justify: 10, vote: false },
    { name: 'view below the last voted view, with a valid TC', lastVoted: 13, locked: 8, view: 12, justify: 9, tc: tc(11, [9]), vote: false },
  ];
  it.each(cases)('$name → vote $vote', (c) => {
    expect(rules('2-chain', c.lastVoted, c.locked).canVote(block(c.view, c.justify), c.tc ?? null)).toBe(c.vote);
  });
});

describe('recordVote', () => {
  const cases = [
    // 3-chain locks on the QC inside the parent (the grandparent's view): parent.justify.view.
    { rule: '3-chain', locked: 3, view: 9, justify: 8, parentJustify: 7, lastVotedAfter: 9, lockedAfter: 7 },
    { rule: '3-chain', locked: 7, view: 9, justify: 8, parentJustify: 5, lastVotedAfter: 9, lockedAfter: 7 },
    // 2-chain locks on the block's own QC: block.justify.view.
    { rule: '2-chain', locked: 3, view: 9, justify: 8, parentJustify: 7, lastVotedAfter: 9, lockedAfter: 8 },
    { rule: '2-chain', locked: 9, view: 12, justify: 8, parentJustify: 7, lastVotedAfter: 12, lockedAfter: 9 },
  ] as const;
  it.each(cases)('$rule: lock $locked, vote for view $view (justify $justify, parent justify $parentJustify) → lastVoted $lastVotedAfter, locked $lockedAfter', (c) => {
    const s = rules(c.rule, 0, c.locked);
    const parent = block(c.justify, c.parentJustify);
    s.recordVote(block(c.view, c.justify), parent);
    expect(s.votedView).toBe(c.lastVotedAfter);
    expect(s.locked).toBe(c.lockedAfter);
    // The change is flagged for persisting, and the persisted state carries it.
    expect(s.dirty).toBe(true);
    expect(s.state()).toMatchObject({ lastVotedView: c.lastVotedAfter, lockedView: c.lockedAfter });
  });

  it.each(['2-chain', '3-chain'] as const)('%s: after voting in a view it refuses every other block of that view', (rule) => {
    const s = rules(rule, 0, 0);
    const first = block(1, 0);
    expect(s.canVote(first, null)).toBe(true);
    s.recordVote(first, block(0, 0));
    expect(s.canVote(block(1, 0), null)).toBe(false);
    expect(s.canVote(block(2, 1), null)).toBe(true);
  });
});

describe('timeouts', () => {
  it.each(['2-chain', '3-chain'] as const)('%s: timing out in view v forbids voting in v, not in v + 1', (rule) => {
    const s = rules(rule, 4, 3);
    const inV = block(5, 4);
    expect(s.canVote(inV, null)).toBe(true);
    expect(s.canTimeout(5 as View)).toBe(true);
    s.recordTimeout(5 as View);
    expect(s.dirty).toBe(true);
    expect(s.state().lastVotedView).toBe(5);
    expect(s.canVote(inV, null)).toBe(false);
    expect(s.canVote(block(6, 5), null)).toBe(true);
  });

  it.each(['2-chain', '3-chain'] as const)('%s: a replica may time out in the view it voted in, never in an earlier one', (rule) => {
    const s = rules(rule, 7, 5, 6);
    expect(s.canTimeout(7 as View)).toBe(true);
    expect(s.canTimeout(8 as View)).toBe(true);
    expect(s.canTimeout(6 as View)).toBe(false);
    // A timeout at or below the last voted view does not move it back.
    s.recordTimeout(7 as View);
    expect(s.votedView).toBe(7);
    expect(s.dirty).toBe(false);
  });

  it('2-chain: no timeout while the high QC is below the lock (it would report a QC the lock has passed)', () => {
    expect(rules('2-chain', 7, 6, 5).canTimeout(8 as View)).toBe(false);
    expect(rules('2-chain', 7, 6, 6).canTimeout(8 as View)).toBe(true);
    // 3-chain timeouts are not restricted by the lock.
    expect(rules('3-chain', 7, 6, 5).canTimeout(8 as View)).toBe(true);
  });
});

describe('certificates held', () => {
  it('keeps the highest QC and TC only, flagging each change for persisting', () => {
    const s = new SafetyRules('2-chain', initialSafety(qc(0)));
    expect(s.observeQc(qc(4))).toBe(true);
    expect(s.observeQc(qc(3))).toBe(false);
    expect(s.observeQc(qc(4))).toBe(false);
    expect(s.highQc.view).toBe(4);
    expect(s.observeTc(tc(6, [4]))).toBe(true);
    expect(s.observeTc(tc(5, [4]))).toBe(false);
    expect(s.lastTc?.view).toBe(6);
    expect(s.dirty).toBe(true);
    expect(s.state()).toMatchObject({ highQc: { view: 4 }, lastTc: { view: 6 } });
  });
});
