/**
 * One seeded run of the full simulation: n replicas of the real ReplicaCore and simulated clients
 * (direct and gateway mode) on the virtual network, with network faults, clock offsets and drift,
 * crash-restarts and Byzantine replicas drawn from the seed; every property of DESIGN.md "What must
 * hold" checked. Same seed and options, same run.
 */
import { toHex } from '../common/bytes.js';
import { generateCluster, type ClusterConfig } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { CommitRule } from '../consensus/types.js';
import { SignatureAudit } from './audit.js';
import { BYZANTINE_CLIENT_KINDS } from './byzantineClient.js';
import { ClientNode } from './clientNode.js';
import { Coalition, COALITION_KINDS, coalitionBehaviour, type CoalitionKind, HOSTAGE_ADMISSION_LIMITS } from './coalitions.js';
import { createFastCrypto } from './fastCrypto.js';
import { NETWORK_FAULTS } from './faults.js';
import { LEADER_ATTACK_KINDS } from './leaderAttacks.js';
import { type NetworkProfile, SimNetwork } from './network.js';
import { OrderingChecker, type FairnessSummary } from './orderingChecker.js';
import { ORDERING_BYZANTINE_KINDS, type OrderingByzantineKind, orderingBehaviour } from './orderingByzantine.js';
import { type ClientModes, createClients, planClients, plannedClientNodes, SLOT_HOG_ACKS_PER_SLOT } from './orderingClients.js';
import { PendingMonitor, replicaTotals, RunStats } from './orderingStats.js';
import { ReplicaNode, type ReplicaObserver } from './replicaNode.js';
import { Rng } from './rng.js';
import { World } from './world.js';

export type { ClientModes };

/** Clock faults: offsets and drift within the liveness assumption, and beyond it (safety only). */
export const CLOCK_FAULTS = ['clockSkew', 'clockChaos'] as const;
/** Lost stores (issue 13): a correct replica wiped and rejoining by state transfer, one that
 *  crashes in the middle of that transfer, and a Byzantine peer serving corrupt or stale checkpoint
 *  pieces (a Byzantine kind, which brings a wipe with it). Listed last, so the kinds before keep
 *  their place (and the seeds CI picked for them). */
export const CHECKPOINT_FAULTS = ['wipe', 'restoreCrash', 'corruptChunks'] as const;
export const ORDERING_FAULT_KINDS: readonly string[] = [
  ...NETWORK_FAULTS,
  ...CLOCK_FAULTS,
  ...ORDERING_BYZANTINE_KINDS.filter((k) => k !== 'corruptChunks'),
  ...BYZANTINE_CLIENT_KINDS,
  ...COALITION_KINDS,
  ...CHECKPOINT_FAULTS,
];

export interface OrderingRunOptions {
  readonly seed: number;
  readonly n: number;
  readonly rule: CommitRule;
  readonly faults: ReadonlySet<string>;
  readonly crypto: 'ed25519' | 'fast';
  readonly modes: ClientModes;
  readonly afterGstUs?: number;
}

export interface OrderingRunResult {
  readonly seed: number;
  readonly n: number;
  readonly rule: CommitRule;
  readonly modes: ClientModes;
  readonly scenario: readonly string[];
  readonly violations: readonly string[];
  readonly fairness: FairnessSummary;
  readonly batchesSubmitted: number;
  readonly batchesExecuted: number;
  readonly commandsExecuted: number;
  /** Commands a correct replica skipped as already executed (same client id and sequence number). */
  readonly duplicateCommands: number;
  /** Highest committed height at a correct replica, and blocks per second after GST at the slowest. */
  readonly maxHeight: number;
  readonly commitsPerSecond: number;
  /** Distinct view timeouts signed by correct replicas, and the highest view one reached. */
  readonly timeouts: number;
  readonly maxView: number;
  /** Refusals counted by correct replicas (what they refused) … */
  readonly refusals: Readonly<Record<string, number>>;
  /** … and refusals every replica sent, Byzantine ones included (what collectors were told). */
  readonly refusalsSent: Readonly<Record<string, number>>;
  readonly faultsReported: Readonly<Record<string, number>>;
  readonly rejectedFrames: number;
  /** What the Byzantine replicas and clients actually did, by action. */
  readonly byzantineActions: Readonly<Record<string, number>>;
  /** Checkpoints correct replicas took, restores from one at a restart, installs from peers. */
  readonly checkpointsTaken: number;
  readonly restores: number;
  readonly installs: number;
  /** Phase-1 batches a flooder sent, and the most any correct replica held pending at once. */
  readonly floodBatches: number;
  readonly maxPendingBatches: number;
  readonly maxClockSkewUs: number;
  readonly execLatencyP50Us: number;
  readonly gstUs: number;
  readonly endUs: number;
  readonly messagesSent: number;
  readonly realMs: number;
}

