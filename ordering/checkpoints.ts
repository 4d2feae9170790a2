/**
 * Checkpoints (docs/protocol.md "Checkpoints"). Every correct replica takes the same ones, because
 * they are defined by the committed chain: after executing the first block whose slot range
 * (from, to] crosses a multiple of K = checkpointIntervalSlots, the replica captures its executor's
 * exactly-once state and its state machine's snapshot (the driver writes them, pulling the app's
 * chunks, and feeds back the state digest), then signs (height, toSlot, position, block, state)
 * and broadcasts it. q matching signatures form a certificate anyone can check; when one certifies
 * a checkpoint this replica holds, that checkpoint is stable, and once two are, everything below
 * the older of them is pruned: one checkpoint interval of history stays for peers that lag.
 *
 * A certificate for a checkpoint this replica does not hold (it is behind), or for a state other
 * than the one it holds at that height (its state diverged), goes to state transfer
 * (stateTransfer.ts), which decides whether to fetch it.
 */
import { bitmapCount, bitmapFits, bitmapIndexes, bitmapSet, newBitmap } from '../common/bitmap.js';
import { bytesEqual, toHex } from '../common/bytes.js';
import type { ReplicaId, Slot } from '../common/ids.js';
import type { CheckpointCert, CheckpointMsg, CheckpointStatement } from '../common/messages.js';
import { checkpointMessage } from '../common/signing.js';
import { statementOf, type LocalCheckpoint, type StoredCheckpoint } from './checkpointFormat.js';
import type { CoreContext } from './context.js';
import type { ExecutedBlock } from './execution.js';
import type { Executor } from './executor.js';
import { encodeExecutorState } from './executorState.js';

/** Checkpoint signatures kept per replica, its newest: replicas sign heights in increasing order,
 *  so two let a certificate complete while the next checkpoint's signatures start to arrive. */
const SIGNATURES_KEPT_PER_REPLICA = 2;
/** Stable checkpoints kept; pruning goes below the oldest (one interval of history for laggards). */
const STABLE_KEPT = 2;

export type CertReason = 'ahead' | 'diverged';

export interface CheckpointParts {
  readonly executor: Executor;
  /** A certificate for a checkpoint above this replica's, or for another state at its height. */
  readonly onCert: (cert: CheckpointCert, reason: CertReason) => void;
}

export interface CheckpointStatus {
  /** The latest stable checkpoint this replica holds, and when (its clock, µs) it learnt so. */
  readonly stable: (CheckpointStatement & { readonly sinceUs: number }) | null;
  /** The latest checkpoint it took or installed (stable or not). */
  readonly latest: CheckpointStatement | null;
  /** The highest certificate it knows (possibly for a checkpoint it does not hold). */
  readonly certifiedHeight: number;
  /** Checkpoints captured and not yet written by the driver. */
  readonly writing: number;
}

