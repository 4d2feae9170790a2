/**
 * The simulation's checkers must be able to say no: a seed sweep that reports zero violations means
 * something only if a double vote, a vote after a timeout, a fork or a gap would have been caught.
 */
import { describe, expect, it } from 'vitest';
import { bitmapSet, newBitmap } from '../common/bitmap.js';
import type { Signer } from '../common/crypto/types.js';
import type { Digest, Height, ReplicaId, View } from '../common/ids.js';
import type { Block, Message, QuorumCert, TimeoutCert } from '../common/messages.js';
import { timeoutMessage, voteMessage } from '../common/signing.js';
import { SignatureAudit } from './audit.js';
import { ConsensusChecker } from './consensusChecker.js';

const CLUSTER = new Uint8Array(32).fill(7) as Digest;
const digest = (b: number): Digest => new Uint8Array(32).fill(b) as Digest;
const nullSigner: Signer = { publicKey: new Uint8Array(32), sign: () => new Uint8Array(64) };

describe('SignatureAudit', () => {
  it('flags two votes for different blocks in one view, across a restart too', () => {
    const audit = new SignatureAudit();
    const before = audit.wrap(1, nullSigner, () => 10);
    before.sign(voteMessage(CLUSTER, 5 as View, digest(1)));
    before.sign(voteMessage(CLUSTER, 5 as View, digest(1))); // the same vote again is fine
    before.sign(voteMessage(CLUSTER, 6 as View, digest(2)));
    expect(audit.violations).toEqual([]);
    const afterRestart = audit.wrap(1, nullSigner, () => 20);
    afterRestart.sign(voteMessage(CLUSTER, 6 as View, digest(3)));
    expect(audit.violations).toEqual(['double vote: replica 1 voted for two blocks in view 6 (at 20 µs)']);
  });

  it('flags a vote in a view the replica timed out in, but not in the next one', () => {
    const audit = new SignatureAudit();
    const signer = audit.wrap(2, nullSigner, () => 30);
    signer.sign(timeoutMessage(CLUSTER, 8 as View, 6 as View));
    signer.sign(voteMessage(CLUSTER, 9 as View, digest(4)));
    expect(audit.violations).toEqual([]);
    signer.sign(voteMessage(CLUSTER, 8 as View, digest(4)));
    expect(audit.violations).toEqual(['vote after timeout: replica 2 voted in view 8 after timing out in it (at 30 µs)']);
  });

  it('audits what leaves a replica: its votes, and the QCs and TCs it sends that count its own', () => {
    const audit = new SignatureAudit();
    const signers = (...ids: number[]): Uint8Array => {
      const b = newBitmap(4);
      for (const id of ids) bitmapSet(b, id);
      return b;
    };
    const qc = (view: number, block: Digest, ...ids: number[]): QuorumCert => ({ view: view as View, block, signers: signers(...ids), sigs: ids.map(() => new Uint8Array(64)) });
    const proposal = (justify: QuorumCert, tc: TimeoutCert | null = null): Message => ({
      type: 'proposal',
      block: { parent: justify.block, view: (justify.view + 1) as View, height: 9 as Height, proposer: 0 as ReplicaId, justify, payload: new Uint8Array(0) },
      tc,
    });
    audit.observeSent(1, { type: 'vote', view: 5 as View, block: digest(1), voter: 1 as ReplicaId, sig: new Uint8Array(64), attachment: new Uint8Array(0) }, 10);
    // A QC from replica 0 counting replica 1's vote for the same block, and one without replica 1.
    audit.observeSent(0, proposal(qc(5, digest(1), 0, 1, 2)), 11);
    audit.observeSent(1, proposal(qc(5, digest(2), 0, 2, 3)), 12);
    expect(audit.violations).toEqual([]);
    // Replica 0's own vote leaves only inside its QCs: two for different blocks in one view.
    audit.observeSent(0, proposal(qc(5, digest(3), 0, 2, 3)), 13);
    expect(audit.violations).toEqual(['double vote: replica 0 voted for two blocks in view 5 (at 13 µs)']);

    // A TC counting replica 2's timeout in view 7: a vote of its own in view 7 after that is wrong,
    // but a QC of view 7 sent later may count a vote made before the timeout.
    const tc: TimeoutCert = { view: 7 as View, signers: signers(1, 2, 3), sigs: [1, 2, 3].map(() => new Uint8Array(64)), highQcViews: [4, 4, 4] as View[] };
    audit.observeSent(2, proposal(qc(6, digest(4), 1, 2, 3), tc), 20);
    audit.observeSent(2, proposal(qc(7, digest(5), 1, 2, 3)), 21);
    expect(audit.violations).toHaveLength(1);
    audit.observeSent(2, { type: 'vote', view: 7 as View, block: digest(5), voter: 2 as ReplicaId, sig: new Uint8Array(64), attachment: new Uint8Array(0) }, 22);
    expect(audit.violations.at(-1)).toBe('vote after timeout: replica 2 voted in view 7 after timing out in it (at 22 µs)');
  });

  it('keeps replicas apart', () => {
    const audit = new SignatureAudit();
    audit.wrap(0, nullSigner, () => 0).sign(voteMessage(CLUSTER, 3 as View, digest(1)));
    audit.wrap(1, nullSigner, () => 0).sign(voteMessage(CLUSTER, 3 as View, digest(2)));
    expect(audit.violations).toEqual([]);
  });
});

describe('ConsensusChecker', () => {
  const block = (height: number): Block => ({
    parent: digest(0),
    view: height as View,
    height: height as Height,
    proposer: 0 as ReplicaId,
    justify: { view: 0 as View, block: digest(0), signers: newBitmap(4), sigs: [] },
    payload: new Uint8Array(0),
  });

  it('flags two correct replicas committing different blocks at one height, and a gap', () => {
    const checker = new ConsensusChecker(4, (r) => r !== 3);
    checker.onCommit(0, [{ block: block(1), digest: digest(1) }, { block: block(2), digest: digest(2) }], 100);
    checker.onCommit(1, [{ block: block(1), digest: digest(1) }], 110);
    expect(checker.violations).toEqual([]);
    checker.onCommit(1, [{ block: block(2), digest: digest(9) }], 120);
    checker.onCommit(2, [{ block: block(2), digest: digest(2) }], 130);
    expect(checker.violations).toHaveLength(2);
    expect(checker.violations[0]).toMatch(/^agreement: replica 1 committed 090909090909 at height 2/);
    expect(checker.violations[1]).toMatch(/^agreement: replica 2 committed height 2 after 0/);
  });

  it('ignores what a Byzantine replica claims to commit', () => {
    const checker = new ConsensusChecker(4, (r) => r !== 3);
    checker.onCommit(0, [{ block: block(1), digest: digest(1) }], 100);
    checker.onCommit(3, [{ block: block(1), digest: digest(5) }], 100);
    expect(checker.violations).toEqual([]);
  });

  it('flags a replica that commits nothing after GST, or stops committing', () => {
    const checker = new ConsensusChecker(4, () => true);
    checker.onCommit(0, [{ block: block(1), digest: digest(1) }], 1_500_000);
    checker.onCommit(1, [{ block: block(1), digest: digest(1) }], 9_500_000);
    checker.checkLiveness([0, 1, 2], 1_000_000, 10_000_000, 2_000_000);
    expect(checker.violations).toEqual([
      'liveness: replica 0 stopped committing at 1.5 s (run ends 10 s)',
      'liveness: replica 1 committed nothing within 2 s after GST (1 s)',
      'liveness: replica 2 committed nothing within 2 s after GST (1 s)',
    ]);
  });
});
