/**
 * Coordinated attacks (THREATS.md "Coordinated attacks"): a Byzantine replica and a Byzantine
 * client acting together, each playing a role that alone would be harmless. The run gives both
 * sides one `Coalition` object to share what they know.
 *
 *  - withholdCoalition: the client gets a batch stamped by every replica, pushes it out of the
 *    correct replicas' pending stores with junk on the same connection (a source over its bound
 *    loses its own oldest), and sequences it at the Byzantine replica only. That replica acks it
 *    and lists it in its seals, claims a frontier far beyond the clock so leaders prefer its seal,
 *    times out every view at once, and never serves the batch's bytes. The cluster must keep
 *    committing and executing honest batches, and no fetch may live forever. The default
 *    admission budgets stop this eviction (a key may have 250 batches a second stamped, far fewer
 *    than a pending bound within Δ), so these runs model a deployment with a larger per-key
 *    budget (HOSTAGE_ADMISSION_LIMITS): the attack must still land, to test what it would break.
 *  - expiryCoalition: correct replicas restart now and then (their timestamps then come from a
 *    durable reservation ahead of their clock); the client submits short-lived batches, gathers all
 *    n timestamps and picks the q with the highest median, the Byzantine replica stamping just
 *    past the expiry. If a median past the expiry is possible, the client sequences it and the
 *    replica lists it in its seals. No batch may execute at a timestamp past its expiry.
 */
import { BatchMode, encodeBatch, readBatchHeader } from '../common/batch.js';
import { batchSigner } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import { decodeSealAttachment, encodeSealAttachment } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { ReplicaId, Slot } from '../common/ids.js';
import { MAX_PENDING_BATCHES_PER_CONNECTION } from '../common/limits.js';
import type { OrderingCert, SealAttachment, SealEntry, TsReplyMsg } from '../common/messages.js';
import { timestampMessage } from '../common/signing.js';
import { type AdmissionLimits, DEFAULT_ADMISSION_LIMITS } from '../ordering/admission.js';
import { medianTimestamp, ocHash } from '../ordering/oc.js';
import { compareEntries, signSeal } from '../ordering/seal.js';
import { SlotClock } from '../ordering/slots.js';
import { GatheringTap } from './byzantineClient.js';
import type { CollectorTap, ReplyIn, SendOut } from './clientNode.js';
import type { BehaviourContext } from './orderingByzantine.js';
import type { ReplicaBehaviour, ReplicaNode } from './replicaNode.js';
import type { Rng } from './rng.js';

export const COALITION_KINDS = ['withholdCoalition', 'expiryCoalition'] as const;
export type CoalitionKind = (typeof COALITION_KINDS)[number];

/** What the Byzantine client and replica of one coalition share. */
export class Coalition {
  /** Batches (digest hex) whose bytes the replica never serves. */
  readonly hostages = new Set<string>();
  /** Entries the replica lists in its seals though it never acked them: OCs whose median lies
   *  past their batch's expiry. */
  readonly stretched: { readonly entry: SealEntry; readonly oc: OrderingCert }[] = [];
  /** Expiry (µs) of each of the client's short-lived batches, by digest hex. */
  readonly expiries = new Map<string, number>();

  constructor(
    readonly kind: CoalitionKind,
    /** The Byzantine replicas in the coalition. */
    readonly replicas: readonly ReplicaId[],
  ) {}
}

/** How far beyond its real frontier the withholding replica claims to have sealed. */
const INFLATE_SLOTS = 100_000;
/** Hostage batches per run, and the least time between two (each costs a flood of junk). */
const MAX_HOSTAGES = 3;
const HOSTAGE_SPACING_US = 1_500_000;
/** Junk on top of one connection's pending bound: enough to push the hostage out. */
const JUNK_EXCESS = 16;
/** Junk lives far beyond any run, so only the bound removes it. */
const JUNK_LIFETIME_US = 100_000_000;
/** Budgets of withholdCoalition runs: one second's worth of batches covers a hostage's junk, so
 *  the eviction lands within Δ as it would under a budget that large. */
