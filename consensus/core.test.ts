/**
 * The HotStuff core driven by hand: four cores, a zero-latency FIFO pump (consensus/testCluster.ts)
 * and the trivial test App. What users rely on: blocks commit, identically everywhere; a vote
 * leaves only after the state it depends on is durable; a silent leader costs a timeout and the
 * round-robin leader takes over; an equivocating leader gets at most one vote per replica; a replica
 * that missed blocks fetches them; payload validation gates the vote.
 */
import { describe, expect, it } from 'vitest';
import { bitmapSet, newBitmap } from '../common/bitmap.js';
import { toHex } from '../common/bytes.js';
import type { Digest, ReplicaId, View } from '../common/ids.js';
import type { ProposalMsg, TimeoutCert } from '../common/messages.js';
import { blockDigest } from './block.js';
import { encodeTestPayload } from './testApp.js';
import { type Envelope, TestCluster } from './testCluster.js';
import type { CommitRule } from './types.js';

const RULES: readonly CommitRule[] = ['3-chain', '2-chain'];

/** Votes signed per (replica, view): more than one distinct block is a double vote. */
function doubleVotes(cluster: TestCluster): string[] {
  const problems: string[] = [];
  for (const r of cluster.replicas) {
    const byView = new Map<number, string>();
    for (const s of r.signed) {
      if (s.kind !== 'vote') continue;
      const earlier = byView.get(s.view);
      if (earlier !== undefined && earlier !== s.block) problems.push(`replica ${r.id} voted twice in view ${s.view}`);
      byView.set(s.view, s.block!);
    }
  }
  return problems;
}

/** The first proposal replica `from` sends for `view` (as its core emitted it). */
function proposalOf(cluster: TestCluster, from: number, view: number): ProposalMsg {
  const found = cluster.sent('proposal', from).find((p) => p.msg.block.view === view);
  expect(found, `replica ${from} proposed nothing in view ${view}`).toBeDefined();
  return found!.msg;
}