/** Protocol timing for simulated links of up to ~20 ms: Δ must exceed clock skew plus the
 *  ordering phase (two round trips); timeouts a few times a view's duration. */
const SIM_PROTOCOL = {
  genesisUs: 0,
  slotUs: 10_000,
  deltaUs: 150_000,
  viewTimeoutMs: 300,
  maxViewTimeoutMs: 2_400,
  minBlockIntervalUs: 10_000,
  idleBlockIntervalUs: 50_000,
  batchLifetimeUs: 30_000_000,
  // 50 slots of 10 ms: a checkpoint every half second, so a run of seconds takes many, prunes
  // below them, and a replica down for a few seconds falls behind its peers' pruned horizon.
  checkpointIntervalSlots: 50,
};
/** Clock skew within the assumption (skew + ordering phase < Δ) and far beyond it. */
const SKEW_WITHIN_US = 30_000;
const SKEW_BEYOND_US = 600_000;
const DRIFT_PPM = 200;
/** After GST every correct client's command must execute within this bound. */
const LIVENESS_BOUND_US = 6_000_000;
const DEFAULT_AFTER_GST_US = 10_000_000;
/** How long a replica's write group takes to become durable: an fsync on a local disk, now and
 *  then a slow one. Drawn from a stream of its own (seeded per run and replica), so the other
 *  random choices of a seed stay as they were. */
const WRITE_LATENCY_US: readonly [number, number] = [50, 2_000];
const WRITE_SLOW_US: readonly [number, number] = [5_000, 20_000];
const WRITE_SLOW_CHANCE = 0.02;
const WRITE_LATENCY_SEED = 0x5eed_5eed;
/** Clients stop submitting this long before the end, so everything can drain and be checked. */
const DRAIN_US = 4_000_000;
/** A correct replica that is up must have executed, by the end, what others executed this long before. */
const CATCH_UP_US = 2_000_000;
/** How often the pending stores are sampled while a flooder runs. */
const PENDING_SAMPLE_US = 100_000;
/** Coalitions are drawn from a stream of their own, so a seed's other choices stay as they were
 *  when no coalition is drawn; with other faults on, one is drawn in half of the runs. */
const COALITION_SEED = 0xc0a1;
const COALITION_CHANCE = 0.5;
/** The expiry coalition's quick crash-restarts of correct replicas: how many, and how long each
 *  is down (well inside the 250 ms timestamp reservation, so it restarts with stamps ahead). */
const QUICK_RESTARTS = 3;
const QUICK_RESTART_DOWN_US: readonly [number, number] = [20_000, 80_000];
/** Of the runs whose faults allow it, the share that wipes a replica's store: a wiped replica is
 *  amnesiac (it lost its votes and acks), so it takes a Byzantine replica's place in the fault
 *  budget, and always would leave too few runs with Byzantine replicas. Drawn from a stream of its
 *  own (like the write latencies), so a seed's other choices stay as they were. */
const WIPE_CHANCE = 0.35;
const WIPE_SEED = 0x3197_c0de;
/** A wiped replica stays down long enough for its peers to take and prune past a few checkpoints. */
const WIPE_DOWN_US: readonly [number, number] = [1_500_000, 3_000_000];
/** How often a replica meant to crash during its state transfer is looked at. */
const RESTORE_CRASH_POLL_US = 5_000;

