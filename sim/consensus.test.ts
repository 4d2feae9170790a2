/**
 * The CI seed set for the consensus-only simulation: fixed seeds at n = 4 and n = 7, both commit
 * rules, all faults at once and each fault kind alone (so every kind of THREATS.md is played by
 * name), a few runs with real Ed25519 and the bulk with the fast simulated signatures. Each run must
 * satisfy every checker (agreement, liveness after GST, no double vote) and commit after GST.
 * The longer random sweep is scripts/sim-sweep.sh; a seed it finds failing becomes an entry of
 * KNOWN_FAILING_SEEDS_FIXED once fixed.
 */
import { describe, expect, it } from 'vitest';
import { type SimCrypto, CONSENSUS_FAULT_KINDS, runConsensusSeed, type ConsensusRunResult } from './consensusRun.js';
import type { CommitRule } from '../consensus/types.js';

const RULES: readonly CommitRule[] = ['3-chain', '2-chain'];
const ALL = new Set(CONSENSUS_FAULT_KINDS);

/** Seeds a sweep found failing, kept after the fix as regression tests:
 *  `{ n, rule, seed, faults, crypto, note: 'what broke and where it was fixed' }`.
 *  A failing seed found by scripts/sim-sweep.sh (or `npm run sim`) becomes an entry here. */
const KNOWN_FAILING_SEEDS_FIXED: readonly {
  readonly n: number;
  readonly rule: CommitRule;
  readonly seed: number;
  readonly faults: readonly string[] | 'all';
  readonly crypto: SimCrypto;
  readonly note: string;
}[] = [];

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function run(n: number, rule: CommitRule, seed: number, faults: ReadonlySet<string>, crypto: SimCrypto, afterGstUs?: number): ConsensusRunResult {
  return runConsensusSeed({ seed, n, rule, faults, crypto, ...(afterGstUs === undefined ? {} : { afterGstUs }) });
}

/** Zero violations, and the slowest correct replica kept committing after GST. */
function expectHealthy(r: ConsensusRunResult): void {
  const context = `n=${r.n} ${r.rule} seed ${r.seed}: ${r.scenario.join(' | ')}`;
  expect(r.violations, context).toEqual([]);
  expect(r.maxHeight, context).toBeGreaterThan(0);
  expect(r.commitsPerSecond, context).toBeGreaterThan(10);
}

describe.each(RULES)('consensus simulation, %s, all faults', (rule) => {
  it.each(range(1, 16))('n=4 seed %i (fast crypto)', (seed) => {
    expectHealthy(run(4, rule, seed, ALL, 'fast'));
  });

  it.each(range(101, 106))('n=7 seed %i (fast crypto)', (seed) => {
    expectHealthy(run(7, rule, seed, ALL, 'fast'));
  });

  it.each([201, 202])('n=4 seed %i (Ed25519)', (seed) => {
    expectHealthy(run(4, rule, seed, ALL, 'ed25519', 8_000_000));
  });

  it('n=7 seed 301 (Ed25519)', () => {
    expectHealthy(run(7, rule, 301, ALL, 'ed25519', 6_000_000));
  });
});

describe('consensus simulation, one fault kind at a time', () => {
  const cases = CONSENSUS_FAULT_KINDS.flatMap((kind, i) => [
    { kind, n: 4, rule: RULES[0]!, seed: 400 + i },
    { kind, n: 4, rule: RULES[1]!, seed: 400 + i },
    { kind, n: 7, rule: RULES[i % 2]!, seed: 500 + i },
  ]);
  it.each(cases)('$kind: n=$n $rule seed $seed', ({ kind, n, rule, seed }) => {
    const r = run(n, rule, seed, new Set([kind]), 'fast');
    expectHealthy(r);
    // The scenario really played the fault it is named after.
    const played: Record<string, RegExp> = {
      crash: /^crash: replica \d+ at/,
      partition: /^partition: /,
      loss: /loss [1-9]|loss 0\.[1-9]/,
      duplicate: /dup [1-9]|dup 0\.[1-9]/,
    };
    const pattern = played[kind] ?? new RegExp(`^byzantine: .*=${kind}\\b`);
    expect(r.scenario.some((line) => pattern.test(line)), r.scenario.join(' | ')).toBe(true);
  });
});

describe('crash-restart in the simulation', () => {
  it.each(RULES)('%s: correct replicas crash and restart from storage, and never double-vote', (rule) => {
    let crashes = 0;
    for (const seed of [601, 602, 603, 604]) {
      const r = run(4, rule, seed, new Set(['crash', 'loss', 'partition']), 'fast');
      crashes += r.scenario.filter((l) => l.startsWith('crash:')).length;
      expect(r.violations.filter((v) => v.startsWith('double vote') || v.startsWith('vote after timeout'))).toEqual([]);
      expectHealthy(r);
    }
    expect(crashes).toBeGreaterThanOrEqual(4);
  });
});

describe('determinism', () => {
  it('the same seed gives the same run', () => {
    const a = run(4, '2-chain', 77, ALL, 'fast');
    const b = run(4, '2-chain', 77, ALL, 'fast');
    expect(b.maxHeight).toBe(a.maxHeight);
    expect(b.messagesSent).toBe(a.messagesSent);
    expect(b.commitsPerSecond).toBe(a.commitsPerSecond);
    expect(b.scenario).toEqual(a.scenario);
    expect(b.faultsReported).toEqual(a.faultsReported);
    expect(b.rejectedFrames).toBe(a.rejectedFrames);
    // And another seed gives another run (the comparison above is not vacuous).
    const c = run(4, '2-chain', 78, ALL, 'fast');
    expect([c.messagesSent, c.scenario]).not.toEqual([a.messagesSent, a.scenario]);
  });
});

// Seeds that once failed (a describe block would need at least one).
for (const s of KNOWN_FAILING_SEEDS_FIXED) {
  it(`once failing: n=${s.n} ${s.rule} seed ${s.seed} (${s.note})`, () => {
    expectHealthy(run(s.n, s.rule, s.seed, s.faults === 'all' ? ALL : new Set(s.faults), s.crypto));
  });
}
