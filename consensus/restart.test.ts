/**
 * Crash and restart: a replica rebuilt from what its storage held (MemoryConsensusStorage kept, the
 * core dropped) must not vote again in a view it voted or timed out in — the durable safety state is
 * what stops a double vote across a crash — and must catch up and commit again.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../common/bytes.js';
import type { ReplicaId } from '../common/ids.js';
import type { ProposalMsg } from '../common/messages.js';
import { blockDigest } from './block.js';
import { encodeTestPayload } from './testApp.js';
import { TestCluster } from './testCluster.js';
import type { CommitRule } from './types.js';

const RULES: readonly CommitRule[] = ['3-chain', '2-chain'];

/** Leader 0's block for view 1 and a conflicting one: same view, parent and QC, other payload. */
function twins(cluster: TestCluster): { original: ProposalMsg; conflicting: ProposalMsg } {
  const sent = cluster.sent('proposal', 0).find((p) => p.msg.block.view === 1);
  expect(sent).toBeDefined();
  const original = sent!.msg;
  const conflicting: ProposalMsg = { ...original, block: { ...original.block, payload: encodeTestPayload(1, 0 as ReplicaId, 40) } };
  expect(toHex(blockDigest(cluster.crypto, conflicting.block))).not.toBe(toHex(blockDigest(cluster.crypto, original.block)));
  return { original, conflicting };
}

const votesIn = (cluster: TestCluster, id: number, view: number): string[] =>
  cluster.replicas[id]!.signed.filter((s) => s.kind === 'vote' && s.view === view).map((s) => s.block!);

describe.each(RULES)('crash-restart, %s', (rule) => {
  it('does not vote for a conflicting block in a view it voted in before the crash', () => {
    const cluster = new TestCluster({ rule });
    // Drop every message: the test delivers leader 0's first proposal by hand.
    cluster.route = () => [];
    cluster.start();
    const { original, conflicting } = twins(cluster);
    cluster.route = (env) => [env.msg];

    cluster.inject(0, 1, original);
    cluster.pump();
    expect(votesIn(cluster, 1, 1)).toEqual([toHex(blockDigest(cluster.crypto, original.block))]);
    expect(cluster.replicas[1]!.storage.loadSync().safety?.lastVotedView).toBe(1);

    cluster.crash(1);
    cluster.restart(1);
    expect(cluster.core(1).view).toBe(1);
    const before = cluster.steps.length;
    cluster.inject(0, 1, conflicting);
    cluster.pump();
    // The restarted replica got the block (same legit proposer, valid payload) and refused to vote.
    expect(votesIn(cluster, 1, 1)).toHaveLength(1);
    expect(cluster.steps.slice(before).flatMap((s) => s.out.send).filter((o) => o.msg.type === 'vote')).toEqual([]);
    expect(cluster.core(1).status().lastVotedView).toBe(1);

    // Control: a replica that never voted in view 1 does vote for that same conflicting block.
    cluster.inject(0, 2, conflicting);
    cluster.pump();
    expect(votesIn(cluster, 2, 1)).toEqual([toHex(blockDigest(cluster.crypto, conflicting.block))]);
  });

  it('does not vote in a view it timed out in before the crash', () => {
    const cluster = new TestCluster({ rule });
    cluster.route = () => []; // nobody hears anybody: view 1 times out everywhere
    cluster.start();
    const { original } = twins(cluster);
    cluster.runUntil(60_000);
    expect(cluster.replicas[3]!.signed.some((s) => s.kind === 'timeout' && s.view === 1)).toBe(true);
    expect(votesIn(cluster, 3, 1)).toEqual([]);

    cluster.crash(3);
    cluster.restart(3);
    cluster.route = (env) => [env.msg];
    cluster.inject(0, 3, original);
    cluster.pump();
    expect(votesIn(cluster, 3, 1)).toEqual([]);
    // Control: in a cluster where replica 3 did not time out, the same delivery gets its vote.
    const fresh = new TestCluster({ rule });
    fresh.route = () => [];
    fresh.start();
    fresh.route = (env) => [env.msg];
    fresh.inject(0, 3, twins(fresh).original);
    fresh.pump();
    expect(votesIn(fresh, 3, 1)).toHaveLength(1);
  });

  it('catches up after a restart and commits again, the same blocks as the others', () => {
    const cluster = new TestCluster({ rule });
    cluster.start();
    cluster.runUntil(20_000);
    const down = 2;
    const heightAtCrash = cluster.height(down);
    expect(heightAtCrash).toBeGreaterThan(5);

    cluster.crash(down);
    cluster.runUntil(300_000); // the others time out the lost leader or vote, and go on
    expect(cluster.height(down)).toBe(heightAtCrash);
    const othersAtRestart = Math.min(...[0, 1, 3].map((id) => cluster.height(id)));
    expect(othersAtRestart).toBeGreaterThan(heightAtCrash);

    cluster.restart(down);
    cluster.runUntil(600_000);
    expect(cluster.height(down)).toBeGreaterThan(othersAtRestart);
    expect(cluster.replicas[down]!.commits.slice(heightAtCrash).length).toBeGreaterThan(0);
    expect(cluster.agreementProblems()).toEqual([]);
    expect(cluster.durabilityViolations).toEqual([]);
    // No double vote across the restart.
    const byView = new Map<number, Set<string>>();
    for (const s of cluster.replicas[down]!.signed) {
      if (s.kind !== 'vote') continue;
      const set = byView.get(s.view) ?? new Set();
      set.add(s.block!);
      byView.set(s.view, set);
    }
    for (const [view, blocks] of byView) expect(blocks.size, `view ${view}`).toBe(1);
  });

  it('reports no fault against honest replicas that restart, the leader among them, however far behind', () => {
    const cluster = new TestCluster({ rule, viewTimeoutMs: 20 });
    cluster.start();
    for (let round = 0; round < 4; round++) {
      cluster.runFor(30_000);
      // Every other round the replica that leads now (the proposer of the newest block), else a
      // follower; down long enough for the others to move dozens of views on.
      const newest = cluster.sent('proposal').at(-1)!.msg.block;
      const down = round % 2 === 0 ? newest.proposer : (newest.proposer + 1) % cluster.n;
      const viewAtCrash = cluster.core(down).view;
      cluster.crash(down);
      cluster.runFor(round === 3 ? 400_000 : 60_000);
      cluster.restart(down);
      const restartedIn = cluster.core(down).view;
      cluster.runFor(200);
      // A restarted replica never proposes again in the view it came back in.
      expect(cluster.sent('proposal', down).some((p) => p.atUs >= cluster.nowUs - 200 && p.msg.block.view === restartedIn && restartedIn <= viewAtCrash)).toBe(false);
    }
    cluster.runFor(200_000);
    expect(cluster.replicas.flatMap((r) => r.faults.map((f) => `${r.id} reports ${f.peer}: ${f.kind} ${f.detail}`))).toEqual([]);
    expect(cluster.agreementProblems()).toEqual([]);
    const heights = cluster.replicas.map((r) => cluster.height(r.id));
    expect(Math.min(...heights)).toBeGreaterThan(20);
  });
});
