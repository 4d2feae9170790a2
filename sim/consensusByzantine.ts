/**
 * Byzantine behaviours against the consensus phase (THREATS.md, "Against the consensus phase").
 * Each runs the honest core underneath and lies on top of it, with its own key only.
 */
import { bitmapIndexes, bitmapSet, newBitmap } from '../common/bitmap.js';
import { encodeMessage } from '../common/codec.js';
import type { Digest, ReplicaId, View } from '../common/ids.js';
import type { Block, ConsensusMsg, ProposalMsg, QuorumCert, TimeoutMsg, VoteMsg } from '../common/messages.js';
import { timeoutMessage, voteMessage } from '../common/signing.js';
import { blockDigest } from '../consensus/block.js';
import { encodeTestPayload } from '../consensus/testApp.js';
import type { Destination } from '../consensus/types.js';
import type { Behaviour, ConsensusSimNode } from './consensusNode.js';
import type { Rng } from './rng.js';

export const CONSENSUS_BYZANTINE_KINDS = ['silent', 'equivocate', 'conflictingVote', 'garbage', 'badLeader'] as const;
export type ConsensusByzantineKind = (typeof CONSENSUS_BYZANTINE_KINDS)[number];

export function consensusBehaviour(kind: ConsensusByzantineKind, rng: Rng): Behaviour {
  switch (kind) {
    case 'silent':
      return { name: kind, outgoing: () => {} };
    case 'equivocate':
      return { name: kind, outgoing: (node, to, msg) => equivocate(node, rng, to, msg) };
    case 'conflictingVote':
      return { name: kind, incoming: (node, _from, msg) => voteForAnything(node, msg) };
    case 'garbage':
      return { name: kind, incoming: (node, _from, msg) => sendGarbage(node, rng, msg) };
    case 'badLeader':
      return { name: kind, outgoing: (node, to, msg) => proposeBadly(node, rng, to, msg) };
  }
}

/** As leader, sends one block to half the replicas and a different block of the same view to the rest. */
function equivocate(node: ConsensusSimNode, rng: Rng, to: Destination, msg: ConsensusMsg): void {
  if (msg.type !== 'proposal' || to !== 'all') {
    node.send(to, msg);
    return;
  }
  const twin: ProposalMsg = {
    ...msg,
    block: { ...msg.block, payload: encodeTestPayload(msg.block.view, node.id, node.opts.fillerBytes + 1 + rng.int(0, 7)) },
  };
  const peers = rng.shuffle([...Array(node.opts.config.n).keys()].filter((r) => r !== node.id));
  peers.forEach((peer, i) => node.send(peer as ReplicaId, i % 2 === 0 ? msg : twin));
}

/** Votes for every proposal it sees, whatever its locks and earlier votes say. */
function voteForAnything(node: ConsensusSimNode, msg: ConsensusMsg): void {
  if (msg.type !== 'proposal') return;
  const { block } = msg;
  const digest = blockDigest(node.opts.crypto, block);
  const vote: VoteMsg = {
    type: 'vote',
    view: block.view,
    block: digest,
    voter: node.id,
    sig: node.opts.signer.sign(voteMessage(node.opts.config.clusterId, block.view, digest)),
    attachment: new Uint8Array(0),
  };
  if (block.proposer !== node.id) node.send(block.proposer, vote);
}

