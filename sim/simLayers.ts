/**
 * What the simulator CLI can run, by layer name: each layer turns one seed job into one outcome with
 * the same summary fields, so the CLI (sim/cli.ts) and its workers (sim/cliWorker.ts) need not know
 * what a layer simulates. Adding a layer is one entry in LAYERS: `consensus` (HotStuff alone) and
 * `full` (the Pompe replica core: ordering phase, consensus and execution, with clients).
 */
import type { CommitRule } from '../common/config.js';
import { CONSENSUS_FAULT_KINDS, runConsensusSeed, type SimCrypto } from './consensusRun.js';
import { ORDERING_FAULT_KINDS, runOrderingSeed } from './orderingRun.js';

/** How the full layer's correct clients reach the replicas (sim/orderingClients.ts). */
export type SimClientMode = 'direct' | 'gateway' | 'mixed';
export const SIM_CLIENT_MODES: readonly SimClientMode[] = ['direct', 'gateway', 'mixed'];

/** One run, as the CLI asks for it; plain data, so it crosses to a worker thread as is. */
export interface SeedJob {
  readonly layer: string;
  readonly seed: number;
  readonly n: number;
  readonly rule: CommitRule;
  /** Fault kinds, already resolved from the --faults text. */
  readonly faults: readonly string[];
  readonly crypto: SimCrypto;
  /** Virtual time after GST; undefined: the layer's default. */
  readonly afterGstUs: number | undefined;
  /** Client mode, for layers with clients (`usesModes`); undefined otherwise. */
  readonly mode?: SimClientMode;
}

/** The full layer's fairness and ordering summary of one run (THREATS.md "What the run summary
 *  shows"); plain data. */
export interface OrderingOutcome {
  readonly batchesExecuted: number;
  readonly commandsExecuted: number;
  readonly duplicateCommands: number;
  readonly linearizabilityViolations: number;
  readonly overlappingPairs: number;
  readonly overlappingInversions: number;
  /** Refusals sent by replicas (Byzantine ones included), by reason. */
  readonly late: number;
  readonly early: number;
  readonly busy: number;
  readonly timeouts: number;
  readonly maxView: number;
  readonly maxMedianShiftUs: number;
  readonly execLatencyP50Us: number;
  readonly floodBatches: number;
  readonly maxPendingBatches: number;
  readonly byzantineActions: Readonly<Record<string, number>>;
  /** Checkpoints correct replicas took; restarts restored from one; installs fetched from peers. */
  readonly checkpointsTaken: number;
  readonly restores: number;
  readonly installs: number;
}

/** One run's result; plain data, so it crosses back from a worker thread. */
export interface SeedOutcome {
  readonly seed: number;
  readonly n: number;
  readonly rule: CommitRule;
  readonly scenario: readonly string[];
  /** Empty when every checker was satisfied. */
  readonly violations: readonly string[];
  /** Commits per virtual second after GST, at the slowest correct replica. */
  readonly commitsPerSecond: number;
  /** Peer faults (bad signatures, invalid proposals, …) reported by correct replicas, by kind. */
  readonly faultsReported: Readonly<Record<string, number>>;
  /** Frames correct replicas refused to decode. */
  readonly rejectedFrames: number;
  readonly maxHeight: number;
  readonly messagesSent: number;
  readonly realMs: number;
  /** The full layer only. */
  readonly ordering?: OrderingOutcome;
}

export interface SimLayer {
  /** Fault kinds `--faults` may name for this layer (`all` means every one). */
  readonly faultKinds: readonly string[];
  /** The layer has clients and runs once per `--modes` mode. */
  readonly usesModes?: boolean;
  run(job: SeedJob): SeedOutcome;
}

/** The consensus-only simulation (sim/consensusRun.ts). */
const consensusLayer: SimLayer = {
  faultKinds: CONSENSUS_FAULT_KINDS,
  run: (job) => {
    const r = runConsensusSeed({
      seed: job.seed,
      n: job.n,
      rule: job.rule,
      faults: new Set(job.faults),
      crypto: job.crypto,
      ...(job.afterGstUs === undefined ? {} : { afterGstUs: job.afterGstUs }),
    });
    return {
      seed: r.seed,
      n: r.n,
      rule: r.rule,
      scenario: r.scenario,
      violations: r.violations,
      commitsPerSecond: r.commitsPerSecond,
      faultsReported: r.faultsReported,
      rejectedFrames: r.rejectedFrames,
      maxHeight: r.maxHeight,
      messagesSent: r.messagesSent,
      realMs: r.realMs,
    };
  },
};

/** The full simulation (sim/orderingRun.ts): replicas, clients and every threat of THREATS.md. */
const fullLayer: SimLayer = {
  faultKinds: ORDERING_FAULT_KINDS,
  usesModes: true,
  run: (job) => {
    const r = runOrderingSeed({
      seed: job.seed,
      n: job.n,
      rule: job.rule,
      faults: new Set(job.faults),
      crypto: job.crypto,
      modes: job.mode ?? 'mixed',
      ...(job.afterGstUs === undefined ? {} : { afterGstUs: job.afterGstUs }),
    });
    return {
      seed: r.seed,
      n: r.n,
      rule: r.rule,
      scenario: r.scenario,
      violations: r.violations,
      commitsPerSecond: r.commitsPerSecond,
      faultsReported: r.faultsReported,
      rejectedFrames: r.rejectedFrames,
      maxHeight: r.maxHeight,
      messagesSent: r.messagesSent,
      realMs: r.realMs,
      ordering: {
        batchesExecuted: r.batchesExecuted,
        commandsExecuted: r.commandsExecuted,
        duplicateCommands: r.duplicateCommands,
        linearizabilityViolations: r.fairness.linearizabilityViolations,
        overlappingPairs: r.fairness.overlappingPairs,
        overlappingInversions: r.fairness.overlappingInversions,
        late: r.refusalsSent.late ?? 0,
        early: r.refusalsSent.early ?? 0,
        busy: r.refusalsSent.busy ?? 0,
        timeouts: r.timeouts,
        maxView: r.maxView,
        maxMedianShiftUs: r.fairness.maxByzantineMedianShiftUs,
        execLatencyP50Us: r.execLatencyP50Us,
        floodBatches: r.floodBatches,
        maxPendingBatches: r.maxPendingBatches,
        byzantineActions: r.byzantineActions,
        checkpointsTaken: r.checkpointsTaken,
        restores: r.restores,
        installs: r.installs,
      },
    };
  },
};

/** The layers by name. Worker threads load this module afresh, so a layer must be registered
 *  here, at load time; one added later (as tests do) runs only with `--workers 0`. */
export const LAYERS = new Map<string, SimLayer>([
  ['consensus', consensusLayer],
  ['full', fullLayer],
]);

export const LAYER_NAMES: readonly string[] = [...LAYERS.keys()];

/** Runs a job; an exception escaping the layer is reported as a violation, never lost. */
export function runJob(job: SeedJob): SeedOutcome {
  const layer = LAYERS.get(job.layer);
  if (layer === undefined) throw new Error(`unknown simulation layer '${job.layer}'`);
  try {
    return layer.run(job);
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return {
      seed: job.seed,
      n: job.n,
      rule: job.rule,
      scenario: [],
      violations: [`exception: ${text.split('\n').slice(0, 8).join('\n')}`],
      commitsPerSecond: 0,
      faultsReported: {},
      rejectedFrames: 0,
      maxHeight: 0,
      messagesSent: 0,
      realMs: 0,
    };
  }
}
