/**
 * The CI seed set for the full simulation (replica core, consensus, execution and clients): fixed
 * seeds at n = 4 and n = 7, both commit rules, direct and gateway clients, all faults at once, and
 * each fault kind of THREATS.md alone — checked to have really been played, not just configured.
 * Every run must satisfy every checker (agreement, linearizability, no loss, exactly once,
 * soundness, liveness for correct clients, pending bounds, no double vote) and keep committing.
 * The longer random sweep is scripts/sim-sweep-full.sh; a seed it finds failing becomes an entry of
 * KNOWN_FAILING_SEEDS_FIXED once fixed. The checkers' own tests are sim/orderingChecker.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MAX_PENDING_BATCHES_PER_CONNECTION } from '../common/limits.js';
import type { CommitRule } from '../consensus/types.js';
import { LEADER_ATTACK_KINDS } from './leaderAttacks.js';
import { type ClientModes, ORDERING_FAULT_KINDS, type OrderingRunResult, runOrderingSeed } from './orderingRun.js';

const RULES: readonly CommitRule[] = ['3-chain', '2-chain'];
const MODES = ['direct', 'gateway'] as const;
const ALL = new Set(ORDERING_FAULT_KINDS);

/** Seeds a sweep found failing, kept after the fix as regression tests:
 *  `{ n, rule, modes, seed, faults, note: 'what broke and where it was fixed' }`.
 *  The checker fixes the sweeps prompted are covered here and by sim/orderingChecker.test.ts. */
const KNOWN_FAILING_SEEDS_FIXED: readonly {
  readonly n: number;
  readonly rule: CommitRule;
  readonly modes: ClientModes;
  readonly seed: number;
  readonly faults: readonly string[] | 'all';
  readonly note: string;
}[] = [
  {
    n: 4,
    rule: '3-chain',
    modes: 'gateway',
    seed: 100,
    faults: 'all',
    note: "pending-store bound: the checker's bound left out the batches gateways form for thin clients (sim/orderingRun.ts)",
  },
  {
    n: 4,
    rule: '3-chain',
    modes: 'direct',
    seed: 16,
    faults: 'all',
    note: "pending-store bound: the checker's bound left out the connection of a withholdCoalition client, whose junk (to evict its hostages) fills one connection's share as a flooder's does (sim/orderingRun.ts)",
  },
  {
    n: 4,
    rule: '2-chain',
    modes: 'direct',
    seed: 3020,
    faults: 'all',
    note: 'agreement: a replica whose execution waited for missing bytes forgot an executed, expired digest (pruned by committed slots), then ran it again from a later block (ReplicaCore now prunes by executed slots; unit test in ordering/replicaCluster.test.ts)',
  },
  {
    n: 7,
    rule: '3-chain',
    modes: 'gateway',
    seed: 795,
    faults: ['withhold'],
    note: 'liveness: a leader proposed a filler every block interval while an ack of its own was sealable, each from the first q votes, one of them without a seal; commits stalled (ReplicaCore.propose now prompts one filler per newly sealable ack)',
  },
  {
    n: 4,
    rule: '2-chain',
    modes: 'direct',
    seed: 640,
    faults: 'all',
    note: "no loss (checker): a replica committed batches whose bytes it had to fetch, asked only their one listed holder, behind a partition, crashed, and executed them in its replay, which the checker did not see (replays are now reported; the fetcher asks every replica after the listed holders, ordering/fetcher.test.ts)",
  },
  {
    n: 4,
    rule: '2-chain',
    modes: 'gateway',
    seed: 352,
    faults: 'all',
    note: 'agreement: a replica fetching a checkpoint (height 12) went on executing the blocks it had and took its own checkpoint at 13; the install moved its committed tip back to 12, the rebuilt core restored checkpoint 13 and committed block 13 again, running its expired (forgotten) digests twice (recovery now restores the latest checkpoint at or below the committed height: ordering/storage.ts, server/store/replicaStore.ts)',
  },
  {
    n: 4,
    rule: '3-chain',
    modes: 'direct',
    seed: 1083,
    faults: 'all',
    note: 'agreement: the same as seed 352, found by the same sweep',
  },
  {
    n: 4,
    rule: '2-chain',
    modes: 'direct',
    seed: 1383,
    faults: 'all',
    note: "a restarted replica fetching checkpoint 1 executed on past it and its own checkpoints 2 and 4 became stable, pruning the fetch's chunks; the install then held a checkpoint with holes and the rebuilt core threw. A fetch is now given up once execution reaches its checkpoint (ordering/stateTransfer.ts), and the core resumes",
  },
];

function run(n: number, rule: CommitRule, modes: ClientModes, seed: number, faults: ReadonlySet<string>, crypto: 'fast' | 'ed25519' = 'fast'): OrderingRunResult {
  return runOrderingSeed({ seed, n, rule, faults, crypto, modes });
}

const context = (r: OrderingRunResult): string => `${r.scenario.join(' | ')} | actions ${JSON.stringify(r.byzantineActions)}`;