export function runOrderingSeed(opts: OrderingRunOptions): OrderingRunResult {
  const started = performance.now();
  const rng = new Rng(opts.seed);
  const crypto: CryptoBackend = opts.crypto === 'fast' ? createFastCrypto() : nodeCrypto;
  const { config: baseConfig, keyPairs } = generateCluster(
    { n: opts.n, keySeed: `sim-${opts.n}`, protocol: { ...SIM_PROTOCOL, commitRule: opts.rule } },
    crypto,
  );
  let config = baseConfig;
  const { n, f } = config;
  const scenario: string[] = [`seed ${opts.seed}, n=${n}, ${opts.rule}, clients ${opts.modes}`];
  const faulty = opts.faults.size > 0;
  const gstUs = faulty ? rng.int(1_000_000, 3_000_000) : 0;
  const endUs = gstUs + (opts.afterGstUs ?? DEFAULT_AFTER_GST_US);

  const coalitionRng = new Rng((opts.seed * 131) ^ COALITION_SEED);
  const coalitionKind = drawCoalition(coalitionRng, opts.faults, f);
  const plan = planClients(rng, opts.faults, null);
  // A slot hog gets slots small enough to fill (the cap is a protocol parameter, the same at every replica).
  if (plan.byzantine.includes('slotHog')) config = { ...config, protocol: { ...config.protocol, maxAcksPerSlot: SLOT_HOG_ACKS_PER_SLOT } };
  const profile: NetworkProfile = {
    baseLatencyUs: [rng.int(100, 1_000), rng.int(2_000, 15_000)],
    jitterMeanUs: rng.int(100, 3_000),
    maxJitterAfterGstUs: 5_000,
    lossBeforeGst: opts.faults.has('loss') ? rng.float() * 0.1 : 0,
    duplicate: opts.faults.has('duplicate') ? rng.float() * 0.05 : 0,
    gstUs,
  };
  scenario.push(
    `network: links ${profile.baseLatencyUs[0]}–${profile.baseLatencyUs[1]} µs + jitter ${profile.jitterMeanUs} µs, ` +
      `loss ${(profile.lossBeforeGst * 100).toFixed(1)}%, dup ${(profile.duplicate * 100).toFixed(1)}%, GST ${gstUs / 1e6} s`,
  );
  const network = new SimNetwork(rng.fork(), n + plannedClientNodes(plan) + (coalitionKind === null ? 0 : 1), profile);
  const world = new World(network);

  const byzantineKinds = ORDERING_BYZANTINE_KINDS.filter((k) => opts.faults.has(k));
  const byzantine = new Map<number, OrderingByzantineKind>();
  if (byzantineKinds.length > 0 && f > 0) {
    for (const r of rng.shuffle([...Array(n).keys()]).slice(0, rng.int(1, f))) byzantine.set(r, rng.pick(byzantineKinds));
    placeLeaderAttack(rng, byzantine);
  }
  const coalition = coalitionKind === null ? null : formCoalition(coalitionRng, coalitionKind, byzantine, n, f);
  const isCorrect = (r: number): boolean => !byzantine.has(r) && coalition?.replicas.includes(r as ReplicaId) !== true;
  const wipe = planWipe(opts, byzantine, f, coalition !== null);

  const chaos = opts.faults.has('clockChaos');
  const skewUs = chaos ? SKEW_BEYOND_US : opts.faults.has('clockSkew') ? SKEW_WITHIN_US : 0;
  const clocks = [...Array(n).keys()].map(() => ({ offsetUs: rng.int(-skewUs, skewUs), driftPpm: skewUs === 0 ? 0 : rng.int(-DRIFT_PPM, DRIFT_PPM) }));
  if (skewUs > 0) scenario.push(`clocks: ${clocks.map((c) => `${(c.offsetUs / 1000).toFixed(1)}ms/${c.driftPpm}ppm`).join(', ')}${chaos ? ' (beyond Δ: safety only)' : ''}`);

  const checker = new OrderingChecker(n, config.q, isCorrect, crypto.sha256);
  const stats = new RunStats(checker, isCorrect, gstUs, crypto.sha256);
  const audit = new SignatureAudit();
  const byzantineActions: Record<string, number> = {};
  const report = (action: string): void => void (byzantineActions[action] = (byzantineActions[action] ?? 0) + 1);
  const replicas: ReplicaNode[] = [];
  const behaviourNames: string[] = [];
  const impersonatorKeys = new Set([...byzantine].filter(([, kind]) => kind === 'impersonatingReplica').map(([i]) => toHex(keyPairs[i]!.publicKey)));
  for (let i = 0; i < n; i++) {
    const base = crypto.signer(keyPairs[i]!.secretKey);
    const kind = byzantine.get(i);
    const inCoalition = coalition?.replicas.includes(i as ReplicaId) === true;
    const behaviourCtx = { rng: inCoalition ? coalitionRng.fork() : rng.fork(), config, crypto, signer: base, checker, report, impersonatorKeys };
    const behaviour = inCoalition ? coalitionBehaviour(coalition!, behaviourCtx) : kind === undefined ? null : orderingBehaviour(kind, behaviourCtx);
    if (behaviour !== null) behaviourNames.push(`${i}=${behaviour.name}`);
    // Writes take time and a crash loses those in flight, so what a correct replica promised is
    // audited by what left it, not by what it signed (sim/audit.ts).
    const writes = new Rng((opts.seed * 31 + i) ^ WRITE_LATENCY_SEED);
    const observer: ReplicaObserver =
      behaviour === null
        ? {
            onExecuted: (r, records, atUs) => stats.onExecuted(r, records, atUs),
            onCommit: (r, commits, atUs) => stats.onCommit(r, commits, atUs),
            onSent: (r, msg, atUs) => {
              stats.onSent(r, msg, atUs);
              audit.observeSent(r, msg, atUs);
            },
            onRestart: (r) => stats.onRestart(r),
            onCheckpoint: (r, checkpoint, atUs) => stats.onCheckpoint(r, checkpoint, atUs),
            onInstall: (r, checkpoint, atUs) => stats.onInstall(r, checkpoint, atUs),
          }
        : stats;
    const node = new ReplicaNode({
      id: i as ReplicaId,
      world,
      config,
      crypto,
      signer: base,
      clock: clocks[i]!,
      observer,
      behaviour,
      writeLatencyUs: () => (writes.chance(WRITE_SLOW_CHANCE) ? writes.int(...WRITE_SLOW_US) : writes.int(...WRITE_LATENCY_US)),
      ...(coalitionKind === 'withholdCoalition' ? { admissionLimits: HOSTAGE_ADMISSION_LIMITS } : {}),
    });
    replicas.push(node);
    world.add(node);
  }
  if (behaviourNames.length > 0) scenario.push(`byzantine: ${behaviourNames.join(', ')}`);
  if (coalitionKind === 'withholdCoalition') scenario.push(`admission: ${HOSTAGE_ADMISSION_LIMITS.clientBatchesPerSecond} batches a second per key (the default would stop the hostage's eviction)`);

  const stopAtUs = endUs - DRAIN_US;
  const clients = createClients({
    plan: { ...plan, coalition },
    rng,
    world,
    config,
    crypto,
    checker,
    modes: opts.modes,
    firstId: n,
    stopAtUs,
    gstUs,
    batchLifetimeUs: SIM_PROTOCOL.batchLifetimeUs,
    register: (node, publicKey) => {
      for (const r of replicas) r.registerClient(node, publicKey);
    },
    unregister: (conn) => {
      for (const r of replicas) r.unregisterClient(conn);
    },
    report,
  });
  if (coalition !== null) scenario.push(`coalition: ${coalition.kind} of replicas ${coalition.replicas.join(',')} and client ${clients.byzantine.at(-1)!.id}`);
  scenario.push(`clients: ${plan.correct} correct (${opts.modes})`);
  if (clients.byzantine.length > 0) scenario.push(`byzantine clients: ${clients.byzantine.map((b) => `${b.id}=${b.kind}`).join(', ')}`);
  // A withholdCoalition client floods its own connection with junk too (to evict its hostages).
  const floodingConnections = clients.flooders.length + clients.hostageTaps.length;
  const pending = new PendingMonitor(world, replicas, isCorrect, floodingConnections, () => stats.gatewayBatches.size + clients.directBatches());
  if (floodingConnections > 0) pending.schedule(PENDING_SAMPLE_US, endUs);

  scheduleCrashesAndPartitions(rng, opts.faults, world, network, replicas, isCorrect, gstUs, scenario);
  if (coalition?.kind === 'expiryCoalition') scheduleQuickRestarts(coalitionRng, world, replicas, isCorrect, coalition, f, stopAtUs, scenario);
  if (wipe !== null) scheduleWipe(wipe, world, replicas, isCorrect, audit, gstUs, scenario);

  for (const r of replicas) r.start();
  clients.start();
  world.run(endUs);

  const upCorrect = replicas.filter((r) => isCorrect(r.id) && r.up).map((r) => r.id as number);
  // Byzantine clients are owed nothing; correct clients are owed liveness unless clocks break Δ.
  const correctIds = new Set(clients.correct.map((c) => c.id));
  // Judged: commands submitted from GST on, early enough that the bound ends within the run.
  const registryViolations: string[] = [];
  const liveness = chaos ? null : { fromUs: gstUs, untilUs: endUs, boundUs: LIVENESS_BOUND_US, clients: (c: number) => correctIds.has(c) };
  const fairness = checker.finish(upCorrect, clients.records, liveness);
  // Client connections come and go (registrationFlooder): a correct replica holds exactly the open ones.
  for (const r of replicas) {
    if (!isCorrect(r.id) || r.core === null || r.core.clientConnections === r.openClientConnections) continue;
    registryViolations.push(`replica ${r.id} holds ${r.core.clientConnections} client connections, ${r.openClientConnections} are open`);
  }
  checker.checkCaughtUp(new Map(upCorrect.map((r) => [r, replicas[r]!.core!.status().executedBatches])), endUs - CATCH_UP_US);

  const totals = replicaTotals(replicas.filter((r) => isCorrect(r.id)));
  const floodBatches = clients.flooders.reduce((s, c) => s + c.sent, 0);
  const count = (action: string, value: number): void => {
    if (value > 0) byzantineActions[action] = (byzantineActions[action] ?? 0) + value;
  };
  for (const tap of clients.medianPickers) count('medianPicker:picks', tap.picksMade);
  for (const tap of clients.partialSequencers) count('partialSequence:withheld', tap.withheld);
  count('flooder:batches', floodBatches);
  for (const tap of clients.hostageTaps) {
    count('withholdCoalition:hostages', tap.hostages);
    count('withholdCoalition:junk', tap.junkSent);
    count('withholdCoalition:hostagesAcked', tap.hostagesAcked);
    for (const [reason, v] of Object.entries(tap.junkRefusals)) count(`withholdCoalition:junk-${reason}`, v);
    for (const [reason, v] of Object.entries(tap.accompliceRefusals)) count(`withholdCoalition:accomplice-${reason}`, v);
  }
  for (const tap of clients.stretchTaps) count('expiryCoalition:stretchedOcs', tap.stretched);
  for (const b of clients.byzantine) if (b.kind === 'slotHog') count('slotHog:batches', clients.records.filter((r) => r.client === b.id).length);
  for (const b of clients.byzantine) if (b.kind === 'duplicateSubmitter' && b.node instanceof ClientNode) count('duplicateSubmitter:resent', b.node.duplicatesSent);
  const latencies = clients.records
    .filter((r) => r.executedUs !== null && correctIds.has(r.client))
    .map((r) => r.executedUs! - r.submitUs)
    .sort((a, b) => a - b);
  return {
    seed: opts.seed,
    n,
    rule: opts.rule,
    modes: opts.modes,
    scenario,
    violations: [...checker.violations, ...audit.violations, ...pending.violations, ...registryViolations, ...replicas.flatMap((r) => r.durabilityViolations.slice(0, 5))],
    fairness: { ...fairness, lateRetries: clients.correct.reduce((s, c) => s + (c.stats?.restarts ?? 0), 0) },
    batchesSubmitted: clients.records.filter((r) => r.digest !== null).length,
    ...totals,
    maxHeight: stats.maxHeight(upCorrect),
    commitsPerSecond: stats.commitsPerSecondAfterGst(upCorrect, endUs),
    timeouts: stats.timeouts,
    refusalsSent: stats.refusalsSent,
    byzantineActions,
    floodBatches,
    checkpointsTaken: checker.checkpointsTaken,
    restores: replicas.filter((r) => isCorrect(r.id)).reduce((s, r) => s + r.restores, 0),
    installs: replicas.filter((r) => isCorrect(r.id)).reduce((s, r) => s + r.installs, 0),
    maxPendingBatches: pending.maxBatches,
    maxClockSkewUs: Math.max(...clocks.map((c) => c.offsetUs)) - Math.min(...clocks.map((c) => c.offsetUs)),
    execLatencyP50Us: latencies.length === 0 ? 0 : latencies[Math.floor(latencies.length / 2)]!,
    gstUs,
    endUs,
    messagesSent: world.stats.messagesSent,
    realMs: performance.now() - started,
  };
}

