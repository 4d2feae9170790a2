/**
 * The protocol section of the cluster config: timing and size parameters every replica must share.
 * Validation lives here; the cluster-wide part (replicas, keys, ports) is in config.ts.
 */
import { MAX_WIRE_INTEGER } from './ids.js';
import { describeJsonType, fieldPath, type JsonObject, type Problems, readInteger, readObject } from './json-input.js';
import { MAX_ACKS_PER_SLOT, MAX_BATCH_BYTES, MAX_BATCH_LIFETIME_US } from './limits.js';

export type CommitRule = '2-chain' | '3-chain';
export const COMMIT_RULES: readonly CommitRule[] = ['2-chain', '3-chain'];

export interface ProtocolConfig {
  /** '3-chain': classic chained HotStuff; '2-chain': DiemBFT v4 / Jolteon (DESIGN.md "HotStuff"). */
  readonly commitRule: CommitRule;
  /** Start of slot 0 in µs since the Unix epoch; replicas refuse timestamps below it. */
  readonly genesisUs: number;
  /** Slot length: slot(ts) = ⌊(ts − genesisUs) / slotUs⌋. */
  readonly slotUs: number;
  /** Δ: how far behind the clock a replica seals (frontier = slot(now − Δ)), and how far ahead of
   *  it a median timestamp may be (else `early`). */
  readonly deltaUs: number;
  /** First view timeout; doubled on each consecutive timeout up to maxViewTimeoutMs. */
  readonly viewTimeoutMs: number;
  readonly maxViewTimeoutMs: number;
  /** Least time between two proposals of one leader. */
  readonly minBlockIntervalUs: number;
  /** Time between proposals when there is nothing new (pipeline fillers). */
  readonly idleBlockIntervalUs: number;
  /** Largest batch this cluster accepts; at most MAX_BATCH_BYTES. */
  readonly maxBatchBytes: number;
  /** Longest a batch may live (expiresAtUs − the replica's clock); at most MAX_BATCH_LIFETIME_US. */
  readonly batchLifetimeUs: number;
  /** Most acks a replica gives into one slot (then `busy`), at most MAX_ACKS_PER_SLOT; one source
   *  may take half of them (ordering/slotShares.ts). Optional in the file. */
  readonly maxAcksPerSlot: number;
  /** K: every replica takes a checkpoint after executing the first committed block whose slot
   *  range crosses a multiple of K slots (ordering/checkpoints.ts). Optional in the file. */
  readonly checkpointIntervalSlots: number;
}

/** Shortest slot: below it per-slot bookkeeping (seal ranges, per-slot ack counts) grows with no
 *  gain, as clocks of separate machines do not agree to better than ~100 µs anyway. */
export const MIN_SLOT_US = 100;

/** Shortest checkpoint interval: a checkpoint snapshots the whole state machine, so taking one
 *  every few blocks would cost more than it saves. */
export const MIN_CHECKPOINT_INTERVAL_SLOTS = 10;

/** Longest delay a JavaScript timer honours (2^31 − 1 ms); a longer one fires at once. Every
 *  interval and timeout in the protocol section is run by a timer. */
export const MAX_TIMER_MS = 2_147_483_647;
const MAX_TIMER_US = MAX_TIMER_MS * 1000;

/**
 * Defaults for a loopback or LAN cluster (the benchmark setting). genesisUs is a placeholder:
 * whoever creates a cluster sets it, normally to the current time.
 */
export const DEFAULT_PROTOCOL: ProtocolConfig = {
  // Classic HotStuff, as libhotstuff and Pompe-HS run it, so figures compare.
  commitRule: '3-chain',
  genesisUs: 0,
  // A batch waits for its slot to close (up to one slot) before it can be sealed: 5 ms keeps that
  // well inside the 20 ms light-load exec target, at a modest 200 slots per second.
  slotUs: 5_000,
  // Liveness needs clock skew plus the ordering phase below Δ. On a LAN skew is under 1 ms and
  // the ordering phase ~2 ms; every millisecond of Δ is added to exec latency.
  deltaUs: 10_000,
  // A healthy view takes milliseconds; 1 s rides out GC pauses yet replaces a crashed leader fast.
  viewTimeoutMs: 1_000,
  // Caps the exponential backoff so a healed partition resynchronises within half a minute.
  maxViewTimeoutMs: 30_000,
  // At most ~1000 proposals per second: bounds per-block signature and seal work at peak load.
  minBlockIntervalUs: 1_000,
  // An idle cluster still proposes fillers so earlier blocks commit, without spinning.
  idleBlockIntervalUs: 50_000,
  // ~25k 32-byte commands with their tags: far above the ~1k-command batches that peak throughput.
  maxBatchBytes: 1024 * 1024,
  // A batch not sequenced within 30 s is stale; bounds how long executed digests are remembered.
  batchLifetimeUs: 30_000_000,
  // The most a slot's seals may list (MAX_ACKS_PER_SLOT); smaller values only lower capacity.
  maxAcksPerSlot: MAX_ACKS_PER_SLOT,
  // 1000 slots of 5 ms: a checkpoint every 5 s. A restart replays at most about two intervals of
  // blocks, and a replica keeps about two intervals of history for peers that lag; at peak load
  // (~5 MB of batches per second) that is tens of MB, and taking one costs the default key-value
  // store a few ms per 100,000 keys.
  checkpointIntervalSlots: 1_000,
};