export const HOSTAGE_ADMISSION_LIMITS: AdmissionLimits = {
  ...DEFAULT_ADMISSION_LIMITS,
  clientBatchesPerSecond: 2 * (MAX_PENDING_BATCHES_PER_CONNECTION + JUNK_EXCESS),
};
/** How long the expiry client waits for all n timestamps before choosing among those it has. */
const GATHER_US = 60_000;

export function coalitionBehaviour(coalition: Coalition, ctx: BehaviourContext): ReplicaBehaviour {
  return coalition.kind === 'withholdCoalition' ? withholder(coalition, ctx) : stretcher(coalition, ctx);
}

/** The replica of withholdCoalition: acks honestly, serves no hostage, inflates its seals, and
 *  times out every view it votes in. */
function withholder(coalition: Coalition, ctx: BehaviourContext): ReplicaBehaviour {
  let timedOutView = -1;
  return {
    name: 'withholdCoalition',
    outgoing: (node, to, msg) => {
      // Every view it enters, it leaves at once (after any vote of that step): its timeout, with
      // its seal, is the first any next leader holds.
      const view = node.core?.consensus.view ?? -1;
      if (view > timedOutView) {
        timedOutView = view;
        ctx.report('withholdCoalition:earlyTimeout');
        timeOutSoon(node);
      }
      if (msg.type === 'batchResponse') {
        const served = msg.batches.filter((b) => !coalition.hostages.has(toHex(ctx.crypto.sha256(b))));
        if (served.length < msg.batches.length) ctx.report('withholdCoalition:bytesWithheld');
        if (served.length > 0) node.send(to, { ...msg, batches: served });
        return;
      }
      if ((msg.type === 'vote' || msg.type === 'timeout') && msg.attachment.length > 0) {
        const inflated = rewriteSeal(ctx, node.id, msg.attachment, (a) => ({ ...a, toSlot: (a.toSlot + INFLATE_SLOTS) as Slot }));
        if (inflated !== null) ctx.report('withholdCoalition:sealInflated');
        node.send(to, inflated === null ? msg : { ...msg, attachment: inflated });
        return;
      }
      node.send(to, msg);
    },
  };
}

/** The replica of expiryCoalition: stamps the client's short-lived batches just past their expiry
 *  and lists the stretched entries in its seals. */
function stretcher(coalition: Coalition, ctx: BehaviourContext): ReplicaBehaviour {
  const slots = new SlotClock(ctx.config.protocol);
  return {
    name: 'expiryCoalition',
    outgoing: (node, to, msg) => {
      if (msg.type === 'tsReply' && msg.stamp.replica === node.id) {
        const expiry = coalition.expiries.get(toHex(msg.digest));
        if (expiry !== undefined) {
          ctx.report('expiryCoalition:stampPastExpiry');
          return node.send(to, restamp(ctx, node.id, msg, expiry + ctx.rng.int(1, 1_000)));
        }
      }
      if ((msg.type === 'vote' || msg.type === 'timeout') && msg.attachment.length > 0) {
        // Its seal claims a far frontier, so a leader that prefers the furthest seals takes it.
        const rewritten = rewriteSeal(ctx, node.id, msg.attachment, (a) => {
          const extra = coalition.stretched.filter(({ entry }) => {
            const s = slots.slotOf(entry.ts);
            return s > a.fromSlot && s <= a.toSlot && !a.entries.some((e) => toHex(e.ocHash) === toHex(entry.ocHash));
          });
          if (extra.length > 0) ctx.report('expiryCoalition:stretchedEntrySealed');
          const entries = [...a.entries, ...extra.map((x) => x.entry)].sort(compareEntries);
          return { fromSlot: a.fromSlot, toSlot: (a.toSlot + INFLATE_SLOTS) as Slot, entries, ocs: extra.map((x) => x.oc) };
        });
        return node.send(to, rewritten === null ? msg : { ...msg, attachment: rewritten });
      }
      node.send(to, msg);
    },
  };
}