/** Draws the coalition of the run, if its fault set names any (see COALITION_CHANCE). */
function drawCoalition(rng: Rng, faults: ReadonlySet<string>, f: number): CoalitionKind | null {
  const kinds = COALITION_KINDS.filter((k) => faults.has(k));
  if (kinds.length === 0 || f === 0) return null;
  const only = [...faults].every((k) => (kinds as readonly string[]).includes(k));
  return only || rng.chance(COALITION_CHANCE) ? rng.pick(kinds) : null;
}

/**
 * The coalition's Byzantine replicas: one for withholding; for stretching expiries as many as the
 * f allowed (the quick restarts make up the rest of the f+1 stamps past an expiry). Replicas already
 * Byzantine in other ways give up their place, so at most f are Byzantine in all.
 */
function formCoalition(rng: Rng, kind: CoalitionKind, byzantine: Map<number, OrderingByzantineKind>, n: number, f: number): Coalition {
  const size = kind === 'expiryCoalition' ? f : 1;
  const members = rng.shuffle([...Array(n).keys()]).slice(0, size) as ReplicaId[];
  for (const m of members) byzantine.delete(m);
  for (const r of [...byzantine.keys()]) if (byzantine.size + size > f) byzantine.delete(r);
  return new Coalition(kind, members);
}