export class CheckpointKeeper {
  private latest: StoredCheckpoint | null;
  private readonly stable: CheckpointCert[] = [];
  private stableSinceUs = 0;
  private best: CheckpointCert | null;
  /** Heights captured and not yet written (the driver feeds back 'checkpointWritten'). */
  private readonly writing = new Set<number>();
  private readonly signatures = new Map<ReplicaId, CheckpointMsg[]>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly parts: CheckpointParts,
    recovered: LocalCheckpoint | null,
  ) {
    this.latest = recovered;
    this.best = recovered?.cert ?? null;
    if (recovered !== null && recovered.cert !== null) this.stable.push(recovered.cert);
  }

  /** The highest certificate known, to answer a peer that asks (or lags below our pruned blocks). */
  get bestCert(): CheckpointCert | null {
    return this.best;
  }

  status(): CheckpointStatus {
    const stable = this.stable.at(-1);
    return {
      stable: stable === undefined ? null : { ...statementFields(stable), sinceUs: this.stableSinceUs },
      latest: this.latest === null ? null : statementOf(this.latest),
      certifiedHeight: this.best?.height ?? 0,
      writing: this.writing.size,
    };
  }

  /** Execution is through `b`: if its range crosses a multiple of K, capture a checkpoint. */
  onBlockExecuted(b: ExecutedBlock): void {
    const k = this.ctx.config.protocol.checkpointIntervalSlots;
    if (Math.floor(b.fromSlot / k) === Math.floor(b.toSlot / k)) return;
    if (b.block.height <= (this.latest?.manifest.height ?? 0) || this.writing.has(b.block.height)) return;
    const { executor } = this.parts;
    // Replicas forget expired digests at times of their own (every so many committed slots since
    // they started): forgetting here every one that expired before this block's end makes the set
    // the same at every replica (execution is exactly through this block).
    executor.pruneDigests(b.toSlot);
    this.writing.add(b.block.height);
    this.ctx.out.checkpoints.push({
      height: b.block.height,
      toSlot: b.toSlot,
      position: executor.nextPosition,
      block: b.block,
      blockDigest: b.digest,
      executorChunks: encodeExecutorState(executor.state()),
      appChunks: executor.stateMachine.snapshot(),
    });
  }

  /** The driver wrote a captured checkpoint: sign it and tell the others. */
  onWritten(stored: StoredCheckpoint): void {
    const { ctx } = this;
    this.writing.delete(stored.manifest.height);
    if (stored.manifest.height <= (this.latest?.manifest.height ?? 0)) return;
    this.latest = stored;
    const statement = statementOf(stored);
    const msg: CheckpointMsg = { type: 'checkpoint', ...statement, replica: ctx.self, sig: ctx.signer.sign(checkpointMessage(ctx.config.clusterId, statement)) };
    ctx.out.toPeers.push({ to: 'all', msg });
    this.record(ctx.self, msg);
    const best = this.best;
    if (best !== null && best.height === stored.manifest.height) this.onCertified(best);
  }

  onSignature(from: ReplicaId, msg: CheckpointMsg): void {
    const { ctx } = this;
    if (msg.replica !== from) {
      ctx.out.faults.push({ peer: from, kind: 'badSignature', detail: `checkpoint signature claims replica ${msg.replica}` });
      return;
    }
    if (msg.height <= (this.stable.at(-1)?.height ?? 0)) return;
    if (!ctx.crypto.verify(ctx.config.replicas[from]!.key, checkpointMessage(ctx.config.clusterId, msg), msg.sig)) {
      ctx.out.faults.push({ peer: from, kind: 'badSignature', detail: `checkpoint signature at height ${msg.height}` });
      return;
    }
    this.record(from, msg);
  }

  /** A peer's certificate (asked for, or sent instead of blocks it pruned). */
  onCert(from: ReplicaId, cert: CheckpointCert): void {
    const known = Math.max(this.best?.height ?? 0, this.latest?.manifest.height ?? 0);
    if (cert.height < known || (cert.height === known && this.best !== null && cert.height === this.best.height)) return;
    const problem = this.checkCert(cert);
    if (problem !== null) {
      this.ctx.out.faults.push({ peer: from, kind: 'badCertificate', detail: `checkpoint certificate: ${problem}` });
      return;
    }
    this.onCertified(cert);
  }

  /** Answers a peer's checkpointRequest. */
  answer(to: ReplicaId): void {
    if (this.best !== null) this.ctx.out.toPeers.push({ to, msg: { type: 'checkpointCert', cert: this.best } });
  }

  /** q distinct signers, each signature valid over the statement; null if it holds. */
  checkCert(cert: CheckpointCert): string | null {
    const { config, crypto } = this.ctx;
    if (!bitmapFits(cert.signers, config.n)) return 'signer bitmap does not fit the cluster';
    const count = bitmapCount(cert.signers);
    if (count !== cert.sigs.length) return `${count} signers but ${cert.sigs.length} signatures`;
    if (count < config.q) return `${count} signers, quorum is ${config.q}`;
    const message = checkpointMessage(config.clusterId, cert);
    const signers = bitmapIndexes(cert.signers);
    for (let i = 0; i < signers.length; i++) {
      if (!crypto.verify(config.replicas[signers[i]!]!.key, message, cert.sigs[i]!)) return `bad signature of replica ${signers[i]}`;
    }
    return null;
  }

  private record(from: ReplicaId, msg: CheckpointMsg): void {
    const list = this.signatures.get(from) ?? [];
    const same = list.find((m) => m.height === msg.height);
    if (same !== undefined) {
      if (!sameStatement(same, msg)) this.ctx.out.faults.push({ peer: from, kind: 'equivocation', detail: `two checkpoint states signed at height ${msg.height}` });
      return;
    }
    list.push(msg);
    list.sort((a, b) => a.height - b.height);
    if (list.length > SIGNATURES_KEPT_PER_REPLICA) list.shift();
    this.signatures.set(from, list);
    const matching = new Map<ReplicaId, Uint8Array>();
    for (const [replica, msgs] of this.signatures) {
      const m = msgs.find((x) => sameStatement(x, msg));
      if (m !== undefined) matching.set(replica, m.sig);
    }
    if (matching.size >= this.ctx.config.q) this.onCertified(buildCert(msg, matching, this.ctx.config.n));
  }

  private onCertified(cert: CheckpointCert): void {
    if (this.best === null || cert.height > this.best.height) this.best = cert;
    const latest = this.latest;
    if (latest !== null && latest.manifest.height === cert.height) {
      if (bytesEqual(latest.state, cert.state)) this.markStable(cert);
      else {
        this.ctx.out.faults.push({ peer: this.ctx.self, kind: 'stateDiverged', detail: `own checkpoint at height ${cert.height} is ${toHex(latest.state).slice(0, 16)}…, q replicas certify ${toHex(cert.state).slice(0, 16)}…` });
        this.parts.onCert(cert, 'diverged');
      }
    } else if (cert.height > (latest?.manifest.height ?? 0) && !this.writing.has(cert.height)) {
      this.parts.onCert(cert, 'ahead');
    }
  }

  private markStable(cert: CheckpointCert): void {
    const { ctx } = this;
    if (this.stable.some((c) => c.height >= cert.height)) return;
    this.stable.push(cert);
    this.stableSinceUs = ctx.nowUs;
    ctx.out.persist.push({ kind: 'checkpointStable', cert });
    for (const [replica, msgs] of this.signatures) {
      const left = msgs.filter((m) => m.height > cert.height);
      if (left.length === 0) this.signatures.delete(replica);
      else this.signatures.set(replica, left);
    }
    if (this.stable.length < STABLE_KEPT) return;
    while (this.stable.length > STABLE_KEPT) this.stable.shift();
    const oldest = this.stable[0]!;
    // No block above `oldest` holds a batch that expired before its range's end (its entries'
    // timestamps are in later slots, and a timestamp never passes its batch's expiry).
    ctx.out.persist.push({ kind: 'pruneBelowCheckpoint', height: oldest.height, expiredBeforeUs: ctx.slots.slotStartUs((oldest.toSlot + 1) as Slot) });
  }
}

function statementFields(c: CheckpointStatement): CheckpointStatement {
  return { height: c.height, toSlot: c.toSlot, position: c.position, block: c.block, state: c.state };
}

function sameStatement(a: CheckpointStatement, b: CheckpointStatement): boolean {
  return a.height === b.height && a.toSlot === b.toSlot && a.position === b.position && bytesEqual(a.block, b.block) && bytesEqual(a.state, b.state);
}

function buildCert(statement: CheckpointStatement, sigs: ReadonlyMap<ReplicaId, Uint8Array>, n: number): CheckpointCert {
  const signers = newBitmap(n);
  const ids = [...sigs.keys()].sort((a, b) => a - b);
  for (const id of ids) bitmapSet(signers, id);
  return { ...statementFields(statement), signers, sigs: ids.map((id) => sigs.get(id)!) };
}