describe.each(RULES)('HotStuff core, %s', (rule) => {
  it('commits blocks, the same ones at every replica', () => {
    const cluster = new TestCluster({ rule });
    cluster.start();
    cluster.runUntil(60_000);
    for (const r of cluster.replicas) expect(cluster.height(r.id), `replica ${r.id}`).toBeGreaterThanOrEqual(30);
    expect(cluster.agreementProblems()).toEqual([]);
    expect(doubleVotes(cluster)).toEqual([]);
    // Replicas at the same height hold the same tip (the core's own view of its chain).
    const tips = new Set(cluster.replicas.map((r) => `${r.core!.committedTip.block.height}:${toHex(r.core!.committedTip.digest)}`));
    const heights = new Set(cluster.replicas.map((r) => r.core!.committedTip.block.height));
    expect(tips.size).toBe(heights.size);
    // A healthy run needs no timeout and reports no peer fault.
    expect(cluster.sent('timeout')).toEqual([]);
    expect(cluster.replicas.flatMap((r) => r.faults)).toEqual([]);
  });

  it('persists the safety state in the step that emits a vote, before the vote is sent', () => {
    const cluster = new TestCluster({ rule });
    cluster.start();
    cluster.runUntil(20_000);
    let votes = 0;
    for (const step of cluster.steps) {
      for (const { msg } of step.out.send) {
        if (msg.type !== 'vote') continue;
        votes++;
        const safety = step.out.persist.find((op) => op.kind === 'safety');
        expect(safety, `replica ${step.replica}'s vote for view ${msg.view} came without a safety write`).toBeDefined();
        if (safety?.kind === 'safety') expect(safety.state.lastVotedView).toBe(msg.view);
      }
    }
    expect(votes).toBeGreaterThan(20);
    // The harness applies persist ops before sends; at every send the durable state covered it.
    expect(cluster.durabilityViolations).toEqual([]);
  });

  it('replaces a silent leader after one timeout: the round-robin leader of the next view proposes with a TC', () => {
    const cluster = new TestCluster({ rule, blockIntervalUs: 5_000 });
    cluster.start();
    cluster.runUntil(50_000);
    const leader = cluster.sent('proposal').at(-1)!.from;
    const heightBefore = Math.max(...cluster.replicas.map((r) => cluster.height(r.id)));
    expect(heightBefore).toBeGreaterThan(0);
    const silencedAtUs = cluster.nowUs;
    const proposalsBefore = cluster.sent('proposal').length;
    cluster.route = (env) => (env.from === leader ? [] : [env.msg]);
    cluster.runUntil(silencedAtUs + 500_000);

    const after = cluster.sent('proposal').slice(proposalsBefore).filter((p) => p.from !== leader);
    const first = after[0];
    expect(first, 'nobody took over').toBeDefined();
    const { block, tc } = first!.msg;
    // The view was entered by a TC for the previous view, and its leader is view mod n.
    expect(tc).not.toBeNull();
    expect(tc!.view).toBe(block.view - 1);
    expect(block.proposer).toBe(block.view % cluster.n);
    expect(cluster.sent('timeout').length).toBeGreaterThan(0);
    // Every view entered by TC is led by view mod n.
    for (const p of after) if (p.msg.tc !== null) expect(p.msg.block.proposer).toBe(p.msg.block.view % cluster.n);
    // And the others keep committing without the silent replica.
    const others = cluster.replicas.filter((r) => r.id !== leader).map((r) => r.id);
    for (const id of others) expect(cluster.height(id), `replica ${id}`).toBeGreaterThan(heightBefore + 5);
    expect(cluster.agreementProblems()).toEqual([]);
    // Timeouts, like votes, left only after the view they cover was durable as lastVotedView.
    expect(cluster.durabilityViolations).toEqual([]);
  });

  it('gives an equivocating leader at most one vote per replica, and reports it', () => {
    const cluster = new TestCluster({ rule });
    let twin: ProposalMsg | null = null;
    // Leader 0 sends two different valid blocks for view 1; each replica gets both, in varying order.
    cluster.route = (env: Envelope) => {
      if (env.from !== 0 || env.msg.type !== 'proposal' || env.msg.block.view !== 1) return [env.msg];
      const original = env.msg;
      twin ??= { ...original, block: { ...original.block, payload: encodeTestPayload(1, 0 as ReplicaId, 17) } };
      return env.to === 2 ? [twin, original] : [original, twin];
    };
    cluster.start();
    cluster.runUntil(30_000);
    expect(twin).not.toBeNull();
    const original = proposalOf(cluster, 0, 1);
    const digests = new Set([original, twin!].map((p) => toHex(blockDigest(cluster.crypto, p.block))));
    expect(digests.size).toBe(2);

    const votesInView1 = cluster.replicas.map((r) => r.signed.filter((s) => s.kind === 'vote' && s.view === 1));
    for (const [id, votes] of votesInView1.entries()) {
      expect(votes.length, `replica ${id} votes in view 1`).toBeLessThanOrEqual(1);
      for (const v of votes) expect(digests.has(v.block!)).toBe(true);
    }
    // Replica 2 saw the twin first and voted for it; replicas 1 and 3 voted for the original.
    expect(votesInView1[2]![0]?.block).toBe(toHex(blockDigest(cluster.crypto, twin!.block)));
    expect(votesInView1[1]![0]?.block).toBe(toHex(blockDigest(cluster.crypto, original.block)));
    for (const id of [1, 2, 3]) {
      expect(cluster.replicas[id]!.faults.some((f) => f.kind === 'equivocation' && f.peer === 0), `replica ${id} reports`).toBe(true);
    }
    expect(doubleVotes(cluster)).toEqual([]);
    // Only one of the twins can be certified; the chain goes on from it at every replica.
    expect(cluster.agreementProblems()).toEqual([]);
    for (const r of cluster.replicas) expect(cluster.height(r.id)).toBeGreaterThan(5);
  });

  it('fetches missed blocks by block sync and commits the same blocks', () => {
    const cluster = new TestCluster({ rule });
    const isolated = 3;
    cluster.route = (env) => (env.from === isolated || env.to === isolated ? [] : [env.msg]);
    cluster.start();
    cluster.runUntil(40_000);
    const missed = cluster.height(0);
    expect(missed).toBeGreaterThan(20);
    expect(cluster.height(isolated)).toBe(0);

    cluster.route = (env) => [env.msg];
    cluster.runUntil(80_000);
    expect(cluster.sent('blockRequest', isolated).length).toBeGreaterThan(0);
    expect(cluster.steps.some((s) => s.replica !== isolated && s.out.send.some((o) => o.to === isolated && o.msg.type === 'blockResponse'))).toBe(true);
    // It committed every block it missed, and more, and the same ones as the others.
    expect(cluster.height(isolated)).toBeGreaterThan(missed);
    expect(cluster.agreementProblems()).toEqual([]);
  });

  it('fetches missed blocks from storage once they left the in-memory window', () => {
    const cluster = new TestCluster({ rule, blockIntervalUs: 500 });
    const isolated = 2;
    cluster.route = (env) => (env.from === isolated || env.to === isolated ? [] : [env.msg]);
    cluster.start();
    cluster.runUntil(400_000);
    // Far more than the 512 recently committed blocks a core keeps in memory.
    expect(cluster.height(0)).toBeGreaterThan(600);
    cluster.route = (env) => [env.msg];
    cluster.runUntil(500_000);
    expect(cluster.steps.some((s) => s.out.serveFromStorage.some((r) => r.to === isolated))).toBe(true);
    expect(cluster.height(isolated)).toBeGreaterThan(600);
    expect(cluster.agreementProblems()).toEqual([]);
  });
});