/** Crash-restarts of correct replicas, each down for a moment only: after it, their timestamps
 *  come from their durable reservation, ahead of their clock. Enough of them at once that with the
 *  coalition's replicas f+1 stamps can lie past an expiry. */
function scheduleQuickRestarts(
  rng: Rng,
  world: World,
  replicas: readonly ReplicaNode[],
  isCorrect: (r: number) => boolean,
  coalition: Coalition,
  f: number,
  untilUs: number,
  scenario: string[],
): void {
  const correct = replicas.filter((r) => isCorrect(r.id)).map((r) => r.id as number);
  const together = Math.max(1, f + 1 - coalition.replicas.length);
  for (let i = 0; i < QUICK_RESTARTS; i++) {
    const at = rng.int(500_000, Math.max(600_000, untilUs - 1_000_000));
    const down = rng.int(...QUICK_RESTART_DOWN_US);
    const chosen = rng.shuffle(correct).slice(0, together);
    scenario.push(`quick restart: replicas ${chosen.join(',')} at ${at / 1e6} s for ${down / 1000} ms`);
    for (const r of chosen) {
      world.at(at, () => {
        if (replicas[r]!.up) replicas[r]!.crash();
      });
      world.at(at + down, () => {
        if (!replicas[r]!.up) replicas[r]!.restart();
      });
    }
  }
}