/** Zero violations, blocks kept committing after GST, and batches executed. */
function expectHealthy(r: OrderingRunResult): void {
  expect(r.violations, context(r)).toEqual([]);
  expect(r.fairness.linearizabilityViolations, context(r)).toBe(0);
  expect(r.commitsPerSecond, context(r)).toBeGreaterThan(10);
  expect(r.batchesExecuted, context(r)).toBeGreaterThan(20);
}

describe.each(RULES)('full simulation, %s, all faults', (rule) => {
  describe.each(MODES)('%s clients', (modes) => {
    it.each([1, 2])('n=4 seed %i', (seed) => {
      expectHealthy(run(4, rule, modes, seed, ALL));
    });
    it('n=7 seed 101', () => {
      expectHealthy(run(7, rule, modes, 101, ALL));
    });
  });
});

describe('full simulation with real Ed25519', () => {
  // Real signatures on every batch, thin command and certificate of a whole run: the slowest test.
  it('n=4 2-chain, mixed clients, seed 201, all faults', () => {
    expectHealthy(run(4, '2-chain', 'mixed', 201, ALL, 'ed25519'));
  }, 180_000);
});

/** What proves a fault kind was played, beyond the run being healthy. */
function expectPlayed(kind: string, r: OrderingRunResult): void {
  const ctx = context(r);
  const acted = (prefix = `${kind}:`): number => Object.entries(r.byzantineActions).reduce((s, [a, v]) => s + (a.startsWith(prefix) ? v : 0), 0);
  const scenario: Record<string, RegExp> = {
    crash: /^crash: replica \d+ at/,
    partition: /^partition: /,
    loss: /loss [1-9]|loss 0\.[1-9]/,
    duplicate: /dup [1-9]|dup 0\.[1-9]/,
    clockSkew: /^clocks: /,
    clockChaos: /^clocks: .*beyond Δ/,
    wipe: /^wipe: /,
    restoreCrash: /^restore crash: /,
  };
  const pattern = scenario[kind] ?? new RegExp(`^byzantine( clients)?: .*=${kind}\\b`);
  expect(r.scenario.some((line) => pattern.test(line)), ctx).toBe(true);
  // A wiped replica came back by installing a checkpoint from its peers (after a crash in the
  // middle of the first transfer, for restoreCrash).
  if (kind === 'wipe' || kind === 'restoreCrash' || kind === 'corruptChunks') expect(r.installs, ctx).toBeGreaterThan(0);
  if (kind in scenario) return;
  expect(acted(), ctx).toBeGreaterThan(0);
  const leaderAttack = (LEADER_ATTACK_KINDS as readonly string[]).includes(kind) && kind !== 'equivocate';
  // Correct replicas saw the bad block (or seal) and refused it.
  if (leaderAttack || kind === 'fakeSeal') expect(r.faultsReported.invalidPayload ?? 0, ctx).toBeGreaterThan(0);
  if (leaderAttack) expect(r.timeouts, ctx).toBeGreaterThan(0);
  if (kind === 'garbage') expect(r.rejectedFrames + (r.faultsReported.badSignature ?? 0), ctx).toBeGreaterThan(0);
  if (kind === 'corruptChunks') expect(r.faultsReported.badCheckpointChunk ?? 0, ctx).toBeGreaterThan(0);
  if (kind === 'alwaysLate') expect(r.refusalsSent.late ?? 0, ctx).toBeGreaterThan(0);
  if (kind === 'alwaysBusy') expect(r.refusalsSent.busy ?? 0, ctx).toBeGreaterThan(0);
  if (kind === 'medianPicker') expect(r.fairness.maxByzantineMedianShiftUs, ctx).toBeGreaterThan(0);
  if (kind === 'duplicateSubmitter') expect(r.duplicateCommands, ctx).toBeGreaterThan(0);
  if (kind === 'slotHog') expect(r.refusalsSent.busy ?? 0, ctx).toBeGreaterThan(0);
  // The accomplice acked a hostage the correct replicas no longer held, and claimed a far frontier.
  if (kind === 'withholdCoalition') {
    expect(r.byzantineActions['withholdCoalition:hostagesAcked'] ?? 0, ctx).toBeGreaterThan(0);
    expect(r.byzantineActions['withholdCoalition:sealInflated'] ?? 0, ctx).toBeGreaterThan(0);
  }
  // Replicas restarted with stamps ahead of their clock, and refused to stamp past an expiry.
  if (kind === 'expiryCoalition') {
    expect(r.scenario.some((line) => line.startsWith('quick restart:')), ctx).toBe(true);
    expect(r.refusalsSent.expired ?? 0, ctx).toBeGreaterThan(0);
  }
  // Every correct replica refused what was sent in another client's name (phase 1).
  if (kind === 'impersonatingClient' || kind === 'impersonatingReplica') expect(r.refusalsSent.badSignature ?? 0, ctx).toBeGreaterThan(0);
  // Connections came and went at every replica (the run's registry check compared what each holds).
  if (kind === 'registrationFlooder') expect(r.byzantineActions['registrationFlooder:closed'] ?? 0, ctx).toBeGreaterThan(0);
  if (kind === 'flooder') {
    // The flood outgrew one connection's bound; its key's budget refused the excess (admission
    // control, ordering/admission.ts) or the store filled to the bound; it held less than the flood.
    expect(r.floodBatches, ctx).toBeGreaterThan(MAX_PENDING_BATCHES_PER_CONNECTION);
    expect((r.refusalsSent.overloaded ?? 0) > 0 || r.maxPendingBatches >= MAX_PENDING_BATCHES_PER_CONNECTION, ctx).toBe(true);
    expect(r.maxPendingBatches, ctx).toBeLessThan(r.floodBatches);
  }
}