type IntegerField = Exclude<keyof ProtocolConfig, 'commitRule'>;

/** Each integer field's range. Cross-field rules are checked after, in readProtocolConfig. */
const INTEGER_RANGES: Readonly<Record<IntegerField, readonly [min: number, max: number]>> = {
  genesisUs: [0, MAX_WIRE_INTEGER],
  slotUs: [MIN_SLOT_US, MAX_WIRE_INTEGER],
  deltaUs: [1, MAX_TIMER_US],
  viewTimeoutMs: [1, MAX_TIMER_MS],
  maxViewTimeoutMs: [1, MAX_TIMER_MS],
  minBlockIntervalUs: [1, MAX_TIMER_US],
  idleBlockIntervalUs: [1, MAX_TIMER_US],
  maxBatchBytes: [1, MAX_BATCH_BYTES],
  batchLifetimeUs: [1, MAX_BATCH_LIFETIME_US],
  maxAcksPerSlot: [1, MAX_ACKS_PER_SLOT],
  // Below ~10 slots a checkpoint would follow almost every block.
  checkpointIntervalSlots: [MIN_CHECKPOINT_INTERVAL_SLOTS, MAX_WIRE_INTEGER],
};

/** Fields a cluster file may leave out (added after clusters were made); they take DEFAULT_PROTOCOL's value. */
const OPTIONAL_FIELDS: ReadonlySet<IntegerField> = new Set(['maxAcksPerSlot', 'checkpointIntervalSlots']);

/** The protocol fields in file order (also the order formatProtocolConfig writes them in). */
export const PROTOCOL_FIELDS: readonly (keyof ProtocolConfig)[] = ['commitRule', ...(Object.keys(INTEGER_RANGES) as IntegerField[])];
const REQUIRED_FIELDS = PROTOCOL_FIELDS.filter((f) => !OPTIONAL_FIELDS.has(f as IntegerField));

/** Validates the `protocol` object of a cluster config; reports every problem under `path`. */
export function readProtocolConfig(value: unknown, path: string, problems: Problems): ProtocolConfig | undefined {
  const obj = readObject(value, path, REQUIRED_FIELDS, [...OPTIONAL_FIELDS], problems);
  if (obj === undefined) return undefined;
  const commitRule = readCommitRule(obj, path, problems);
  const values: Partial<Record<IntegerField, number>> = {};
  for (const [name, [min, max]] of Object.entries(INTEGER_RANGES) as [IntegerField, readonly [number, number]][]) {
    if (OPTIONAL_FIELDS.has(name) && !Object.hasOwn(obj, name)) {
      values[name] = DEFAULT_PROTOCOL[name];
      continue;
    }
    const v = readInteger(obj, name, path, min, max, problems);
    if (v !== undefined) values[name] = v;
  }
  const atLeast = (a: IntegerField, b: IntegerField, why: string): void => {
    const va = values[a];
    const vb = values[b];
    if (va !== undefined && vb !== undefined && va < vb) {
      problems.add(`${fieldPath(path, a)} (${va}) must be at least ${fieldPath(path, b)} (${vb}): ${why}`);
    }
  };
  atLeast('deltaUs', 'slotUs', 'a replica seals whole slots, so Δ must cover at least one');
  atLeast('maxViewTimeoutMs', 'viewTimeoutMs', 'it caps the backoff that starts at viewTimeoutMs');
  atLeast('idleBlockIntervalUs', 'minBlockIntervalUs', 'an idle leader proposes no faster than a busy one');
  if (commitRule === undefined || Object.keys(values).length !== Object.keys(INTEGER_RANGES).length) return undefined;
  return { commitRule, ...(values as Record<IntegerField, number>) };
}

function readCommitRule(obj: JsonObject, path: string, problems: Problems): CommitRule | undefined {
  if (!Object.hasOwn(obj, 'commitRule')) return undefined;
  const value = obj['commitRule'];
  if (typeof value === 'string' && (COMMIT_RULES as readonly string[]).includes(value)) return value as CommitRule;
  problems.add(`${fieldPath(path, 'commitRule')} must be one of ${COMMIT_RULES.map((r) => `"${r}"`).join(', ')}, got ${describeJsonType(value)}`);
  return undefined;
}

/** The protocol section as a plain object with the fields in file order. */
export function protocolConfigToJson(protocol: ProtocolConfig): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const name of PROTOCOL_FIELDS) out[name] = protocol[name];
  return out;
}
