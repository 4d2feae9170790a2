/**
 * The collector (DESIGN.md "Phase 1" and "Phase 2"): drives one batch through the ordering phase
 * and waits for its execution. One piece of code, used by a client in direct mode and by a replica
 * on behalf of thin clients in gateway mode. A pure state machine like the cores: inputs in,
 * messages to send and events out; time comes with every input.
 *
 * Per batch: send it to all n replicas; the first q timestamp replies form the OC (median at
 * index f); send Sequence{OC} to all; q acks on that OC = the sequencing certificate ("ordered").
 * Then f+1 replicas reporting the same position and results = "executed".
 * A replica's `late` or `busy` alone changes nothing; f+1 of them (one is correct) restart phase 1
 * with the same bytes and digest and fresh timestamps. Lost messages are re-sent to the replicas
 * that have not answered; a batch is never submitted under a different digest, so a retry can
 * never execute twice. `overloaded` is a replica asking for less: the collector waits for its
 * re-send timer (doubling per attempt) before asking that replica again, and reports the batch
 * as throttled once f+1 replicas said so, so an owner with a window can shrink it. f+1 refusals
 * that retrying cannot change (expired, bad batch, bad signature, not allowed) fail the batch.
 */
import { toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type {
  AckMsg,
  CollectorToReplicaMsg,
  ExecutedMsg,
  OrderingCert,
  RefusedMsg,
  ReplicaToCollectorMsg,
  SignedTimestamp,
  TsReplyMsg,
} from '../common/messages.js';
import { RefusalReason } from '../common/messages.js';
import { ackMessage, executedMessage } from '../common/signing.js';
import { medianTimestamp, ocHash as computeOcHash, OcVerifier } from './oc.js';

export interface CollectorOptions {
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  /** Verify ack and execution signatures (a client that trusts nothing: true). Timestamp
   *  signatures are checked by the replicas in phase 2; the collector checks them only when
   *  replicas reject its OC, and from then on always for the replica that sent a bad one. */
  readonly verifySignatures: boolean;
  /** First re-send delay; doubles per attempt up to maxRetryUs. */
  readonly retryUs: number;
  readonly maxRetryUs: number;
}

export type CollectorInput =
  | { readonly kind: 'submit'; readonly batch: Uint8Array; readonly digest: Digest; readonly expiresAtUs: number }
  | { readonly kind: 'reply'; readonly from: ReplicaId; readonly msg: ReplicaToCollectorMsg }
  | { readonly kind: 'tick' };

export type CollectorEvent =
  | {
      readonly kind: 'ordered';
      readonly digest: Digest;
      readonly ts: number;
      readonly ocHash: Digest;
      readonly attempts: number;
      /** f+1 replicas answered `overloaded` on the way: the cluster asks its clients for less. */
      readonly throttled: boolean;
    }
  | { readonly kind: 'executed'; readonly digest: Digest; readonly position: number; readonly ts: number; readonly results: Uint8Array }
  | { readonly kind: 'failed'; readonly digest: Digest; readonly reason: string };

export interface CollectorOutput {
  readonly send: { readonly to: ReplicaId | 'all'; readonly msg: CollectorToReplicaMsg }[];
  readonly events: CollectorEvent[];
}

export interface CollectorStats {
  submitted: number;
  ordered: number;
  executed: number;
  failed: number;
  restarts: number;
  resends: number;
  refusals: Record<string, number>;
  badReplies: number;
}

type Phase = 'timestamps' | 'sequencing' | 'ordered';

interface InFlight {
  readonly digest: Digest;
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly expiresAtUs: number;
  phase: Phase;
  attempts: number;
  /** Timestamp replies of the current attempt, in arrival order. */
  stamps: Map<ReplicaId, SignedTimestamp>;
  oc: OrderingCert | null;
  ocHashHex: string;
  acks: Set<ReplicaId>;
  /** Replicas that refused the current attempt, by reason. */
  refusals: Map<ReplicaId, string>;
  /** Replicas that answered `overloaded` (any attempt). */
  overloadedBy: Set<ReplicaId>;
  /** Execution reports: "position:resultsHash" → replicas. */
  executions: Map<string, Set<ReplicaId>>;
  executionReporters: Set<ReplicaId>;
  retryUs: number;
  deadlineUs: number;
}

export class Collector {
  private readonly inFlight = new Map<string, InFlight>();
  private readonly ocs: OcVerifier;
  /** Replicas caught sending a bad timestamp signature: their stamps are verified from then on. */
  private readonly suspects = new Set<ReplicaId>();
  readonly stats: CollectorStats = { submitted: 0, ordered: 0, executed: 0, failed: 0, restarts: 0, resends: 0, refusals: {}, badReplies: 0 };
  private out: CollectorOutput = { send: [], events: [] };
  private nowUs = 0;

  constructor(private readonly opts: CollectorOptions) {
    this.ocs = new OcVerifier(opts.config, opts.crypto);
  }

  get pending(): number {
    return this.inFlight.size;
  }

  step(input: CollectorInput, nowUs: number): CollectorOutput {
    this.nowUs = Math.max(this.nowUs, nowUs);
    this.out = { send: [], events: [] };
    switch (input.kind) {
      case 'submit':
        this.submit(input.batch, input.digest, input.expiresAtUs);
        break;
      case 'reply':
        this.onReply(input.from, input.msg);
        break;
      case 'tick':
        this.onTick();
        break;
    }
    return this.out;
  }

  nextWakeUs(): number | null {
    let next: number | null = null;
    for (const b of this.inFlight.values()) if (next === null || b.deadlineUs < next) next = b.deadlineUs;
    return next;
  }

  private submit(bytes: Uint8Array, digest: Digest, expiresAtUs: number): void {
    const key = toHex(digest);
    if (this.inFlight.has(key)) return;
    const batch: InFlight = {
      digest,
      key,
      bytes,
      expiresAtUs,
      phase: 'timestamps',
      attempts: 1,
      stamps: new Map(),
      oc: null,
      ocHashHex: '',
      acks: new Set(),
      refusals: new Map(),
      overloadedBy: new Set(),
      executions: new Map(),
      executionReporters: new Set(),
      retryUs: this.opts.retryUs,
      deadlineUs: this.nowUs + this.opts.retryUs,
    };
    this.inFlight.set(key, batch);
    this.stats.submitted++;
    this.out.send.push({ to: 'all', msg: { type: 'submit', batch: bytes } });
  }

  private onReply(from: ReplicaId, msg: ReplicaToCollectorMsg): void {
    const batch = this.inFlight.get(toHex(msg.digest));
    if (batch === undefined) return;
    switch (msg.type) {
      case 'tsReply':
        this.onTimestamp(batch, from, msg);
        break;
      case 'ack':
        this.onAck(batch, from, msg);
        break;
      case 'refused':
        this.onRefused(batch, from, msg);
        break;
      case 'executed':
        this.onExecuted(batch, from, msg);
        break;
    }
  }

  private onTimestamp(batch: InFlight, from: ReplicaId, msg: TsReplyMsg): void {
    if (batch.phase !== 'timestamps' || msg.stamp.replica !== from || batch.stamps.has(from)) return;
    if (this.suspects.has(from) && !this.ocs.verifyStamp(batch.digest, msg.stamp)) {
      this.stats.badReplies++;
      return;
    }
    batch.stamps.set(from, msg.stamp);
    if (batch.stamps.size >= this.opts.config.q) this.formOc(batch);
  }

  /** The first q timestamps (in arrival order) make the OC; it goes to every replica. */
  private formOc(batch: InFlight): void {
    const { q } = this.opts.config;
    const stamps = [...batch.stamps.values()].slice(0, q).sort((a, b) => a.replica - b.replica);
    const oc: OrderingCert = { digest: batch.digest, stamps };
    batch.oc = oc;
    batch.ocHashHex = toHex(computeOcHash(this.opts.crypto, oc));
    batch.phase = 'sequencing';
    batch.acks = new Set();
    batch.refusals = new Map();
    this.rearm(batch, true);
    this.out.send.push({ to: 'all', msg: { type: 'sequence', oc, batch: null } });
  }

  private onAck(batch: InFlight, from: ReplicaId, msg: AckMsg): void {
    if (batch.phase !== 'sequencing' || msg.replica !== from || toHex(msg.ocHash) !== batch.ocHashHex) return;
    if (this.opts.verifySignatures) {
      const message = ackMessage(this.opts.config.clusterId, batch.digest, msg.ocHash, from);
      if (!this.opts.crypto.verify(this.opts.config.replicas[from]!.key, message, msg.sig)) {
        this.stats.badReplies++;
        return;
      }
    }
    batch.acks.add(from);
    if (batch.acks.size >= this.opts.config.q) this.markOrdered(batch);
  }

  private markOrdered(batch: InFlight): void {
    if (batch.phase === 'ordered') return;
    batch.phase = 'ordered';
    this.stats.ordered++;
    const oc = batch.oc!;
    this.out.events.push({
      kind: 'ordered',
      digest: batch.digest,
      ts: medianTimestamp(oc.stamps, this.opts.config.f),
      ocHash: computeOcHash(this.opts.crypto, oc),
      attempts: batch.attempts,
      throttled: batch.overloadedBy.size >= this.opts.config.f + 1,
    });
    this.rearm(batch, true);
  }

  private onRefused(batch: InFlight, from: ReplicaId, msg: RefusedMsg): void {
    if (msg.replica !== from || batch.phase === 'ordered') return;
    this.stats.refusals[msg.reason] = (this.stats.refusals[msg.reason] ?? 0) + 1;
    const { f } = this.opts.config;
    switch (msg.reason) {
      case RefusalReason.NeedBytes:
        if (batch.phase === 'sequencing') this.out.send.push({ to: from, msg: { type: 'sequence', oc: batch.oc!, batch: batch.bytes } });
        return;
      case RefusalReason.Early:
        // The replica's clock is behind the median; the re-send timer asks it again.
        return;
      case RefusalReason.Overloaded:
        // The re-send timer asks again, later each time; f+1 of them mark the batch throttled.
        batch.overloadedBy.add(from);
        return;
      case RefusalReason.Late:
      case RefusalReason.Busy:
      case RefusalReason.BadCert:
        // Answers to a Sequence: after a restart, late answers to the old OC must not count.
        if (batch.phase !== 'sequencing') return;
        break;
      default:
        break;
    }
    batch.refusals.set(from, msg.reason);
    const count = (reasons: readonly string[]): number => [...batch.refusals.values()].filter((r) => reasons.includes(r)).length;
    if (count([RefusalReason.Late, RefusalReason.Busy]) >= f + 1) {
      this.restart(batch);
    } else if (count([RefusalReason.BadCert]) >= f + 1) {
      this.recoverFromBadOc(batch);
    } else if (count([RefusalReason.Expired, RefusalReason.BadBatch, RefusalReason.BadSignature, RefusalReason.NotAllowed]) >= f + 1) {
      this.fail(batch, `refused by f+1 replicas: ${msg.reason}`);
    }
  }

  /** Fresh timestamps, same bytes and digest. */
  private restart(batch: InFlight): void {
    if (this.nowUs >= batch.expiresAtUs) {
      this.fail(batch, 'expired before it could be ordered');
      return;
    }
    batch.attempts++;
    this.stats.restarts++;
    batch.phase = 'timestamps';
    batch.stamps = new Map();
    batch.oc = null;
    batch.ocHashHex = '';
    batch.acks = new Set();
    batch.refusals = new Map();
    this.rearm(batch, true);
    this.out.send.push({ to: 'all', msg: { type: 'submit', batch: batch.bytes } });
  }

  /** f+1 replicas rejected the OC: find the bad timestamps, distrust their senders, rebuild. */
  private recoverFromBadOc(batch: InFlight): void {
    for (const [replica, stamp] of batch.stamps) {
      if (!this.ocs.verifyStamp(batch.digest, stamp)) {
        this.suspects.add(replica);
        batch.stamps.delete(replica);
        this.stats.badReplies++;
      }
    }
    batch.phase = 'timestamps';
    batch.refusals = new Map();
    if (batch.stamps.size >= this.opts.config.q) {
      this.formOc(batch);
    } else {
      this.rearm(batch, true);
      for (let r = 0; r < this.opts.config.n; r++) {
        if (!batch.stamps.has(r as ReplicaId)) this.out.send.push({ to: r as ReplicaId, msg: { type: 'submit', batch: batch.bytes } });
      }
    }
  }

  private onExecuted(batch: InFlight, from: ReplicaId, msg: ExecutedMsg): void {
    if (msg.replica !== from || batch.executionReporters.has(from)) return;
    const resultsHash = this.opts.crypto.sha256(msg.results);
    if (this.opts.verifySignatures) {
      const message = executedMessage(this.opts.config.clusterId, batch.digest, msg.position, msg.ts, resultsHash);
      if (!this.opts.crypto.verify(this.opts.config.replicas[from]!.key, message, msg.sig)) {
        this.stats.badReplies++;
        return;
      }
    }
    batch.executionReporters.add(from);
    const key = `${msg.position}:${msg.ts}:${toHex(resultsHash)}`;
    let agreeing = batch.executions.get(key);
    if (agreeing === undefined) batch.executions.set(key, (agreeing = new Set()));
    agreeing.add(from);
    if (agreeing.size < this.opts.config.f + 1) return;
    // f+1 agree, so one correct replica executed it: it was sequenced too.
    if (batch.phase !== 'ordered' && batch.oc !== null) this.markOrdered(batch);
    this.inFlight.delete(batch.key);
    this.stats.executed++;
    this.out.events.push({ kind: 'executed', digest: batch.digest, position: msg.position, ts: msg.ts, results: msg.results });
  }

  private onTick(): void {
    for (const batch of [...this.inFlight.values()]) {
      if (this.nowUs < batch.deadlineUs) continue;
      if (batch.phase !== 'ordered' && this.nowUs >= batch.expiresAtUs) {
        this.fail(batch, 'expired before it could be ordered');
        continue;
      }
      this.stats.resends++;
      this.rearm(batch, false);
      const { n } = this.opts.config;
      for (let r = 0; r < n; r++) {
        const replica = r as ReplicaId;
        if (batch.phase === 'timestamps' && !batch.stamps.has(replica)) {
          this.out.send.push({ to: replica, msg: { type: 'submit', batch: batch.bytes } });
        } else if (batch.phase === 'sequencing' && !batch.acks.has(replica)) {
          this.out.send.push({ to: replica, msg: { type: 'sequence', oc: batch.oc!, batch: null } });
        } else if (batch.phase === 'ordered' && !batch.executionReporters.has(replica)) {
          // A replica that executed it answers a repeated Sequence with its Executed notice.
          this.out.send.push({ to: replica, msg: { type: 'sequence', oc: batch.oc!, batch: null } });
        }
      }
    }
  }

  private rearm(batch: InFlight, reset: boolean): void {
    batch.retryUs = reset ? this.opts.retryUs : Math.min(batch.retryUs * 2, this.opts.maxRetryUs);
    batch.deadlineUs = this.nowUs + batch.retryUs;
  }

  private fail(batch: InFlight, reason: string): void {
    this.inFlight.delete(batch.key);
    this.stats.failed++;
    this.out.events.push({ kind: 'failed', digest: batch.digest, reason });
  }
}
