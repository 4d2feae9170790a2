/**
 * The clients of a full-simulation run, drawn from the seed: 2–4 correct clients (direct, gateway
 * or alternating), plus, when the fault set names Byzantine client kinds, one or two Byzantine
 * clients (sim/byzantineClient.ts). Node ids follow the replicas: n, n+1, …
 */
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { MAX_PENDING_BATCHES_PER_CONNECTION } from '../common/limits.js';
import { BYZANTINE_CLIENT_KINDS, type ByzantineClientKind, FloodClient, MedianPickerTap, PartialSequenceTap } from './byzantineClient.js';
import { ClientNode, type ClientMode, type ClientRecord, type CollectorTap } from './clientNode.js';
import type { OrderingChecker } from './orderingChecker.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

export type ClientModes = ClientMode | 'mixed';

/** A partial sequencer's batches expire soon, so its window frees up and it keeps submitting. */
const PARTIAL_SEQUENCE_LIFETIME_US = 1_500_000;
/** The flooder sends this many batches more than one connection's pending bound. */
const FLOOD_EXCESS = 1_500;
const FLOOD_BURST_INTERVAL_US = 10_000;
/** Flood batches outlive any run, so none is pruned as expired: only the bound can limit them. */
const FLOOD_LIFETIME_US = 100_000_000;

/** What is drawn before the network exists (it needs the node count). */
export interface ClientPlan {
  readonly correct: number;
  readonly byzantine: readonly ByzantineClientKind[];
}

export function planClients(rng: Rng, faults: ReadonlySet<string>): ClientPlan {
  const correct = rng.int(2, 4);
  const kinds = BYZANTINE_CLIENT_KINDS.filter((k) => faults.has(k));
  const count = kinds.length === 0 ? 0 : rng.int(1, Math.min(2, kinds.length));
  return { correct, byzantine: Array.from({ length: count }, () => rng.pick(kinds)) };
}

export interface ClientSetupOptions {
  readonly plan: ClientPlan;
  readonly rng: Rng;
  readonly world: World;
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly checker: OrderingChecker;
  readonly modes: ClientModes;
  readonly firstId: number;
  readonly stopAtUs: number;
  readonly batchLifetimeUs: number;
}

export interface ClientSetup {
  readonly correct: readonly ClientNode[];
  readonly byzantine: readonly { readonly kind: ByzantineClientKind; readonly id: number; readonly node: ClientNode | FloodClient }[];
  readonly records: ClientRecord[];
  readonly medianPickers: readonly MedianPickerTap[];
  readonly partialSequencers: readonly PartialSequenceTap[];
  readonly flooders: readonly FloodClient[];
  /** Distinct batches direct-mode collectors (correct and Byzantine, flooders aside) formed so far. */
  directBatches(): number;
  start(): void;
}

export function createClients(o: ClientSetupOptions): ClientSetup {
  const records: ClientRecord[] = [];
  const base = (id: number, mode: ClientMode, extra: { tap?: CollectorTap; duplicates?: boolean; batchLifetimeUs?: number } = {}): ClientNode =>
    new ClientNode({
      id,
      world: o.world,
      config: o.config,
      crypto: o.crypto,
      rng: o.rng.fork(),
      mode,
      commandsPerBatch: o.rng.int(1, 8),
      window: o.rng.int(1, 4),
      intervalUs: o.rng.int(5_000, 40_000),
      startAtUs: o.rng.int(50_000, 300_000),
      stopAtUs: o.stopAtUs,
      batchLifetimeUs: extra.batchLifetimeUs ?? o.batchLifetimeUs,
      failoverUs: 2_000_000,
      records,
      ...(extra.tap === undefined ? {} : { tap: extra.tap }),
      ...(extra.duplicates === undefined ? {} : { duplicates: extra.duplicates }),
    });
  const modeOf = (c: number): ClientMode => (o.modes === 'mixed' ? (c % 2 === 0 ? 'direct' : 'gateway') : o.modes);

  const correct: ClientNode[] = [];
  for (let c = 0; c < o.plan.correct; c++) correct.push(base(o.firstId + c, modeOf(c)));

  const byzantine: { kind: ByzantineClientKind; id: number; node: ClientNode | FloodClient }[] = [];
  const medianPickers: MedianPickerTap[] = [];
  const partialSequencers: PartialSequenceTap[] = [];
  const flooders: FloodClient[] = [];
  o.plan.byzantine.forEach((kind, i) => {
    const id = o.firstId + o.plan.correct + i;
    let node: ClientNode | FloodClient;
    switch (kind) {
      case 'medianPicker': {
        const tap = new MedianPickerTap(o.config, o.crypto, (shift) => {
          o.checker.maxByzantineMedianShiftUs = Math.max(o.checker.maxByzantineMedianShiftUs, shift);
        });
        medianPickers.push(tap);
        node = base(id, 'direct', { tap });
        break;
      }
      case 'partialSequence': {
        const tap = new PartialSequenceTap(o.config, o.rng.fork());
        partialSequencers.push(tap);
        node = base(id, 'direct', { tap, batchLifetimeUs: PARTIAL_SEQUENCE_LIFETIME_US });
        break;
      }
      case 'duplicateSubmitter':
        node = base(id, modeOf(o.rng.int(0, 1)), { duplicates: true });
        break;
      case 'flooder': {
        const flooder = new FloodClient({
          id,
          world: o.world,
          config: o.config,
          rng: o.rng.fork(),
          startAtUs: o.rng.int(0, 500_000),
          stopAtUs: o.stopAtUs,
          total: MAX_PENDING_BATCHES_PER_CONNECTION + FLOOD_EXCESS,
          burstIntervalUs: FLOOD_BURST_INTERVAL_US,
          lifetimeUs: FLOOD_LIFETIME_US,
        });
        flooders.push(flooder);
        node = flooder;
        break;
      }
    }
    byzantine.push({ kind, id, node });
  });
  for (const c of [...correct, ...byzantine.map((b) => b.node)]) o.world.add(c);

  return {
    correct,
    byzantine,
    records,
    medianPickers,
    partialSequencers,
    flooders,
    directBatches: () => records.reduce((s, r) => s + (r.digest === null ? 0 : 1), 0),
    start: () => {
      for (const c of correct) c.start();
      for (const b of byzantine) b.node.start();
    },
  };
}
