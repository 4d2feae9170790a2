/**
 * 'impersonatingReplica': a Byzantine replica uses what it sees of clients' commands (every batch
 * passes through it in phase 1, and thin clients' commands through it as a gateway) to act in their
 * names. For each client batch, other gateway's batch or thin command it is sent, it builds a
 * gateway batch of its own — signed with its own key, as a gateway's must be — holding commands
 * under the client's key: the client's own sequence numbers with its own payloads (to pre-empt
 * them, or make the real ones duplicates), and numbers far ahead (to move the client's window). It
 * cannot sign as the client, so it signs them itself, or reuses the client's batch signature. It
 * submits that batch to every other replica. Correct replicas must refuse it at phase 1, so it
 * never gets an OC; the clients' commands still execute, each once, as they wrote them. Its own
 * core runs honestly underneath.
 *
 * It learns nothing from a fellow impersonator's batches: two of them in one run (n = 7 has f = 2)
 * would otherwise answer each other's forgeries with forgeries for ever, every submit starting an
 * echo that never ends — a run that never finishes (seed 1662, n = 7, 3-chain, direct), not a
 * threat to the correct replicas that a single impersonator does not already pose.
 */
import { BatchMode, batchCollectorKey, batchSignature, decodeBatchCommands, encodeBatch, type SignedCommand } from '../common/batch.js';
import { batchSigner, signCommand } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import { encodeMessage } from '../common/codec.js';
import { encodeKvCommand, KvOp } from '../ordering/kvStore.js';
import type { BehaviourContext } from './orderingByzantine.js';
import type { ReplicaBehaviour } from './replicaNode.js';

/** How far ahead of a victim's number the forged "window movers" are. */
const FAR_AHEAD = 2 ** 40;
/** The key its forged puts write. */
const STOLEN_KEY = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 7);
/** The forged batch's lifetime (its commands' deadlines are the victim's). */
const FORGED_LIFETIME_US = 10_000_000;

export function impersonatingReplica(ctx: BehaviourContext): ReplicaBehaviour {
  const sign = batchSigner(ctx.config.clusterId, ctx.crypto, ctx.signer);
  let nonce = 0;
  return {
    name: 'impersonatingReplica',
    incoming: (node, _from, msg) => {
      // What it learns of clients' commands: (key, seq, deadline, payload) and a signature of theirs.
      let seen: readonly { clientKey: Uint8Array; seq: number; expiresAtUs: number; payload: Uint8Array; sig: Uint8Array }[] = [];
      if (msg.type === 'command') {
        seen = [msg];
      } else if (msg.type === 'submit' && !ctx.impersonatorKeys.has(toHex(batchCollectorKey(msg.batch)))) {
        const commands = decodeBatchCommands(msg.batch);
        const batchSig = batchSignature(msg.batch);
        if (commands.ok) seen = commands.value.slice(0, 4).map((c) => ({ ...c, sig: c.sig ?? batchSig }));
      }
      if (seen.length === 0) return true;
      const forged: SignedCommand[] = [];
      for (const c of seen) {
        const stolen = encodeKvCommand(KvOp.Put, STOLEN_KEY, Uint8Array.of(0x66));
        const own = signCommand(ctx.config.clusterId, ctx.crypto, ctx.signer, { seq: c.seq, expiresAtUs: c.expiresAtUs, payload: stolen });
        // Its payload under the client's number, signed by itself; the client's payload at a far
        // number, with the client's signature of something else.
        forged.push({ ...own, clientKey: c.clientKey });
        forged.push({ clientKey: c.clientKey, seq: c.seq + FAR_AHEAD, expiresAtUs: c.expiresAtUs, payload: c.payload, sig: c.sig });
      }
      const now = node.localNowUs();
      const batch = encodeBatch(
        { mode: BatchMode.Gateway, collectorKey: ctx.signer.publicKey, nonce: nonce++, expiresAtUs: now + FORGED_LIFETIME_US, commands: forged },
        sign,
      );
      ctx.report('impersonatingReplica:forged');
      node.sendRaw('all', encodeMessage({ type: 'submit', batch }));
      return true;
    },
  };
}