/** Malformed frames, wrong domain tags, signatures over the wrong bytes, forged voters, far-future views. */
function sendGarbage(node: ConsensusSimNode, rng: Rng, seen: ConsensusMsg): void {
  if (!rng.chance(0.3)) return;
  const { config, signer } = node.opts;
  const n = config.n;
  const target = rng.int(0, n - 1);
  const to: Destination = target === node.id ? 'all' : (target as ReplicaId);
  const view = (node.core?.view ?? 1) as View;
  const someDigest = rng.bytes(32) as Digest;
  switch (rng.int(0, 8)) {
    case 0:
      node.sendRaw(to, rng.bytes(rng.int(0, 300)));
      return;
    case 1: {
      const frame = encodeMessage(seen);
      const cut = frame.slice(0, rng.int(0, frame.length - 1));
      if (cut.length > 0) cut[rng.int(0, cut.length - 1)]! ^= 1 << rng.int(0, 7);
      node.sendRaw(to, cut);
      return;
    }
    case 2: // a vote signed under the timeout domain tag
      node.send(to, {
        type: 'vote', view, block: someDigest, voter: node.id,
        sig: signer.sign(timeoutMessage(config.clusterId, view, 0 as View)), attachment: new Uint8Array(0),
      });
      return;
    case 3: // a valid signature over a different block
      node.send(to, {
        type: 'vote', view, block: someDigest, voter: node.id,
        sig: signer.sign(voteMessage(config.clusterId, view, rng.bytes(32) as Digest)), attachment: new Uint8Array(0),
      });
      return;
    case 4: // claims to be another voter
      node.send(to, {
        type: 'vote', view, block: someDigest, voter: ((node.id + 1) % n) as ReplicaId,
        sig: signer.sign(voteMessage(config.clusterId, view, someDigest)), attachment: new Uint8Array(0),
      });
      return;
    case 5: { // a correctly signed timeout for a far-future view, with no certificate for it
      const far = (view + rng.int(2, 5_000)) as View;
      const highQc = seen.type === 'proposal' ? seen.block.justify : null;
      if (highQc === null) return;
      const t: TimeoutMsg = {
        type: 'timeout', view: far, voter: node.id, highQc,
        sig: signer.sign(timeoutMessage(config.clusterId, far, highQc.view)), attachment: new Uint8Array(0), lastTc: null,
      };
      node.send(to, t);
      return;
    }
    case 6: // a proposal whose QC lost a signer
      if (seen.type === 'proposal' && seen.block.justify.sigs.length > 0) {
        node.send(to, { ...seen, block: { ...seen.block, justify: dropSigner(seen.block.justify, n) } });
      }
      return;
    case 7: // a proposal whose QC repeats one signer's signature for another
      if (seen.type === 'proposal' && seen.block.justify.sigs.length > 1) {
        const qc = seen.block.justify;
        node.send(to, { ...seen, block: { ...seen.block, justify: { ...qc, sigs: [qc.sigs[0]!, ...qc.sigs.slice(0, -1)] } } });
      }
      return;
    case 8: // a request for a block nobody has
      node.send(to, { type: 'blockRequest', digest: someDigest, maxBlocks: rng.int(1, 64) });
      return;
  }
}

function dropSigner(qc: QuorumCert, n: number): QuorumCert {
  const ids = bitmapIndexes(qc.signers).slice(0, -1);
  const signers = newBitmap(n);
  for (const id of ids) bitmapSet(signers, id);
  return { ...qc, signers, sigs: qc.sigs.slice(0, -1) };
}

/** As leader, proposes blocks that correct replicas must refuse. */
function proposeBadly(node: ConsensusSimNode, rng: Rng, to: Destination, msg: ConsensusMsg): void {
  if (msg.type !== 'proposal') {
    node.send(to, msg);
    return;
  }
  const b = msg.block;
  let bad: Block;
  switch (rng.int(0, 4)) {
    case 0: // a payload the App rejects
      bad = { ...b, payload: encodeTestPayload(b.view + 1, node.id, 3) };
      break;
    case 1: // parent is not the certified block
      bad = { ...b, parent: rng.bytes(32) as Digest };
      break;
    case 2: // height does not follow the parent
      bad = { ...b, height: (b.height + 1) as Block['height'] };
      break;
    case 3: // QC with too few signers
      bad = b.justify.sigs.length > 0 ? { ...b, justify: dropSigner(b.justify, node.opts.config.n) } : { ...b, payload: new Uint8Array(1) };
      break;
    default: // drops the TC that justified the view
      bad = b;
      if (msg.tc === null) bad = { ...b, payload: new Uint8Array(2) };
      node.send(to, { type: 'proposal', block: bad, tc: null });
      return;
  }
  node.send(to, { type: 'proposal', block: bad, tc: msg.tc });
}