/** Replica 0 proposes first (it proposed genesis) and leads until a view times out; with stable
 *  leaders a Byzantine leader elsewhere may never get a turn in a calm run. Half the time, a leader
 *  attack is moved onto replica 0, so the attack is surely played. */
function placeLeaderAttack(rng: Rng, byzantine: Map<number, OrderingByzantineKind>): void {
  const attacker = [...byzantine].find(([, kind]) => (LEADER_ATTACK_KINDS as readonly string[]).includes(kind));
  if (!rng.chance(0.5) || attacker === undefined || byzantine.has(0)) return;
  byzantine.delete(attacker[0]);
  byzantine.set(0, attacker[1]);
}

interface WipePlan {
  readonly rng: Rng;
  /** Crash it again once its state transfer has written a first chunk. */
  readonly crashDuringRestore: boolean;
}

/** Whether this run wipes a store; if so, trims the Byzantine replicas to leave it room in f (a
 *  'corruptChunks' replica may stay: it lies only about checkpoint pieces, and needs a replica
 *  fetching them to lie to). */
function planWipe(opts: OrderingRunOptions, byzantine: Map<number, OrderingByzantineKind>, f: number, coalition: boolean): WipePlan | null {
  const rng = new Rng((opts.seed * 131) ^ WIPE_SEED);
  const corrupting = [...byzantine.values()].includes('corruptChunks');
  const wanted = corrupting || ((opts.faults.has('wipe') || opts.faults.has('restoreCrash')) && rng.chance(WIPE_CHANCE));
  // A coalition takes its own share of f: no wipe beside it.
  if (!wanted || f === 0 || coalition) return null;
  // The wiped replica takes one place of f; the Byzantine replicas keep the rest.
  let room = f - 1;
  for (const [r, kind] of [...byzantine]) {
    if (kind === 'corruptChunks') continue;
    if (room > 0) room--;
    else byzantine.delete(r);
  }
  return { rng, crashDuringRestore: opts.faults.has('restoreCrash') && rng.chance(0.5) };
}

