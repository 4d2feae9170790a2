/**
 * A Byzantine replica against state transfer (THREATS.md, issue 13): honest in everything else, it
 * serves the checkpoint pieces peers ask it for corrupted — flipped bytes, random bytes of the
 * right length, or a piece of another checkpoint it holds (stale) — and answers a request for its
 * latest stable checkpoint with the oldest certificate it ever sent. A replica fetching a
 * checkpoint must check every piece against the certified digest, report the peer, and finish from
 * the others; a stale certificate must not send it backwards.
 */
import type { CheckpointCert, Message } from '../common/messages.js';
import type { BehaviourContext } from './orderingByzantine.js';
import type { ReplicaBehaviour } from './replicaNode.js';

export function corruptChunks(ctx: BehaviourContext): ReplicaBehaviour {
  let oldestCert: CheckpointCert | null = null;
  return {
    name: 'corruptChunks',
    outgoing: (node, to, msg) => {
      if (msg.type === 'checkpointCert') {
        oldestCert ??= msg.cert;
        if (oldestCert !== msg.cert) ctx.report('corruptChunks:staleCert');
        return node.send(to, { ...msg, cert: oldestCert });
      }
      if (msg.type !== 'chunkResponse') return node.send(to, msg);
      const bytes = msg.bytes.slice();
      const lie = ctx.rng.int(0, 2);
      let out: Message;
      if (lie === 0 && bytes.length > 0) {
        bytes[ctx.rng.int(0, bytes.length - 1)]! ^= 0x5a;
        ctx.report('corruptChunks:flipped');
        out = { ...msg, bytes };
      } else if (lie === 1) {
        // A piece of whatever other checkpoint it holds, under the asked one's name.
        const other = node.storage.latestStableCert();
        const stale = other === null ? undefined : node.storage.readCheckpointPieceSync(other.height, other.state, msg.index);
        ctx.report('corruptChunks:stale');
        out = { ...msg, bytes: stale !== undefined && other!.height !== msg.height ? stale : bytes.subarray(0, Math.floor(bytes.length / 2)) };
      } else {
        for (let i = 0; i < bytes.length; i++) bytes[i] = ctx.rng.int(0, 255);
        ctx.report('corruptChunks:random');
        out = { ...msg, bytes };
      }
      node.send(to, out);
    },
  };
}
