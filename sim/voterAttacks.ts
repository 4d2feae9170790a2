/**
 * Byzantine voters against the full core (THREATS.md "Against the consensus phase"), after the
 * consensus-only behaviours of sim/consensusByzantine.ts:
 *  - conflictingVote: votes for every proposal it sees, valid or not, whatever it voted before;
 *  - garbage: malformed frames, wrong domain tags, valid signatures over the wrong bytes, another
 *    voter's name, far-future timeouts, requests for blocks and batches nobody has.
 * Agreement must hold, views must not jump without a certificate, and correct replicas count the
 * bad input without crashing.
 */
import { encodeMessage } from '../common/codec.js';
import type { Digest, ReplicaId, View } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { timeoutMessage, voteMessage } from '../common/signing.js';
import { blockDigest } from '../consensus/block.js';
import type { BehaviourContext } from './orderingByzantine.js';
import type { ReplicaBehaviour, ReplicaNode } from './replicaNode.js';

/** Chance that an incoming message triggers a piece of garbage. */
const GARBAGE_RATE = 0.2;

export function conflictingVotes(ctx: BehaviourContext): ReplicaBehaviour {
  return {
    name: 'conflictingVote',
    incoming: (node, _from, msg) => {
      if (msg.type !== 'proposal' || msg.block.proposer === node.id) return true;
      const { block } = msg;
      const digest = blockDigest(ctx.crypto, block);
      ctx.report('conflictingVote:vote');
      // Stable leaders: the proposer collects the votes of its view.
      node.send(block.proposer, {
        type: 'vote',
        view: block.view,
        block: digest,
        voter: node.id,
        sig: ctx.signer.sign(voteMessage(ctx.config.clusterId, block.view, digest)),
        attachment: new Uint8Array(0),
      });
      return true;
    },
  };
}

export function sendGarbage(ctx: BehaviourContext): ReplicaBehaviour {
  return {
    name: 'garbage',
    incoming: (node, _from, msg) => {
      if (ctx.rng.chance(GARBAGE_RATE)) garbage(ctx, node, msg);
      return true;
    },
  };
}

function garbage(ctx: BehaviourContext, node: ReplicaNode, seen: Message): void {
  const { rng, config, signer } = ctx;
  const n = config.n;
  const target = rng.int(0, n - 1);
  const to = target === node.id ? 'all' : target;
  const view = (node.core?.consensus.view ?? 1) as View;
  const someDigest = rng.bytes(32) as Digest;
  const kind = rng.int(0, 8);
  ctx.report(`garbage:${kind}`);
  switch (kind) {
    case 0:
      return node.sendRaw(to, rng.bytes(rng.int(0, 300)));
    case 1: {
      const frame = encodeMessage(seen);
      const cut = frame.slice(0, rng.int(0, frame.length - 1));
      if (cut.length > 0) cut[rng.int(0, cut.length - 1)]! ^= 1 << rng.int(0, 7);
      return node.sendRaw(to, cut);
    }
    case 2: // a vote signed under the timeout domain tag
      return node.send(to, {
        type: 'vote', view, block: someDigest, voter: node.id,
        sig: signer.sign(timeoutMessage(config.clusterId, view, 0 as View)), attachment: new Uint8Array(0),
      });
    case 3: // a valid signature over a different block
      return node.send(to, {
        type: 'vote', view, block: someDigest, voter: node.id,
        sig: signer.sign(voteMessage(config.clusterId, view, rng.bytes(32) as Digest)), attachment: new Uint8Array(0),
      });
    case 4: // claims to be another voter
      return node.send(to, {
        type: 'vote', view, block: someDigest, voter: ((node.id + 1) % n) as ReplicaId,
        sig: signer.sign(voteMessage(config.clusterId, view, someDigest)), attachment: new Uint8Array(0),
      });
    case 5: { // a correctly signed timeout for a far-future view, with no certificate for it
      if (seen.type !== 'proposal') return;
      const far = (view + rng.int(2, 5_000)) as View;
      const highQc = seen.block.justify;
      return node.send(to, {
        type: 'timeout', view: far, voter: node.id, highQc,
        sig: signer.sign(timeoutMessage(config.clusterId, far, highQc.view)), attachment: rng.bytes(rng.int(1, 64)), lastTc: null,
      });
    }
    case 6: // a seal attachment of random bytes on an otherwise valid-looking vote
      return node.send(to, {
        type: 'vote', view, block: someDigest, voter: node.id,
        sig: signer.sign(voteMessage(config.clusterId, view, someDigest)), attachment: rng.bytes(rng.int(1, 200)),
      });
    case 7: // a Sequence with an OC of made-up stamps, as if it were a collector
      return node.send(to, {
        type: 'sequence',
        oc: { digest: someDigest, stamps: [...Array(config.q).keys()].map((r) => ({ replica: r as ReplicaId, ts: rng.int(1, 2 ** 40), sig: rng.bytes(64) })) },
        batch: null,
      });
    default: // requests for blocks and batches nobody has
      node.send(to, { type: 'blockRequest', digest: someDigest, maxBlocks: rng.int(1, 64) });
      return node.send(to, { type: 'batchRequest', digests: [someDigest] });
  }
}
