/**
 * Batch bytes between replicas: serving them to peers (from memory, else from storage through the
 * driver), and fetching the ones this replica lacks — for a block it is about to vote on, or for a
 * committed entry it must execute — then telling whoever waited.
 */
import { toHex } from '../common/bytes.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import { MAX_SYNC_RESPONSE_BYTES } from '../common/limits.js';
import type { BatchStore } from './batchStore.js';
import type { CoreContext } from './context.js';
import { Fetcher } from './fetcher.js';

/** A batch fetch moves on to the next holder after this long. */
const FETCH_RETRY_US = 200_000;
/** The fetcher's waiter names for execution and for this replica's next proposal (block waiters
 *  are 'b' + block key). */
const EXECUTION_WAITER = 'x';
const PROPOSAL_WAITER = 'p';

/** A batch to fetch, and the replicas to ask first (the others follow). */
export interface Wanted {
  readonly digest: Digest;
  readonly holders: readonly ReplicaId[];
}

export interface BatchSupplyParts {
  readonly batches: BatchStore;
  /** Bytes of a batch pending in phase 1, if any (served like held ones). */
  readonly pendingBytes: (digestKey: string) => Uint8Array | undefined;
  /** Every batch a block waited for is now durable here. */
  readonly onBlockReady: (block: Digest) => void;
  /** A batch a seal offered to this replica's next proposal arrived. */
  readonly onProposalBytes: () => void;
  /** A batch execution waited for arrived. */
  readonly onExecutionUnblocked: () => void;
}

export class BatchSupply {
  private readonly fetcher: Fetcher;
  /** Blocks waiting for batch bytes before this replica votes: block key → its view and the
   *  number of batches still missing. */
  private readonly blockWaits = new Map<string, { digest: Digest; view: number; missing: number }>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly parts: BatchSupplyParts,
  ) {
    this.fetcher = new Fetcher(ctx.self, ctx.config.n, FETCH_RETRY_US);
  }

  /** Batches being fetched. */
  get fetching(): number {
    return this.fetcher.size;
  }

  nextDueUs(): number | null {
    return this.fetcher.nextDueUs();
  }

  /** A block of `view` waits for these batches (each with the replicas to ask first) before a vote. */
  waitForBlock(block: Digest, blockKey: string, view: number, missing: readonly Wanted[]): void {
    for (const m of missing) this.fetcher.want(m.digest, m.holders, `b${blockKey}`);
    this.blockWaits.set(blockKey, { digest: block, view, missing: missing.length });
  }

  /** A replica votes only in its current view: waits for blocks of earlier views are dead. */
  abandonBlocksBefore(view: number): void {
    for (const [key, wait] of this.blockWaits) {
      if (wait.view >= view) continue;
      this.blockWaits.delete(key);
      this.fetcher.cancel(`b${key}`);
    }
  }

  /** The next proposal would use seals listing these batches (each asked of its sealer first). */
  wantForProposal(missing: readonly Wanted[]): void {
    for (const m of missing) this.fetcher.want(m.digest, m.holders, PROPOSAL_WAITER);
  }

  /** This replica proposed, or stopped leading: the bytes its seals offered are no longer awaited. */
  endProposalWait(): void {
    this.fetcher.cancel(PROPOSAL_WAITER);
  }

  /**
   * Makes sure this replica durably holds a batch it has the bytes of: already durable, or pending
   * from phase 1 (stamped, never acked here: persisted now, before the message that relies on it
   * leaves). False if the bytes are not here.
   */
  holdDurably(digest: Digest, key: string): boolean {
    const { batches } = this.parts;
    if (batches.isDurable(key)) return true;
    const bytes = this.parts.pendingBytes(key);
    if (bytes === undefined) return false;
    batches.putDurable(key, bytes);
    this.ctx.out.persist.push({ kind: 'batch', digest, bytes });
    return true;
  }

  /** Execution waits for this batch. */
  wantForExecution(digest: Digest, holders: readonly ReplicaId[]): void {
    this.fetcher.want(digest, holders, EXECUTION_WAITER);
  }

  serve(to: ReplicaId, digests: readonly Digest[]): void {
    const out = this.ctx.out;
    const found: Uint8Array[] = [];
    const fromStorage: Digest[] = [];
    let bytes = 0;
    for (const d of digests) {
      const key = toHex(d);
      const held = this.parts.batches.get(key) ?? this.parts.pendingBytes(key);
      if (held === undefined) {
        fromStorage.push(d);
        continue;
      }
      if (found.length > 0 && bytes + held.length > MAX_SYNC_RESPONSE_BYTES) {
        out.toPeers.push({ to, msg: { type: 'batchResponse', batches: found.splice(0) } });
        bytes = 0;
      }
      found.push(held);
      bytes += held.length;
    }
    if (found.length > 0) out.toPeers.push({ to, msg: { type: 'batchResponse', batches: found } });
    if (fromStorage.length > 0) out.serveBatches.push({ to, digests: fromStorage });
  }

  /** Bytes from a peer: kept (durably) if wanted, and whoever waited is told. */
  onBytes(bytes: Uint8Array): void {
    const { ctx } = this;
    const digest = ctx.crypto.sha256(bytes);
    const key = toHex(digest);
    if (!this.fetcher.isWanted(key)) return;
    if (this.parts.batches.putDurable(key, bytes)) ctx.out.persist.push({ kind: 'batch', digest, bytes });
    let execute = false;
    let propose = false;
    for (const waiter of this.fetcher.arrived(key)) {
      if (waiter === EXECUTION_WAITER) {
        execute = true;
        continue;
      }
      if (waiter === PROPOSAL_WAITER) {
        propose = true;
        continue;
      }
      const blockKey = waiter.slice(1);
      const wait = this.blockWaits.get(blockKey);
      if (wait === undefined) continue;
      if (--wait.missing > 0) continue;
      this.blockWaits.delete(blockKey);
      this.parts.onBlockReady(wait.digest);
    }
    if (execute) this.parts.onExecutionUnblocked();
    if (propose) this.parts.onProposalBytes();
  }

  /** Sends the fetch requests that are due. */
  flush(): void {
    for (const r of this.fetcher.due(this.ctx.nowUs)) this.ctx.out.toPeers.push({ to: r.to, msg: { type: 'batchRequest', digests: r.digests } });
  }
}
