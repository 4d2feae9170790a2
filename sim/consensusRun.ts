/**
 * One seeded run of the consensus-only simulation: draw a scenario from the seed (network, faults,
 * Byzantine replicas), run the real cores on the virtual network, check agreement on every commit
 * and liveness at the end. Same seed and options, same run.
 */
import { generateCluster } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { CommitRule } from '../consensus/types.js';
import { SignatureAudit } from './audit.js';
import { ConsensusChecker } from './consensusChecker.js';
import { CONSENSUS_BYZANTINE_KINDS, type ConsensusByzantineKind, consensusBehaviour } from './consensusByzantine.js';
import { ConsensusSimNode } from './consensusNode.js';
import { createFastCrypto } from './fastCrypto.js';
import { NETWORK_FAULTS } from './faults.js';
import { type NetworkProfile, SimNetwork } from './network.js';
import { Rng } from './rng.js';
import { World } from './world.js';

export const CONSENSUS_FAULT_KINDS: readonly string[] = [...NETWORK_FAULTS, ...CONSENSUS_BYZANTINE_KINDS];

export type SimCrypto = 'ed25519' | 'fast';

export interface ConsensusRunOptions {
  readonly seed: number;
  readonly n: number;
  readonly rule: CommitRule;
  readonly faults: ReadonlySet<string>;
  readonly crypto: SimCrypto;
  /** Virtual time simulated after the network stabilises. */
  readonly afterGstUs?: number;
}

export interface ConsensusRunResult {
  readonly seed: number;
  readonly n: number;
  readonly rule: CommitRule;
  readonly scenario: readonly string[];
  readonly violations: readonly string[];
  readonly maxHeight: number;
  /** Blocks committed per virtual second after GST (at the slowest correct replica). */
  readonly commitsPerSecond: number;
  readonly gstUs: number;
  readonly endUs: number;
  readonly messagesSent: number;
  readonly messagesDropped: number;
  readonly rejectedFrames: number;
  readonly faultsReported: Readonly<Record<string, number>>;
  readonly realMs: number;
}

/** Protocol timing for simulation: small timeouts keep runs short; links reach 15 ms + jitter. */
const SIM_VIEW_TIMEOUT_MS = 150;
const SIM_MAX_VIEW_TIMEOUT_MS = 1_200;
const SIM_BLOCK_INTERVAL_US = 20_000;
const SIM_FILLER_BYTES = 64;
/** After GST every correct replica must commit within this bound: a few capped view timeouts for
 *  views to re-synchronise, plus one timeout per Byzantine leader on the way. */
const LIVENESS_BOUND_US = 4 * SIM_MAX_VIEW_TIMEOUT_MS * 1000 + 2_000_000;
const DEFAULT_AFTER_GST_US = 12_000_000;