describe('full simulation, one fault kind at a time, at n=4 and n=7', () => {
  // Seeds picked so the named threat is played (a Byzantine leader must get a turn to lead).
  const seedOf: Record<string, Partial<Record<4 | 7, number>>> = {
    duplicateEntries: { 4: 841 },
    slotGap: { 4: 872, 7: 897 },
    equivocate: { 4: 891, 7: 897 },
    wrongUnion: { 7: 857 },
    outOfRange: { 7: 892 },
    conflictingVote: { 4: 901 },
    fakeSeal: { 4: 841 },
    dropEntries: { 7: 857 },
    fewSeals: { 7: 892 },
    // A wiped replica back by state transfer (after a crash in the middle of it, for restoreCrash).
    wipe: { 4: 1011, 7: 767 },
    restoreCrash: { 4: 771, 7: 786 },
    // Seeds where the attack lands: with the protocol before issue 11's fixes, these withholdCoalition
    // seeds stall the cluster for good (no loss: a sequenced batch never executes) and the
    // expiryCoalition ones execute batches past their expiry. expiryCoalition at n=4 was seed 2
    // until issue 12's signed batches moved its timing (no restarted replica was then asked to
    // stamp past an expiry); seed 8 plays it since, not re-checked against the old rules.
    withholdCoalition: { 4: 970, 7: 975 },
    expiryCoalition: { 4: 8, 7: 3 },
  };
  const cases = ORDERING_FAULT_KINDS.flatMap((kind, i) =>
    ([4, 7] as const).map((n) => ({
      kind,
      n,
      rule: RULES[(i + (n === 7 ? 1 : 0)) % 2]!,
      modes: ((i + (n === 7 ? 1 : 0)) % 2 === 0 ? 'gateway' : 'direct') as ClientModes,
      seed: seedOf[kind]?.[n] ?? 700 + i * 10 + (n === 7 ? 5 : 0),
    })),
  );
  it.each(cases)('$kind: n=$n $rule $modes seed $seed', ({ kind, n, rule, modes, seed }) => {
    const r = run(n, rule, modes, seed, new Set([kind]));
    expectHealthy(r);
    expectPlayed(kind, r);
  });
});

describe('determinism', () => {
  it('the same seed gives the same run', () => {
    const a = run(4, '2-chain', 'mixed', 77, ALL);
    const b = run(4, '2-chain', 'mixed', 77, ALL);
    const summary = (r: OrderingRunResult): unknown => ({ ...r, realMs: 0 });
    expect(summary(b)).toEqual(summary(a));
    // And another seed gives another run (the comparison above is not vacuous).
    const c = run(4, '2-chain', 'mixed', 78, ALL);
    expect([c.messagesSent, c.scenario]).not.toEqual([a.messagesSent, a.scenario]);
  });
});

// Found by the full sweep: with two impersonating replicas each answered the other's forgeries with
// forgeries, an echo per submit that never ended, and the run never finished. Without the fix this
// test fails on the world's event budget (MAX_EVENTS_PER_RUN) instead of hanging; before that
// budget existed it hung (vitest cannot interrupt a synchronous run).
it('two impersonating replicas in one run both forge, every forgery is refused, and the run ends (n=7 3-chain direct seed 1662)', () => {
  const r = run(7, '3-chain', 'direct', 1662, ALL);
  const ctx = context(r);
  expect(r.scenario.filter((line) => /byzantine: .*=impersonatingReplica.*=impersonatingReplica/.test(line)), ctx).toHaveLength(1);
  expect(r.byzantineActions['impersonatingReplica:forged'] ?? 0, ctx).toBeGreaterThan(1);
  expect(r.refusalsSent.badSignature ?? 0, ctx).toBeGreaterThan(0);
  expectHealthy(r);
});

// Seeds that once failed (a describe block would need at least one).
for (const s of KNOWN_FAILING_SEEDS_FIXED) {
  it(`once failing: n=${s.n} ${s.rule} ${s.modes} seed ${s.seed} (${s.note})`, () => {
    expectHealthy(run(s.n, s.rule, s.modes, s.seed, s.faults === 'all' ? ALL : new Set(s.faults)));
  });
}
