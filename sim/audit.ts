/**
 * Watches the votes and timeouts of correct replicas for double votes: a correct replica must never
 * vote for two blocks in one view, nor vote in a view after it timed out in it — across crashes and
 * restarts. Two ways to watch:
 *  - `wrap` (consensus layer, whose replicas write synchronously): every signature at the moment it
 *    is made, so a double vote is caught even when the vote never leaves the replica;
 *  - `observeSent` (full layer, whose replicas write asynchronously and may crash before a write
 *    lands): what leaves the replica — its votes and timeouts, and the QCs and TCs it sends that
 *    count its own (a leader's vote to itself leaves that way). A vote signed but lost in a crash
 *    before anything relying on it left is rightly forgotten, by the replica and by the audit.
 */
import { bitmapGet } from '../common/bitmap.js';
import { ByteReader, toHex, utf8 } from '../common/bytes.js';
import type { Signer } from '../common/crypto/types.js';
import type { Message, QuorumCert, TimeoutCert } from '../common/messages.js';
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

  /** The replica lost its store (a wipe the run injects, counted as a fault): what it voted before
   *  is forgotten, by it and by the audit. */
  forget(replica: number): void {
    this.votes.delete(replica);
    this.timeouts.delete(replica);
  }

  /** Records the votes and timeouts of `replica` that a message it sent carries or counts. */
  observeSent(replica: number, msg: Message, atUs: number): void {
    // A certificate may leave long after the vote it counts (after a timeout in that view, say):
    // it can prove a double vote, not a vote after a timeout.
    const qc = (cert: QuorumCert): void => {
      if (cert.view > 0 && bitmapGet(cert.signers, replica)) this.vote(replica, cert.view, toHex(cert.block), atUs, false);
    };
    const tc = (cert: TimeoutCert | null): void => {
      if (cert !== null && bitmapGet(cert.signers, replica)) this.timeout(replica, cert.view);
    };
    switch (msg.type) {
      case 'vote':
        if (msg.voter === replica) this.vote(replica, msg.view, toHex(msg.block), atUs, true);
        break;
      case 'timeout':
        if (msg.voter === replica) this.timeout(replica, msg.view);
        qc(msg.highQc);
        break;
      case 'proposal':
        qc(msg.block.justify);
        tc(msg.tc);
        break;
      case 'blockResponse':
        for (const b of msg.blocks) qc(b.justify);
        break;
      default:
        break;
    }
  }

  private record(replica: number, message: Uint8Array, atUs: number): void {
    const isVote = tagIs(message, VOTE_TAG);
    if (!isVote && !tagIs(message, TIMEOUT_TAG)) return;
    const r = new ByteReader(message.subarray(1 + message[0]! + CLUSTER_ID_BYTES));
    const view = r.u64();
    if (isVote) this.vote(replica, view, toHex(r.bytes(32)), atUs, true);
    else this.timeout(replica, view);
  }

  private vote(replica: number, view: number, block: string, atUs: number, afterTimeoutCounts: boolean): void {
    {
      let byView = this.votes.get(replica);
      if (byView === undefined) this.votes.set(replica, (byView = new Map()));
      const earlier = byView.get(view);
      if (earlier !== undefined && earlier !== block) {
        this.violations.push(`double vote: replica ${replica} voted for two blocks in view ${view} (at ${atUs} µs)`);
      }
      if (afterTimeoutCounts && this.timeouts.get(replica)?.has(view) === true) {
        this.violations.push(`vote after timeout: replica ${replica} voted in view ${view} after timing out in it (at ${atUs} µs)`);
      }
      byView.set(view, block);
    }
  }

  private timeout(replica: number, view: number): void {
    let set = this.timeouts.get(replica);
    if (set === undefined) this.timeouts.set(replica, (set = new Set()));
    set.add(view);
  }
}