interface SealEdit {
  readonly fromSlot: Slot;
  readonly toSlot: Slot;
  readonly entries: readonly SealEntry[];
  /** OCs to add to the attachment (for added entries). */
  readonly ocs?: readonly OrderingCert[];
}

/** Re-signs the replica's own seal after `edit` (null: leave it as it is). */
function rewriteSeal(ctx: BehaviourContext, self: ReplicaId, attachment: Uint8Array, edit: (seal: SealEdit) => SealEdit | null): Uint8Array | null {
  const decoded = decodeSealAttachment(attachment, { replicaCount: ctx.config.n });
  if (!decoded.ok || decoded.value === null) return null;
  const { seal, ocs } = decoded.value;
  const edited = edit({ fromSlot: seal.fromSlot, toSlot: seal.toSlot, entries: seal.entries });
  if (edited === null) return null;
  const signed = signSeal(ctx.config, ctx.crypto, ctx.signer, self, edited.fromSlot, edited.toSlot, edited.entries);
  const out: SealAttachment = { seal: signed, ocs: [...ocs, ...(edited.ocs ?? [])] };
  return encodeSealAttachment(out);
}

function restamp(ctx: BehaviourContext, self: ReplicaId, msg: TsReplyMsg, ts: number): TsReplyMsg {
  const sig = ctx.signer.sign(timestampMessage(ctx.config.clusterId, msg.digest, ts, self));
  return { ...msg, stamp: { replica: self, ts, sig } };
}

/** Times the replica's view out right after the current event (not inside the step sending). */
function timeOutSoon(node: ReplicaNode): void {
  const { world } = node.opts;
  world.at(world.nowUs, () => {
    if (node.up) node.step({ kind: 'timeoutNow' });
  });
}

/**
 * The client of withholdCoalition: an honest-looking direct-mode collector, except that now and
 * then, once a batch is stamped, it floods every correct replica with junk on the same connection
 * (evicting the batch from their pending stores) and sends its Sequence to the coalition replica
 * only.
 */
export class HostageTap implements CollectorTap {
  private readonly attacked = new Set<string>();
  private nextAttackUs: number;
  private junkNonce = 1_000_000_000;
  private readonly sign: (body: Uint8Array) => Uint8Array;
  junkSent = 0;
  /** Junk the correct replicas refused, by reason (overloaded: over the key's budget). */
  readonly junkRefusals: Record<string, number> = {};
  private readonly junkDigests = new Set<string>();
  /** Hostages the accomplice acked, and how it refused the others. */
  hostagesAcked = 0;
  readonly accompliceRefusals: Record<string, number> = {};

  constructor(
    private readonly coalition: Coalition,
    private readonly config: ClusterConfig,
    private readonly crypto: CryptoBackend,
    private readonly rng: Rng,
    /** The collector's own key: junk must come under the key its connection proved. */
    private readonly signer: Signer,
    firstAttackUs: number,
  ) {
    this.nextAttackUs = firstAttackUs;
    this.sign = batchSigner(config.clusterId, crypto, signer);
  }

  get hostages(): number {
    return this.attacked.size;
  }

  send(out: SendOut, nowUs: number): SendOut[] {
    if (out.msg.type !== 'sequence') return [out];
    const key = toHex(out.msg.oc.digest);
    const [accomplice] = this.coalition.replicas;
    if (!this.attacked.has(key)) {
      if (this.attacked.size >= MAX_HOSTAGES || nowUs < this.nextAttackUs || accomplice === undefined) return [out];
      this.attacked.add(key);
      this.coalition.hostages.add(key);
      this.nextAttackUs = nowUs + HOSTAGE_SPACING_US;
      return [...this.junk(nowUs), { to: accomplice, msg: out.msg }];
    }
    // Every resend of a hostage's Sequence goes to the accomplice only.
    return out.to === 'all' || out.to === accomplice ? [{ to: accomplice!, msg: out.msg }] : [];
  }

