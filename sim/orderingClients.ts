/**
 * The clients of a full-simulation run, drawn from the seed: 2–4 correct clients (direct, gateway
 * or alternating), plus, when the fault set names Byzantine client kinds, one or two Byzantine
 * clients (sim/byzantineClient.ts). Node ids follow the replicas: n, n+1, …
 */
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { MAX_PENDING_BATCHES_PER_CONNECTION } from '../common/limits.js';
import { BYZANTINE_CLIENT_KINDS, type ByzantineClientKind, FloodClient, ImpersonatorClient, MedianPickerTap, RegistrationFlooder, PartialSequenceTap } from './byzantineClient.js';
import { ClientNode, simClientSigner, type ClientMode, type ClientRecord, type CollectorTap } from './clientNode.js';
import { type Coalition, type CoalitionKind, ExpiryStretchTap, HostageTap } from './coalitions.js';
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
/** A slot hog keeps this many single-command batches in flight from one connection, one every
 *  interval — far more per slot than its share of SLOT_HOG_ACKS_PER_SLOT — for a few seconds
 *  around stabilisation (the liveness judged after it must hold meanwhile). */
const SLOT_HOG_WINDOW = 32;
const SLOT_HOG_INTERVAL_US = 400;
const SLOT_HOG_RUN_US = 4_000_000;
/** The slot capacity of runs with a slot hog (the protocol's maxAcksPerSlot), small enough for
 *  one simulated client to fill. */
export const SLOT_HOG_ACKS_PER_SLOT = 8;
/** The expiry coalition's batches live this long: past it by the time a restarted replica's
 *  reservation stamps them, still alive for the others' stamps. */
const STRETCH_LIFETIME_US = 80_000;
const STRETCH_INTERVAL_US = 2_000;
const STRETCH_WINDOW = 16;
/** An impersonator tries a forged batch and a forged thin command this often. */
const IMPERSONATOR_INTERVAL_US = 20_000;
/** The registration flooder: a few fresh connections every 10 ms, ~50 kept open, the rest closed;
 *  its connection numbers start far above any node id. */
const REGISTRATION_FLOOD_INTERVAL_US = 10_000;
const REGISTRATION_FLOOD_PER_WAKE = 4;
const REGISTRATION_FLOOD_KEEP = 50;
const REGISTRATION_FLOOD_FIRST_CONN = 1_000_000;

/** What is drawn before the network exists (it needs the node count). */
export interface ClientPlan {
  readonly correct: number;
  readonly byzantine: readonly ByzantineClientKind[];
  /** A coalition's client, drawn apart (sim/coalitions.ts). */
  readonly coalition: Coalition | null;
}

export function planClients(rng: Rng, faults: ReadonlySet<string>, coalition: Coalition | null): ClientPlan {
  const correct = rng.int(2, 4);
  const kinds = BYZANTINE_CLIENT_KINDS.filter((k) => faults.has(k));
  const count = kinds.length === 0 ? 0 : rng.int(1, Math.min(2, kinds.length));
  return { correct, byzantine: Array.from({ length: count }, () => rng.pick(kinds)), coalition };
}

/** Nodes the plan's clients take on the network. */
export const plannedClientNodes = (plan: ClientPlan): number => plan.correct + plan.byzantine.length + (plan.coalition === null ? 0 : 1);

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
  /** When the network stabilises (GST). */
  readonly gstUs: number;
  readonly batchLifetimeUs: number;
  /** Proves a client node's key at every replica (the transport's handshake, done directly). */
  readonly register: (node: number, publicKey: Uint8Array) => void;
  /** A client connection closed at every replica (only the registration flooder closes any). */
  readonly unregister: (conn: number) => void;
  /** Counts what a Byzantine client did, for the run summary. */
  readonly report: (action: string) => void;
}

export interface ClientSetup {
  readonly correct: readonly ClientNode[];
  readonly byzantine: readonly { readonly kind: ByzantineClientKind | CoalitionKind; readonly id: number; readonly node: ClientNode | FloodClient | ImpersonatorClient | RegistrationFlooder }[];
  readonly records: ClientRecord[];
  readonly medianPickers: readonly MedianPickerTap[];
  readonly partialSequencers: readonly PartialSequenceTap[];
  readonly flooders: readonly FloodClient[];
  readonly hostageTaps: readonly HostageTap[];
  readonly stretchTaps: readonly ExpiryStretchTap[];
  /** Distinct batches direct-mode collectors (correct and Byzantine, flooders aside) formed so far. */
  directBatches(): number;
  start(): void;
}

