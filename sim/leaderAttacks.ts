/**
 * A Byzantine leader (THREATS.md "Against the consensus phase"): the honest core builds its
 * proposal, and the behaviour rewrites the payload before it leaves, re-encoded with the real codec
 * so that only its content is wrong:
 *  - dropEntries:      an entry (and its OC) removed, the seals kept: the union no longer matches them;
 *  - duplicateEntries: an entry listed twice;
 *  - wrongUnion:       an entry no seal lists, or an entry whose OC is forged or belongs to another;
 *  - fewSeals:         q − 1 seals;
 *  - slotGap:          the range does not start where the parent's ended;
 *  - outOfRange:       an entry outside the block's range;
 *  - equivocate:       two valid blocks in one view, each to half the replicas.
 * Correct replicas must refuse every block but an equivocating leader's (they vote for at most one
 * per view), and the next leader makes progress after one view timeout. A filler payload (no
 * entries) cannot carry the entry attacks: such a leader proposes its fillers honestly and strikes
 * at its first proposal with entries (a leader stays until a view times out, so that comes soon).
 */
import { bitmapGet, bitmapSet, newBitmap } from '../common/bitmap.js';
import { toHex } from '../common/bytes.js';
import { decodeBlockPayload, encodeBlockPayload } from '../common/codec.js';
import type { Slot } from '../common/ids.js';
import type { BlockPayload, OrderingCert, PayloadSeal, ProposalMsg, SealEntry } from '../common/messages.js';
import { medianTimestamp, ocHash } from '../ordering/oc.js';
import { fillerPayload } from '../ordering/payload.js';
import { compareEntries } from '../ordering/seal.js';
import { SlotClock } from '../ordering/slots.js';
import { blockDigest } from '../consensus/block.js';
import type { BehaviourContext } from './orderingByzantine.js';
import type { ReplicaBehaviour, ReplicaNode } from './replicaNode.js';

export const LEADER_ATTACK_KINDS = ['dropEntries', 'duplicateEntries', 'wrongUnion', 'fewSeals', 'slotGap', 'outOfRange', 'equivocate'] as const;
export type LeaderAttackKind = (typeof LEADER_ATTACK_KINDS)[number];

/** OCs remembered from Sequence messages, for an entry that no seal lists. */
const SEEN_OC_MEMORY = 64;
/** Rewritten proposals remembered, so a re-sent proposal (catch-up help) stays the same lie. */
const REWRITE_MEMORY = 16;

/** A rewritten payload and what was done; null: this payload cannot carry the attack. */
type Mutation = (payload: BlockPayload) => { readonly payload: BlockPayload; readonly label: string } | null;

export function leaderAttack(kind: LeaderAttackKind, ctx: BehaviourContext): ReplicaBehaviour {
  const seen: OrderingCert[] = [];
  const rewritten = new Map<string, ProposalMsg>();
  const decodeContext = { replicaCount: ctx.config.n };
  const mutate = kind === 'equivocate' ? null : mutations(ctx, seen)[kind];
  return {
    name: kind,
    incoming: (_node, _from, msg) => {
      if (msg.type === 'sequence') {
        seen.push(msg.oc);
        if (seen.length > SEEN_OC_MEMORY) seen.shift();
      }
      return true;
    },
    outgoing: (node, to, msg) => {
      if (msg.type !== 'proposal' || msg.block.proposer !== node.id) return node.send(to, msg);
      const decoded = decodeBlockPayload(msg.block.payload, decodeContext);
      if (!decoded.ok) return node.send(to, msg);
      if (mutate === null) return equivocate(ctx, node, to, msg, decoded.value);
      const key = toHex(blockDigest(ctx.crypto, msg.block));
      let bad = rewritten.get(key);
      if (bad === undefined) {
        const result = mutate(decoded.value);
        if (result === null) return node.send(to, msg);
        ctx.report(`${kind}:${result.label}`);
        bad = { ...msg, block: { ...msg.block, payload: encodeBlockPayload(result.payload) } };
        rewritten.set(key, bad);
        if (rewritten.size > REWRITE_MEMORY) rewritten.delete(rewritten.keys().next().value as string);
      }
      node.send(to, bad);
    },
  };
}

/** The range starts one slot after the parent's end (a filler stays a filler, one slot on). */
function gap(p: BlockPayload): BlockPayload {
  return { ...p, fromSlot: (p.fromSlot + 1) as Slot, toSlot: Math.max(p.toSlot, p.fromSlot + 1) as Slot };
}

/** Removes entry i from every seal's include bitmap (`insertAt`: adds a bit there instead). */
function reindex(seals: readonly PayloadSeal[], count: number, change: { drop?: number; insertAt?: number; copyOf?: number }): PayloadSeal[] {
  return seals.map((s) => {
    const bits: boolean[] = [];
    for (let i = 0; i < count; i++) bits.push(bitmapGet(s.include, i));
    if (change.drop !== undefined) bits.splice(change.drop, 1);
    if (change.insertAt !== undefined) bits.splice(change.insertAt, 0, change.copyOf === undefined ? false : bits[change.copyOf]!);
    const include = newBitmap(bits.length);
    bits.forEach((b, i) => b && bitmapSet(include, i));
    return { ...s, include };
  });
}