describe.each(RULES)('payload validation, %s', (rule) => {
  it("votes once a 'pending' payload becomes ready, not before", () => {
    const waiting = 3;
    const cluster = new TestCluster({ rule, app: (id) => (id === waiting ? { delayValidation: () => true } : {}) });
    cluster.start();
    cluster.pump();
    const proposal = proposalOf(cluster, 0, 1);
    const digest = blockDigest(cluster.crypto, proposal.block);
    // Everyone else voted for view 1; replica 3 holds the block but waits for its data.
    expect(cluster.replicas[waiting]!.signed).toEqual([]);
    expect(cluster.core(waiting).status().lastVotedView).toBe(0);
    for (const id of [0, 1, 2]) expect(cluster.replicas[id]!.signed.filter((s) => s.kind === 'vote' && s.view === 1)).toHaveLength(1);

    // Ready for another block: still no vote.
    cluster.step(waiting, { kind: 'payloadReady', block: cluster.crypto.sha256(new Uint8Array([9])) as Digest });
    expect(cluster.replicas[waiting]!.signed).toEqual([]);

    cluster.replicas[waiting]!.app.markReady(digest);
    const out = cluster.step(waiting, { kind: 'payloadReady', block: digest });
    const vote = out.send.find((o) => o.msg.type === 'vote');
    expect(vote?.to).toBe(0);
    expect(vote?.msg.type === 'vote' && vote.msg.view === 1 && toHex(vote.msg.block) === toHex(digest)).toBe(true);
    expect(out.persist.some((op) => op.kind === 'safety' && op.state.lastVotedView === 1)).toBe(true);
  });

  it("does not vote for an 'invalid' payload and reports the proposer", () => {
    const cluster = new TestCluster({ rule });
    // Leader 0's first proposal arrives with a payload the App rejects (it names another view).
    cluster.route = (env) =>
      env.from === 0 && env.msg.type === 'proposal' && env.msg.block.view === 1
        ? [{ ...env.msg, block: { ...env.msg.block, payload: encodeTestPayload(2, 0 as ReplicaId, 16) } }]
        : [env.msg];
    cluster.start();
    cluster.pump();
    for (const id of [1, 2, 3]) {
      const r = cluster.replicas[id]!;
      expect(r.signed.filter((s) => s.kind === 'vote'), `replica ${id} votes`).toEqual([]);
      expect(r.faults).toContainEqual(expect.objectContaining({ peer: 0, kind: 'invalidPayload' }));
      expect(r.core!.status().lastVotedView).toBe(0);
    }
    // Without votes the view times out and the round-robin leader carries on.
    cluster.route = (env) => [env.msg];
    cluster.runUntil(300_000);
    expect(cluster.sent('timeout').length).toBeGreaterThan(0);
    for (const r of cluster.replicas) expect(cluster.height(r.id)).toBeGreaterThan(5);
    expect(cluster.agreementProblems()).toEqual([]);
  });
});