export function runConsensusSeed(opts: ConsensusRunOptions): ConsensusRunResult {
  const started = performance.now();
  const rng = new Rng(opts.seed);
  const crypto: CryptoBackend = opts.crypto === 'fast' ? createFastCrypto() : nodeCrypto;
  const { config, keyPairs } = generateCluster(
    {
      n: opts.n,
      keySeed: `sim-${opts.n}`,
      protocol: { commitRule: opts.rule, genesisUs: 0, viewTimeoutMs: SIM_VIEW_TIMEOUT_MS, maxViewTimeoutMs: SIM_MAX_VIEW_TIMEOUT_MS },
    },
    crypto,
  );
  const n = config.n;
  const f = config.f;
  const scenario: string[] = [];
  const faulty = opts.faults.size > 0;
  const gstUs = faulty ? rng.int(1_000_000, 4_000_000) : 0;
  const endUs = gstUs + (opts.afterGstUs ?? DEFAULT_AFTER_GST_US);

  const profile: NetworkProfile = {
    baseLatencyUs: [rng.int(100, 1_000), rng.int(2_000, 15_000)],
    jitterMeanUs: rng.int(100, 3_000),
    maxJitterAfterGstUs: 5_000,
    lossBeforeGst: opts.faults.has('loss') ? rng.float() * 0.15 : 0,
    duplicate: opts.faults.has('duplicate') ? rng.float() * 0.1 : 0,
    gstUs,
  };
  scenario.push(
    `network: links ${profile.baseLatencyUs[0]}–${profile.baseLatencyUs[1]} µs + jitter ${profile.jitterMeanUs} µs, ` +
      `loss ${(profile.lossBeforeGst * 100).toFixed(1)}%, dup ${(profile.duplicate * 100).toFixed(1)}%, GST ${gstUs / 1e6} s`,
  );
  const network = new SimNetwork(rng.fork(), n, profile);
  const world = new World(network);

  const byzantineKinds = CONSENSUS_BYZANTINE_KINDS.filter((k) => opts.faults.has(k));
  const byzantine = new Map<number, ConsensusByzantineKind>();
  if (byzantineKinds.length > 0 && f > 0) {
    const count = rng.int(1, f);
    for (const r of rng.shuffle([...Array(n).keys()]).slice(0, count)) byzantine.set(r, rng.pick(byzantineKinds));
    scenario.push(`byzantine: ${[...byzantine].map(([r, k]) => `${r}=${k}`).join(', ')}`);
  }
  const isCorrect = (r: number): boolean => !byzantine.has(r);
  const checker = new ConsensusChecker(n, isCorrect);
  const audit = new SignatureAudit();

  const nodes: ConsensusSimNode[] = [];
  for (let i = 0; i < n; i++) {
    const base = crypto.signer(keyPairs[i]!.secretKey);
    const kind = byzantine.get(i);
    const node = new ConsensusSimNode({
      id: i as ReplicaId,
      world,
      config,
      crypto,
      signer: kind === undefined ? audit.wrap(i, base, () => world.nowUs) : base,
      rng: rng.fork(),
      observer: checker,
      blockIntervalUs: SIM_BLOCK_INTERVAL_US,
      fillerBytes: SIM_FILLER_BYTES,
      behaviour: kind === undefined ? null : consensusBehaviour(kind, rng.fork()),
    });
    nodes.push(node);
    world.add(node);
  }

  const correct = [...Array(n).keys()].filter(isCorrect);
  if (opts.faults.has('crash') && correct.length > 0) {
    const crashes = rng.int(1, Math.max(1, f));
    for (let c = 0; c < crashes; c++) {
      const r = rng.pick(correct);
      const at = rng.int(100_000, Math.max(200_000, gstUs - 300_000));
      const restartAt = Math.min(gstUs, at + rng.int(50_000, 2_000_000));
      scenario.push(`crash: replica ${r} at ${at / 1e6} s, restart at ${restartAt / 1e6} s`);
      world.at(at, () => nodes[r]!.crash());
      world.at(restartAt, () => {
        if (!nodes[r]!.up) nodes[r]!.restart();
      });
    }
  }
  if (opts.faults.has('partition')) {
    let t = rng.int(0, 500_000);
    const windows = rng.int(1, 3);
    for (let w = 0; w < windows && t < gstUs; w++) {
      const heal = Math.min(gstUs, t + rng.int(100_000, 1_500_000));
      const groups = partitionGroups(rng, n);
      scenario.push(`partition: [${groups.join(',')}] from ${t / 1e6} s to ${heal / 1e6} s`);
      world.at(t, () => network.partition(groups));
      world.at(heal, () => network.heal());
      t = heal + rng.int(0, 500_000);
    }
  }

  // A core that throws (an assert: "invariant violated inside the core") ends the run; it is a
  // finding like any violation, reported with the scenario that led to it.
  let thrown: string | null = null;
  try {
    for (const node of nodes) node.start();
    world.run(endUs);
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    thrown = `exception at ${world.nowUs} µs: ${text.split('\n').slice(0, 8).join('\n')}`;
  }

  const upCorrect = correct.filter((r) => nodes[r]!.up);
  if (thrown === null) checker.checkLiveness(upCorrect, gstUs, endUs, LIVENESS_BOUND_US);

  const slowest = upCorrect.length === 0 ? 0 : Math.min(...upCorrect.map((r) => checker.commitTimesUs[r]!.filter((t) => t >= gstUs).length));
  const faultsReported: Record<string, number> = {};
  let rejectedFrames = 0;
  for (const node of nodes) {
    if (node.byzantine) continue;
    rejectedFrames += node.counters.rejectedFrames;
    for (const [k, v] of node.counters.faultsReported) faultsReported[k] = (faultsReported[k] ?? 0) + v;
  }
  return {
    seed: opts.seed,
    n,
    rule: opts.rule,
    scenario,
    violations: [...checker.violations, ...audit.violations, ...(thrown === null ? [] : [thrown])],
    maxHeight: checker.maxHeight,
    commitsPerSecond: slowest / ((endUs - gstUs) / 1e6),
    gstUs,
    endUs,
    messagesSent: world.stats.messagesSent,
    messagesDropped: world.stats.messagesDropped,
    rejectedFrames,
    faultsReported,
    realMs: performance.now() - started,
  };
}

/** A partition: isolate one replica, split in two, or scatter into random groups. */
function partitionGroups(rng: Rng, n: number): number[] {
  switch (rng.int(0, 2)) {
    case 0: {
      const alone = rng.int(0, n - 1);
      return [...Array(n).keys()].map((r) => (r === alone ? 1 : 0));
    }
    case 1: {
      const order = rng.shuffle([...Array(n).keys()]);
      const groups = new Array<number>(n).fill(0);
      order.slice(0, Math.floor(n / 2)).forEach((r) => (groups[r] = 1));
      return groups;
    }
    default:
      return [...Array(n).keys()].map(() => rng.int(0, 2));
  }
}