function mutations(ctx: BehaviourContext, seen: readonly OrderingCert[]): Record<Exclude<LeaderAttackKind, 'equivocate'>, Mutation> {
  const { rng, config, crypto } = ctx;
  const slots = new SlotClock(config.protocol);
  const hasEntries = (p: BlockPayload): boolean => p.entries.length > 0;
  return {
    dropEntries: (p) => {
      if (!hasEntries(p)) return null;
      const i = rng.int(0, p.entries.length - 1);
      const entries = p.entries.filter((_, k) => k !== i);
      const ocs = p.ocs.filter((_, k) => k !== i);
      return { payload: { ...p, entries, ocs, seals: reindex(p.seals, p.entries.length, { drop: i }) }, label: 'dropped' };
    },
    duplicateEntries: (p) => {
      if (!hasEntries(p)) return null;
      const i = rng.int(0, p.entries.length - 1);
      const entries = [...p.entries.slice(0, i + 1), p.entries[i]!, ...p.entries.slice(i + 1)];
      const ocs = [...p.ocs.slice(0, i + 1), p.ocs[i]!, ...p.ocs.slice(i + 1)];
      return { payload: { ...p, entries, ocs, seals: reindex(p.seals, p.entries.length, { insertAt: i + 1, copyOf: i }) }, label: 'duplicated' };
    },
    wrongUnion: (p) => {
      if (!hasEntries(p)) return null;
      // An entry no seal lists, with a genuine OC whose median falls in the block's range.
      const listed = new Set(p.entries.map((e) => toHex(e.ocHash)));
      const stray = seen.find((oc) => {
        const s = slots.slotOf(medianTimestamp(oc.stamps, config.f));
        return s > p.fromSlot && s <= p.toSlot && !listed.has(toHex(ocHash(crypto, oc)));
      });
      if (stray !== undefined && rng.chance(0.5)) {
        const entry: SealEntry = { digest: stray.digest, ts: medianTimestamp(stray.stamps, config.f), ocHash: ocHash(crypto, stray) };
        const entries = [...p.entries, entry].sort(compareEntries);
        const at = entries.indexOf(entry);
        const ocs = [...p.ocs.slice(0, at), stray, ...p.ocs.slice(at)];
        return { payload: { ...p, entries, ocs, seals: reindex(p.seals, p.entries.length, { insertAt: at }) }, label: 'unlisted' };
      }
      const i = rng.int(0, p.entries.length - 1);
      const ocs = [...p.ocs];
      if (p.entries.length > 1 && rng.chance(0.5)) {
        // Another entry's (genuine) OC: the ocHash does not match.
        const j = (i + 1) % p.entries.length;
        ocs[i] = p.ocs[j]!;
        return { payload: { ...p, ocs }, label: 'mismatchedOc' };
      }
      // The OC's first stamp moved by 1 µs: its signature no longer covers it.
      const oc = p.ocs[i]!;
      ocs[i] = { ...oc, stamps: oc.stamps.map((s, k) => (k === 0 ? { ...s, ts: s.ts + 1 } : s)) };
      return { payload: { ...p, ocs }, label: 'forgedOc' };
    },
    fewSeals: (p) => (p.seals.length === 0 ? null : { payload: { ...p, seals: p.seals.slice(0, -1) }, label: 'fewSeals' }),
    slotGap: (p) => ({ payload: gap(p), label: p.toSlot === p.fromSlot ? 'fillerGap' : 'gap' }),
    outOfRange: (p) => {
      if (!hasEntries(p)) return null;
      // The last entry moved just past the block's end: still sorted, now outside the range.
      const last = p.entries.length - 1;
      const beyond = config.protocol.genesisUs + (p.toSlot + 1) * config.protocol.slotUs;
      const entries = p.entries.map((e, k) => (k === last ? { ...e, ts: Math.max(beyond, e.ts + 1) } : e));
      return { payload: { ...p, entries }, label: 'beyondBlock' };
    },
  };
}

/** Sends the honest block to half the replicas and a valid filler of the same view to the rest;
 *  correct replicas vote for at most one of them. A filler proposal has no valid twin: sent as is. */
function equivocate(ctx: BehaviourContext, node: ReplicaNode, to: number | 'all', msg: ProposalMsg, payload: BlockPayload): void {
  if (to !== 'all' || payload.toSlot === payload.fromSlot) return node.send(to, msg);
  ctx.report('equivocate:twoBlocks');
  const twin: ProposalMsg = { ...msg, block: { ...msg.block, payload: encodeBlockPayload(fillerPayload(payload.fromSlot)) } };
  const peers = ctx.rng.shuffle([...Array(ctx.config.n).keys()].filter((r) => r !== node.id));
  peers.forEach((peer, i) => node.send(peer, i % 2 === 0 ? msg : twin));
}
