/**
 * Admission control at phase 1 (issue 12): what one identity may make this replica do per second.
 * Every batch stamped costs a replica a hash, a signature check, a signature and a pending entry;
 * a thin command costs a signature check at every replica. A client key — or a peer replica's, for
 * its gateway batches — gets a budget of batches and bytes per second (token buckets, with a burst
 * of one second's worth), and a thin client a budget of commands per second; beyond it the request
 * is refused `overloaded` without that work, and a collector backs off (ordering/collector.ts).
 *
 * These caps bound any one key's share; fair service between sources when the replica as a whole
 * is saturated is the driver's job (server/fairInbox.ts), since only it sees the CPU each costs.
 * Budgets are per replica and deterministic given its inputs and clock (time is an input).
 */
import { TokenBucket } from '../common/tokenBucket.js';

/** Batches one key may have stamped per second: 10× what a benchmark client at peak sends (25
 *  batches of 1000 a second, restarts included), ~4× a light-load client's 64 unbatched commands a
 *  second. A key above it is flooding, or should batch its commands: each batch costs every replica
 *  ~0.2 ms of CPU, so 250 a second is ~5% of a core per replica. */
export const CLIENT_BATCHES_PER_SECOND = 250;
/** Batch bytes one key may have stamped per second: ~8× the ~2 MB/s of a benchmark client at peak
 *  with batches of 2000; a client sending maximal 4 MiB batches gets 4 a second. */
export const CLIENT_BATCH_BYTES_PER_SECOND = 16 * 1024 * 1024;
/** Gateway batches one peer replica may have stamped per second: a gateway cuts a batch at least
 *  a millisecond apart by default (ordering/gatewayHost.ts), so an honest one stays under 1000;
 *  its bytes share the per-key byte budget above. */
export const GATEWAY_BATCHES_PER_SECOND = 4_000;
/** Thin commands one key may send its gateway per second: each costs a signature check at every
 *  replica (~80 µs), so one thin client may use at most ~0.15 s of each replica's CPU a second. */
export const THIN_COMMANDS_PER_SECOND_PER_CLIENT = 2_000;
/** Keys with a budget at once: each is three buckets; a key idle for a second is back at a full
 *  bucket anyway, so forgetting the least recently used one loses nothing. */
export const MAX_BUDGETED_KEYS = 65_536;

/** Per-key rates (per second; each bucket holds one second's worth). */
export interface AdmissionLimits {
  readonly clientBatchesPerSecond: number;
  readonly batchBytesPerSecond: number;
  readonly gatewayBatchesPerSecond: number;
  readonly thinCommandsPerSecond: number;
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  clientBatchesPerSecond: CLIENT_BATCHES_PER_SECOND,
  batchBytesPerSecond: CLIENT_BATCH_BYTES_PER_SECOND,
  gatewayBatchesPerSecond: GATEWAY_BATCHES_PER_SECOND,
  thinCommandsPerSecond: THIN_COMMANDS_PER_SECOND_PER_CLIENT,
};

interface Budget {
  readonly batches: TokenBucket;
  readonly bytes: TokenBucket;
  readonly commands: TokenBucket;
}

export class Admission {
  private readonly budgets = new Map<string, Budget>();
  /** Requests refused for a spent budget, by kind. */
  refusedBatches = 0;
  refusedCommands = 0;

  /** `limits` other than the defaults: for simulations that model a deployment with larger
   *  budgets (an attack the default budgets would stop before it lands). */
  constructor(private readonly limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS) {}

  /** May `key` (hex) have a batch of `bytes` stamped now (`gateway`: a peer replica's gateway
   *  batch)? Spends its budget if so. */
  admitBatch(key: string, bytes: number, nowUs: number, gateway = false): boolean {
    const b = this.budget(key, nowUs, gateway);
    // Check both before spending either: a refused batch costs nothing.
    if (b.batches.available(nowUs) < 1 || b.bytes.available(nowUs) < bytes) {
      this.refusedBatches++;
      return false;
    }
    b.batches.take(1, nowUs);
    b.bytes.take(bytes, nowUs);
    return true;
  }

  /** Would admitBatch admit `batches` batches of `bytes` in all now (a submission and those of its
   *  connection still waiting to be stepped)? Spends nothing and remembers no new key: the driver
   *  asks before it queues a client's submission, so that one over its budget is refused before
   *  it waits or costs a step (server/fairInbox.ts). */
  wouldAdmitBatches(key: string, batches: number, bytes: number, nowUs: number): boolean {
    const b = this.budgets.get(key);
    return b === undefined || (b.batches.available(nowUs) >= batches && b.bytes.available(nowUs) >= bytes);
  }

  /** May `key` (hex) send its gateway a thin command now? */
  admitCommand(key: string, nowUs: number): boolean {
    if (this.budget(key, nowUs, false).commands.take(1, nowUs)) return true;
    this.refusedCommands++;
    return false;
  }

  private budget(key: string, nowUs: number, gateway: boolean): Budget {
    let b = this.budgets.get(key);
    if (b !== undefined) {
      // Most recently used at the end.
      this.budgets.delete(key);
    } else {
      b = {
        batches: gateway ? bucket(this.limits.gatewayBatchesPerSecond, nowUs) : bucket(this.limits.clientBatchesPerSecond, nowUs),
        bytes: bucket(this.limits.batchBytesPerSecond, nowUs),
        commands: bucket(this.limits.thinCommandsPerSecond, nowUs),
      };
      if (this.budgets.size >= MAX_BUDGETED_KEYS) this.budgets.delete(this.budgets.keys().next().value as string);
    }
    this.budgets.set(key, b);
    return b;
  }
}

/** A bucket holding one second's worth at `perSecond`. */
const bucket = (perSecond: number, nowUs: number): TokenBucket => new TokenBucket(perSecond, perSecond, nowUs);
