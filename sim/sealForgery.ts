/**
 * 'fakeSeal': a Byzantine replica slips made-up entries into the seal its votes and timeouts carry,
 * and signs the seal with its own key, so the seal's signature is valid and only its content lies:
 *  - a random digest with a bogus OC (q stamps whose signatures are garbage), or
 *  - a real OC (one it acked or saw in a Sequence) listed at a timestamp that is not its median.
 * A correct leader must drop such a seal (checkAttachment); one that used it would propose a block
 * correct replicas refuse. Seen from the outside: correct replicas report invalid attachments, and
 * every block still validates.
 */
import { toHex } from '../common/bytes.js';
import { decodeSealAttachment, encodeSealAttachment } from '../common/codec.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import type { OrderingCert, SealAttachment, SealEntry } from '../common/messages.js';
import { medianTimestamp, ocHash } from '../ordering/oc.js';
import { compareEntries, signSeal } from '../ordering/seal.js';
import { SlotClock } from '../ordering/slots.js';
import type { BehaviourContext } from './orderingByzantine.js';
import type { ReplicaBehaviour } from './replicaNode.js';

/** OCs remembered from incoming Sequence messages, to list at a wrong timestamp. */
const SEEN_OC_MEMORY = 64;

export function fakeSeals(ctx: BehaviourContext): ReplicaBehaviour {
  const seen: OrderingCert[] = [];
  return {
    name: 'fakeSeal',
    incoming: (_node, _from, msg) => {
      if (msg.type === 'sequence') {
        seen.push(msg.oc);
        if (seen.length > SEEN_OC_MEMORY) seen.shift();
      }
      return true;
    },
    outgoing: (node, to, msg) => {
      if ((msg.type !== 'vote' && msg.type !== 'timeout') || msg.attachment.length === 0) return node.send(to, msg);
      const decoded = decodeSealAttachment(msg.attachment, { replicaCount: ctx.config.n });
      if (!decoded.ok || decoded.value === null) return node.send(to, msg);
      const forged = forge(ctx, node.id, decoded.value, seen);
      node.send(to, { ...msg, attachment: encodeSealAttachment(forged) });
    },
  };
}

function forge(ctx: BehaviourContext, self: ReplicaId, attachment: SealAttachment, seen: readonly OrderingCert[]): SealAttachment {
  const { config, crypto, rng } = ctx;
  const slots = new SlotClock(config.protocol);
  const { seal } = attachment;
  // An empty range cannot hold an entry: claim one more sealed slot (a lie about its own frontier,
  // harmless next to the lie about the entry).
  const toSlot = (seal.toSlot > seal.fromSlot ? seal.toSlot : seal.fromSlot + 1) as Slot;
  const slot = rng.int(seal.fromSlot + 1, toSlot);
  const slotStart = config.protocol.genesisUs + slot * config.protocol.slotUs;
  const ocs = [...attachment.ocs];
  let entry: SealEntry;
  const real = [...seen, ...attachment.ocs];
  if (real.length > 0 && rng.chance(0.5)) {
    const oc = rng.pick(real);
    const median = medianTimestamp(oc.stamps, config.f);
    // Any timestamp in range but the median: the OC is genuine, the entry's ts is not its median.
    let ts = slotStart + rng.int(0, config.protocol.slotUs - 1);
    if (ts === median) ts = slots.slotOf(ts + 1) === slot ? ts + 1 : ts - 1;
    entry = { digest: oc.digest, ts, ocHash: ocHash(crypto, oc) };
    if (!ocs.some((o) => toHex(ocHash(crypto, o)) === toHex(entry.ocHash))) ocs.push(oc);
    ctx.report('fakeSeal:wrongTs');
  } else {
    const digest = rng.bytes(32) as Digest;
    const ts = slotStart + rng.int(0, config.protocol.slotUs - 1);
    // q stamps around ts, so the median is the entry's ts; only the signatures are made up.
    const stamps = [...Array(config.n).keys()]
      .slice(0, config.q)
      .map((r, i) => ({ replica: r as ReplicaId, ts: ts + (i - config.f), sig: rng.bytes(64) }));
    const bogus: OrderingCert = { digest, stamps };
    entry = { digest, ts: medianTimestamp(stamps, config.f), ocHash: ocHash(crypto, bogus) };
    ocs.push(bogus);
    ctx.report('fakeSeal:bogusOc');
  }
  const entries = [...seal.entries, entry].sort(compareEntries);
  return { seal: signSeal(config, crypto, ctx.signer, self, seal.fromSlot, toSlot, entries), ocs };
}