describe.each(RULES)('certificates on proposals, %s', (rule) => {
  // Any replica can relay a genuine proposal; a forged TC attached to it must neither move views
  // (views never jump without a certificate) nor be stored and poison later timeouts.
  it('a relayed proposal with a forged TC neither moves views nor stops commits', () => {
    const cluster = new TestCluster({ rule });
    cluster.start();
    cluster.runUntil(10_000);
    const latest = cluster.sent('proposal').at(-1)!.msg;
    const signers = newBitmap(cluster.n);
    for (const r of [0, 1, 2]) bitmapSet(signers, r);
    const forged: TimeoutCert = { view: 1_000 as View, signers, highQcViews: [1, 1, 1] as View[], sigs: [0, 1, 2].map(() => new Uint8Array(64)) };
    const viewsBefore = cluster.replicas.map((r) => r.core!.view);
    for (const to of [0, 1, 2]) cluster.inject(3, to, { ...latest, tc: forged });
    cluster.pump();
    for (const id of [0, 1, 2]) expect(cluster.core(id).view, `replica ${id}`).toBeLessThanOrEqual(viewsBefore[id]! + 1);
    const heightBefore = cluster.height(0);
    cluster.runUntil(2_000_000);
    expect(cluster.height(0)).toBeGreaterThan(heightBefore + 10);
  });
});

describe.each(RULES)('a suspended core (a checkpoint is being installed), %s', (rule) => {
  it('follows certificates (views, high QC) but never votes, times out, proposes or asks for blocks, and has no wake-up', () => {
    const cluster = new TestCluster({ rule });
    cluster.start();
    cluster.runUntil(10_000);
    const suspended = 3;
    cluster.step(suspended, { kind: 'suspend' });
    const viewBefore = cluster.core(suspended).view;
    const stepsBefore = cluster.steps.length;
    expect(cluster.core(suspended).nextWakeUs()).toBeNull();
    cluster.runUntil(60_000);
    const mine = cluster.steps.slice(stepsBefore).filter((s) => s.replica === suspended);
    const sent = mine.flatMap((s) => s.out.send.map((o) => o.msg.type));
    expect(sent.filter((t) => t === 'vote' || t === 'timeout' || t === 'proposal' || t === 'blockRequest')).toEqual([]);
    // The others went on without it, and it followed their certificates.
    expect(cluster.core(suspended).view).toBeGreaterThan(viewBefore + 5);
    expect(Math.min(...[0, 1, 2].map((id) => cluster.height(id)))).toBeGreaterThan(20);
  });

  it('takes part again once resumed (the install was given up): it votes, and has a wake-up', () => {
    const cluster = new TestCluster({ rule });
    cluster.start();
    cluster.runUntil(10_000);
    const replica = 3;
    cluster.step(replica, { kind: 'suspend' });
    cluster.runUntil(30_000);
    cluster.step(replica, { kind: 'resume' });
    expect(cluster.core(replica).nextWakeUs()).not.toBeNull();
    const stepsBefore = cluster.steps.length;
    cluster.runUntil(60_000);
    const sent = cluster.steps.slice(stepsBefore).filter((s) => s.replica === replica).flatMap((s) => s.out.send.map((o) => o.msg.type));
    expect(sent).toContain('vote');
  });
});