  reply(reply: ReplyIn): ReplyIn[] {
    const { msg } = reply;
    if ((msg.type === 'ack' || msg.type === 'refused') && this.attacked.has(toHex(msg.digest)) && this.coalition.replicas.includes(reply.from)) {
      if (msg.type === 'ack') this.hostagesAcked++;
      else this.accompliceRefusals[msg.reason] = (this.accompliceRefusals[msg.reason] ?? 0) + 1;
    }
    if (msg.type === 'refused' && this.junkDigests.has(toHex(msg.digest))) this.junkRefusals[msg.reason] = (this.junkRefusals[msg.reason] ?? 0) + 1;
    return [reply];
  }

  tick(): ReplyIn[] {
    return [];
  }

  nextWakeUs(): null {
    return null;
  }

  /** One connection's pending bound and then some, to every correct replica. */
  private junk(nowUs: number): SendOut[] {
    const out: SendOut[] = [];
    const count = MAX_PENDING_BATCHES_PER_CONNECTION + JUNK_EXCESS;
    for (let i = 0; i < count; i++) {
      const nonce = this.junkNonce++;
      const batch = encodeBatch(
        { mode: BatchMode.Direct, collectorKey: this.signer.publicKey, nonce, expiresAtUs: nowUs + JUNK_LIFETIME_US, commands: [{ seq: nonce, payload: this.rng.bytes(4) }] },
        this.sign,
      );
      this.junkDigests.add(toHex(this.crypto.sha256(batch)));
      for (let r = 0; r < this.config.n; r++) {
        if (!this.coalition.replicas.includes(r as ReplicaId)) out.push({ to: r as ReplicaId, msg: { type: 'submit', batch } });
      }
      this.junkSent++;
    }
    return out;
  }
}

/**
 * The client of expiryCoalition: a direct-mode collector of short-lived batches that gathers all n
 * timestamps (or what arrives by a deadline) and hands its collector the q giving the highest
 * median; a Sequence whose median lies past the batch's expiry is told to the coalition replica,
 * which lists it in its seals.
 */
export class ExpiryStretchTap extends GatheringTap {
  stretched = 0;

  constructor(
    private readonly coalition: Coalition,
    config: ClusterConfig,
    crypto: CryptoBackend,
  ) {
    super(config, crypto, GATHER_US);
  }

  override send(out: SendOut, nowUs: number): SendOut[] {
    const msg = out.msg;
    if (msg.type === 'submit' && out.to === 'all') {
      const header = readBatchHeader(msg.batch);
      if (header.ok) this.coalition.expiries.set(toHex(this.crypto.sha256(msg.batch)), header.value.expiresAtUs);
    }
    if (msg.type === 'sequence') {
      const key = toHex(msg.oc.digest);
      const expiry = this.coalition.expiries.get(key);
      const median = medianTimestamp(msg.oc.stamps, this.config.f);
      if (expiry !== undefined && median > expiry && !this.coalition.stretched.some((s) => toHex(s.entry.digest) === key)) {
        this.stretched++;
        this.coalition.stretched.push({ entry: { digest: msg.oc.digest, ts: median, ocHash: ocHash(this.crypto, msg.oc) }, oc: msg.oc });
      }
    }
    return super.send(out, nowUs);
  }

  /** The q replies with the highest timestamps: their median is the highest any q give. */
  protected pick(replies: readonly ReplyIn[]): ReplyIn[] {
    const stamp = (r: ReplyIn): number => (r.msg as TsReplyMsg).stamp.ts;
    return [...replies].sort((a, b) => stamp(b) - stamp(a)).slice(0, this.config.q);
  }
}
