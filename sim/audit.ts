/**
 * Watches every vote and timeout a correct replica signs, at the moment it signs, so a double vote
 * is caught even when the vote never leaves the replica (a leader's vote to itself) or is lost.
 * A correct replica must never sign two votes for different blocks in one view, nor vote in a view
 * after it timed out in that view — across crashes and restarts.
 */
import { ByteReader, toHex, utf8 } from '../common/bytes.js';
import type { Signer } from '../common/crypto/types.js';
import { DomainTag } from '../common/signing.js';

const VOTE_TAG = utf8(DomainTag.Vote);
const TIMEOUT_TAG = utf8(DomainTag.Timeout);
const CLUSTER_ID_BYTES = 32;

function tagIs(message: Uint8Array, tag: Uint8Array): boolean {
  if (message[0] !== tag.length) return false;
  for (let i = 0; i < tag.length; i++) if (message[1 + i] !== tag[i]) return false;
  return true;
}

export class SignatureAudit {
  private readonly votes = new Map<number, Map<number, string>>();
  private readonly timeouts = new Map<number, Set<number>>();
  readonly violations: string[] = [];

  /** A signer that reports every signature of `replica` to this audit. */
  wrap(replica: number, signer: Signer, nowUs: () => number): Signer {
    return {
      publicKey: signer.publicKey,
      sign: (message) => {
        this.record(replica, message, nowUs());
        return signer.sign(message);
      },
    };
  }

  private record(replica: number, message: Uint8Array, atUs: number): void {
    const isVote = tagIs(message, VOTE_TAG);
    if (!isVote && !tagIs(message, TIMEOUT_TAG)) return;
    const r = new ByteReader(message.subarray(1 + message[0]! + CLUSTER_ID_BYTES));
    const view = r.u64();
    if (isVote) {
      const block = toHex(r.bytes(32));
      let byView = this.votes.get(replica);
      if (byView === undefined) this.votes.set(replica, (byView = new Map()));
      const earlier = byView.get(view);
      if (earlier !== undefined && earlier !== block) {
        this.violations.push(`double vote: replica ${replica} voted for two blocks in view ${view} (at ${atUs} µs)`);
      }
      if (this.timeouts.get(replica)?.has(view) === true) {
        this.violations.push(`vote after timeout: replica ${replica} voted in view ${view} after timing out in it (at ${atUs} µs)`);
      }
      byView.set(view, block);
    } else {
      let set = this.timeouts.get(replica);
      if (set === undefined) this.timeouts.set(replica, (set = new Set()));
      set.add(view);
    }
  }
}