export function createClients(o: ClientSetupOptions): ClientSetup {
  const records: ClientRecord[] = [];
  interface Extra {
    tap?: CollectorTap;
    duplicates?: boolean;
    batchLifetimeUs?: number;
    commandsPerBatch?: number;
    window?: number;
    intervalUs?: number;
    startAtUs?: number;
    stopAtUs?: number;
  }
  const base = (id: number, mode: ClientMode, extra: Extra = {}): ClientNode =>
    new ClientNode({
      id,
      world: o.world,
      config: o.config,
      crypto: o.crypto,
      rng: o.rng.fork(),
      mode,
      commandsPerBatch: extra.commandsPerBatch ?? o.rng.int(1, 8),
      window: extra.window ?? o.rng.int(1, 4),
      intervalUs: extra.intervalUs ?? o.rng.int(5_000, 40_000),
      startAtUs: extra.startAtUs ?? o.rng.int(50_000, 300_000),
      stopAtUs: extra.stopAtUs ?? o.stopAtUs,
      batchLifetimeUs: extra.batchLifetimeUs ?? o.batchLifetimeUs,
      failoverUs: 2_000_000,
      records,
      register: o.register,
      ...(extra.tap === undefined ? {} : { tap: extra.tap }),
      ...(extra.duplicates === undefined ? {} : { duplicates: extra.duplicates }),
    });
  const modeOf = (c: number): ClientMode => (o.modes === 'mixed' ? (c % 2 === 0 ? 'direct' : 'gateway') : o.modes);

  const correct: ClientNode[] = [];
  for (let c = 0; c < o.plan.correct; c++) correct.push(base(o.firstId + c, modeOf(c)));

  const byzantine: { kind: ByzantineClientKind | CoalitionKind; id: number; node: ClientNode | FloodClient | ImpersonatorClient | RegistrationFlooder }[] = [];
  const medianPickers: MedianPickerTap[] = [];
  const partialSequencers: PartialSequenceTap[] = [];
  const flooders: FloodClient[] = [];
  o.plan.byzantine.forEach((kind, i) => {
    const id = o.firstId + o.plan.correct + i;
    let node: ClientNode | FloodClient | ImpersonatorClient | RegistrationFlooder;
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
      case 'slotHog': {
        const startAtUs = Math.max(0, o.gstUs - o.rng.int(0, SLOT_HOG_RUN_US / 2));
        node = base(id, 'direct', { window: SLOT_HOG_WINDOW, intervalUs: SLOT_HOG_INTERVAL_US, commandsPerBatch: 1, startAtUs, stopAtUs: Math.min(o.stopAtUs, startAtUs + SLOT_HOG_RUN_US) });
        break;
      }
      case 'flooder': {
        const flooder = new FloodClient({
          id,
          world: o.world,
          config: o.config,
          crypto: o.crypto,
          register: o.register,
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
      case 'impersonatingClient':
        node = new ImpersonatorClient({
          id,
          world: o.world,
          config: o.config,
          crypto: o.crypto,
          rng: o.rng.fork(),
          register: o.register,
          victims: correct.map((c) => c.signer.publicKey),
          startAtUs: o.rng.int(0, 500_000),
          stopAtUs: o.stopAtUs,
          intervalUs: IMPERSONATOR_INTERVAL_US,
          batchLifetimeUs: o.batchLifetimeUs,
          report: o.report,
        });
        break;
      case 'registrationFlooder':
        node = new RegistrationFlooder({
          id,
          world: o.world,
          config: o.config,
          crypto: o.crypto,
          register: o.register,
          unregister: o.unregister,
          startAtUs: o.rng.int(0, 500_000),
          stopAtUs: o.stopAtUs,
          intervalUs: REGISTRATION_FLOOD_INTERVAL_US,
          perWake: REGISTRATION_FLOOD_PER_WAKE,
          keep: REGISTRATION_FLOOD_KEEP,
          firstConn: REGISTRATION_FLOOD_FIRST_CONN + i * 10_000_000,
          report: o.report,
        });
        break;
    }
    byzantine.push({ kind, id, node });
  });
  const coalition = o.plan.coalition;
  const hostageTaps: HostageTap[] = [];
  const stretchTaps: ExpiryStretchTap[] = [];
  if (coalition !== null) {
    const id = o.firstId + o.plan.correct + o.plan.byzantine.length;
    let node: ClientNode;
    if (coalition.kind === 'withholdCoalition') {
      const tap = new HostageTap(coalition, o.config, o.crypto, o.rng.fork(), simClientSigner(o.crypto, id), o.rng.int(500_000, 1_500_000));
      hostageTaps.push(tap);
      node = base(id, 'direct', { tap });
    } else {
      const tap = new ExpiryStretchTap(coalition, o.config, o.crypto);
      stretchTaps.push(tap);
      node = base(id, 'direct', { tap, batchLifetimeUs: STRETCH_LIFETIME_US, intervalUs: STRETCH_INTERVAL_US, window: STRETCH_WINDOW });
    }
    byzantine.push({ kind: coalition.kind, id, node });
  }
  for (const c of [...correct, ...byzantine.map((b) => b.node)]) o.world.add(c);

  return {
    correct,
    byzantine,
    records,
    medianPickers,
    partialSequencers,
    flooders,
    hostageTaps,
    stretchTaps,
    directBatches: () => records.reduce((s, r) => s + (r.digest === null ? 0 : 1), 0),
    start: () => {
      for (const c of correct) c.start();
      for (const b of byzantine) b.node.start();
    },
  };
}