/** Wipes a correct replica's store before GST and restarts it empty after WIPE_DOWN_US. */
function scheduleWipe(plan: WipePlan, world: World, replicas: readonly ReplicaNode[], isCorrect: (r: number) => boolean, audit: SignatureAudit, gstUs: number, scenario: string[]): void {
  const { rng } = plan;
  const victim = rng.pick(replicas.filter((r) => isCorrect(r.id)));
  const at = rng.int(500_000, Math.max(600_000, gstUs));
  const restartAt = at + rng.int(...WIPE_DOWN_US);
  scenario.push(`wipe: replica ${victim.id}'s store at ${at / 1e6} s, restarted empty at ${restartAt / 1e6} s${plan.crashDuringRestore ? ', crashed again during its state transfer' : ''}`);
  world.at(at, () => {
    audit.forget(victim.id);
    victim.wipe();
  });
  world.at(restartAt, () => {
    if (!victim.up) victim.restart();
    if (plan.crashDuringRestore) watchTransfer();
  });
  // Crashes the victim as soon as its transfer has written a chunk (before it completes), once.
  const watchTransfer = (): void => {
    const transfer = victim.core?.status().stateTransfer;
    if (transfer !== undefined && transfer !== null && transfer.chunksDone > 0 && transfer.chunksDone < transfer.chunks) {
      const back = world.nowUs + rng.int(100_000, 800_000);
      scenario.push(`restore crash: replica ${victim.id} at ${world.nowUs / 1e6} s (${transfer.chunksDone}/${transfer.chunks} chunks), restart at ${back / 1e6} s`);
      victim.crash();
      world.at(back, () => {
        if (!victim.up) victim.restart();
      });
      return;
    }
    if (victim.installs === 0 && world.nowUs < restartAt + 10_000_000) world.at(world.nowUs + RESTORE_CRASH_POLL_US, watchTransfer);
  };
}

function scheduleCrashesAndPartitions(
  rng: Rng,
  faults: ReadonlySet<string>,
  world: World,
  network: SimNetwork,
  replicas: readonly ReplicaNode[],
  isCorrect: (r: number) => boolean,
  gstUs: number,
  scenario: string[],
): void {
  const n = replicas.length;
  const correct = replicas.filter((r) => isCorrect(r.id)).map((r) => r.id as number);
  if (faults.has('crash') && correct.length > 0) {
    const f = Math.floor((n - 1) / 3);
    const crashes = rng.int(1, Math.max(1, f));
    for (let c = 0; c < crashes; c++) {
      const r = rng.pick(correct);
      const at = rng.int(200_000, Math.max(300_000, gstUs - 300_000));
      const restartAt = Math.min(gstUs, at + rng.int(50_000, 2_000_000));
      scenario.push(`crash: replica ${r} at ${at / 1e6} s, restart at ${restartAt / 1e6} s`);
      world.at(at, () => replicas[r]!.crash());
      world.at(restartAt, () => {
        if (!replicas[r]!.up) replicas[r]!.restart();
      });
    }
  }
  if (faults.has('partition')) {
    let t = rng.int(0, 500_000);
    const windows = rng.int(1, 3);
    for (let w = 0; w < windows && t < gstUs; w++) {
      const heal = Math.min(gstUs, t + rng.int(100_000, 1_500_000));
      // Clients stay connected to everyone; partitions split the replicas.
      const groups = [...Array(network.size).keys()].map((i) => (i < n ? rng.int(0, 1) : -1));
      const view = groups.slice(0, n);
      scenario.push(`partition: replicas [${view.join(',')}] from ${t / 1e6} s to ${heal / 1e6} s`);
      world.at(t, () => network.partition(groups));
      world.at(heal, () => network.heal());
      t = heal + rng.int(0, 500_000);
    }
  }
}

export type { ClusterConfig };
