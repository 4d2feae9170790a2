/**
 * Untrusted clients (issue 12) and the notice findings of issue 11 (4: registrations and notices
 * taken over by a second connection; 6: a cached notice returned before the OC is checked), on four
 * hand-driven replicas: a client is its key, proven on its connection and signed into its batches,
 * so nobody — client, gateway or Byzantine replica — can act in another client's name.
 */
import { describe, expect, it } from 'vitest';
import { BatchMode, decodeResults, encodeBatch, type SignedCommand } from '../common/batch.js';
import { batchSigner, signCommand } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import { ErrorCode } from '../common/errors.js';
import type { ReplicaId } from '../common/ids.js';
import type { Message, OrderingCert, RefusedMsg } from '../common/messages.js';
import { MAX_CONNECTIONS_PER_CLIENT_KEY } from './clientRegistry.js';
import { ResultStatus } from './executor.js';
import { CLIENT_CONN, get, kvBatch, put, started, type HandCluster } from './handCluster.js';
import { makeOc, testClient, testCrypto } from './testHarness.js';

const alice = testClient(); // the hand cluster's own client, on CLIENT_CONN
const mallory = testClient(66);
const MALLORY_CONN = 9;
const LIFETIME_US = 20_000_000;

/** What replica `id` answers a client request on `conn`, stepped directly. */
function ask(cluster: HandCluster, id: number, conn: number, msg: Message): Message[] {
  return cluster.step(id, { kind: 'client', conn, msg }).toClients.filter((c) => c.conn === conn).map((c) => c.msg);
}

const refusalOf = (replies: readonly Message[]): string | undefined => (replies.find((m) => m.type === 'refused') as RefusedMsg | undefined)?.reason;

/** Results status bytes of the batch `digest` at replica `id`. */
function statuses(cluster: HandCluster, id: number, digest: Uint8Array): number[] {
  const record = cluster.executedRecord(id, digest as never);
  expect(record).toBeDefined();
  const results = decodeResults(record!.results);
  return results.ok ? results.value.map((r) => r[0]!) : [];
}

describe('a client acts only in its own name', () => {
  it('a batch tagged with another client’s key is refused at phase 1 by every correct replica, and the victim’s own commands run', () => {
    const cluster = started();
    for (let r = 0; r < cluster.n; r++) cluster.authenticate(r, MALLORY_CONN, mallory);
    const deadline = cluster.nowUs + LIFETIME_US;
    // Mallory pre-empts Alice's command 1 with her own payload, under Alice's key: signed by
    // Mallory (she cannot sign as Alice), or Alice's genuine batch sent on Mallory's connection.
    const forged = encodeBatch(
      { mode: BatchMode.Direct, collectorKey: alice.publicKey, nonce: 1, expiresAtUs: deadline, commands: [{ seq: 1, payload: put('owner', 'mallory') }] },
      batchSigner(cluster.keys.config.clusterId, testCrypto, mallory),
    );
    const genuine = kvBatch([[1, put('owner', 'alice')]], deadline);
    for (let r = 0; r < cluster.n; r++) {
      expect(refusalOf(ask(cluster, r, MALLORY_CONN, { type: 'submit', batch: forged }))).toBe('badSignature');
      expect(refusalOf(ask(cluster, r, MALLORY_CONN, { type: 'submit', batch: genuine }))).toBe('badSignature');
      expect(refusalOf(ask(cluster, r, CLIENT_CONN, { type: 'submit', batch: forged }))).toBe('badSignature');
    }
    // No replica stamped either, so no OC can exist for them; Alice's command 1 executes as she wrote it.
    const digest = cluster.submit(genuine);
    cluster.runUntilExecuted(digest);
    for (let r = 0; r < cluster.n; r++) expect(statuses(cluster, r, digest)).toEqual([ResultStatus.Executed]);
    const read = cluster.submit(kvBatch([[2, get('owner')]], deadline));
    const done = cluster.runUntilExecuted(read);
    const results = decodeResults(done.kind === 'executed' ? done.results : new Uint8Array(0));
    expect(results.ok && new TextDecoder().decode(results.value[0]!.subarray(1))).toBe('alice');
  });

  it('a Byzantine replica cannot make a victim’s command a duplicate or move its window: its forged gateway batch gets no correct stamp', () => {
    const cluster = started();
    const byzantine = 3 as ReplicaId;
    const { clusterId } = cluster.keys.config;
    const deadline = cluster.nowUs + LIFETIME_US;
    // It saw Alice's seq 1 in some batch's bytes; it tags its own payload with Alice's key and
    // that seq, and far-ahead numbers to move her window, with signatures it cannot make.
    const fakeSig = (cmd: Omit<SignedCommand, 'sig'>): SignedCommand => ({ ...cmd, sig: signCommand(clusterId, testCrypto, mallory, cmd).sig });
    const commands = [
      fakeSig({ clientKey: alice.publicKey, seq: 1, expiresAtUs: deadline, payload: put('owner', 'byzantine') }),
      ...Array.from({ length: 3 }, (_, i) => fakeSig({ clientKey: alice.publicKey, seq: 2 ** 50 + i, expiresAtUs: deadline, payload: get('x') })),
    ];
    const batch = encodeBatch(
      { mode: BatchMode.Gateway, collectorKey: cluster.keys.config.replicas[byzantine]!.publicKey, nonce: 7, expiresAtUs: deadline, commands },
      batchSigner(clusterId, testCrypto, cluster.keys.signers[byzantine]!),
    );
    for (const r of [0, 1, 2]) {
      const out = cluster.step(r, { kind: 'peer', from: byzantine, msg: { type: 'submit', batch } });
      expect(out.toPeers.map((p) => p.msg)).toMatchObject([{ type: 'refused', reason: 'badSignature' }]);
    }
    // Its own stamp and two made-up ones are no OC: the correct replicas refuse to sequence it.
    const digest = testCrypto.sha256(batch);
    const oc = makeOc(cluster.keys, digest, [[byzantine, cluster.nowUs]]);
    for (const r of [0, 1, 2]) {
      const out = cluster.step(r, { kind: 'peer', from: byzantine, msg: { type: 'sequence', oc, batch } });
      expect(out.toPeers.map((p) => p.msg)).toMatchObject([{ type: 'refused', reason: 'badCert' }]);
    }
    // Alice's own commands 1 and 2 execute as hers, neither a duplicate nor too far.
    const own = cluster.submit(kvBatch([[1, put('owner', 'alice')], [2, get('owner')]], deadline));
    cluster.runUntilExecuted(own);
    for (let r = 0; r < cluster.n; r++) expect(statuses(cluster, r, own)).toEqual([ResultStatus.Executed, ResultStatus.Executed]);
  });

  it('a gateway cannot forge or alter a thin client’s command: every other replica refuses the batch', () => {
    const cluster = started();
    const gateway = 1 as ReplicaId;
    const { clusterId } = cluster.keys.config;
    const deadline = cluster.nowUs + LIFETIME_US;
    const honest = signCommand(clusterId, testCrypto, alice, { seq: 5, expiresAtUs: deadline, payload: put('k', 'v') });
    const cases: SignedCommand[] = [
      { ...honest, payload: put('k', 'forged') },
      { ...honest, seq: 6 },
      { ...signCommand(clusterId, testCrypto, mallory, { seq: 5, expiresAtUs: deadline, payload: put('k', 'v') }), clientKey: alice.publicKey },
    ];
    cases.forEach((forged, i) => {
      const batch = encodeBatch(
        { mode: BatchMode.Gateway, collectorKey: cluster.keys.config.replicas[gateway]!.publicKey, nonce: 100 + i, expiresAtUs: deadline, commands: [honest, forged] },
        batchSigner(clusterId, testCrypto, cluster.keys.signers[gateway]!),
      );
      for (const r of [0, 2, 3]) {
        const out = cluster.step(r, { kind: 'peer', from: gateway, msg: { type: 'submit', batch } });
        expect(out.toPeers.map((p) => p.msg)).toMatchObject([{ type: 'refused', reason: 'badSignature' }]);
      }
    });
    // A correct gateway takes a command only from a connection authenticated as its key.
    cluster.authenticate(gateway, MALLORY_CONN, mallory);
    expect(ask(cluster, gateway, MALLORY_CONN, { type: 'command', ...honest })).toMatchObject([{ type: 'error', code: ErrorCode.BadSignature }]);
    // The honest command through an honest gateway executes.
    cluster.authenticate(gateway, 5, alice);
    cluster.clientSends(gateway, { type: 'command', ...honest }, 5);
    cluster.runFor(1_000_000);
    expect(cluster.thinReplies.filter((r) => r.conn === 5).map((r) => r.msg.type)).toEqual(['commandOrdered', 'commandExecuted']);
  });

  it('with an allow-list, an unlisted key is refused on connecting and at phase 1, and a listed one is served', () => {
    const cluster = started({ clientKeys: [alice.publicKey] });
    for (let r = 0; r < cluster.n; r++) {
      const out = cluster.authenticate(r, MALLORY_CONN, mallory);
      expect(out.toClients).toMatchObject([{ conn: MALLORY_CONN, msg: { type: 'error', code: ErrorCode.NotAllowed } }]);
    }
    const hers = encodeBatch(
      { mode: BatchMode.Direct, collectorKey: mallory.publicKey, nonce: 1, expiresAtUs: cluster.nowUs + LIFETIME_US, commands: [{ seq: 1, payload: get('k') }] },
      batchSigner(cluster.keys.config.clusterId, testCrypto, mallory),
    );
    // Not registered, so not hers to send either way; a listed client's batch executes.
    for (let r = 0; r < cluster.n; r++) expect(refusalOf(ask(cluster, r, MALLORY_CONN, { type: 'submit', batch: hers }))).toBe('badSignature');
    const digest = cluster.submit(kvBatch([[1, put('a', '1')]], cluster.nowUs + LIFETIME_US));
    expect(cluster.runUntilExecuted(digest).kind).toBe('executed');
  });
});

describe('Executed notices reach their collector only (issue 11, findings 4 and 6)', () => {
  it('finding 4: another connection gets none of a collector’s notices', () => {
    const cluster = started();
    for (let r = 0; r < cluster.n; r++) cluster.authenticate(r, MALLORY_CONN, mallory);
    const digest = cluster.submit(kvBatch([[1, put('v', '1')]], cluster.nowUs + LIFETIME_US));
    cluster.runUntilExecuted(digest);
    expect(cluster.thinReplies.filter((r) => r.conn === MALLORY_CONN && r.msg.type === 'executed')).toEqual([]);
  });

  it('finding 4: one key’s registrations are bounded, the newest connections served', () => {
    const cluster = started();
    const conns = Array.from({ length: MAX_CONNECTIONS_PER_CLIENT_KEY + 3 }, (_, i) => 100 + i);
    for (const conn of conns) cluster.authenticate(0, conn, alice);
    const digest = cluster.submit(kvBatch([[1, put('w', '1')]], cluster.nowUs + LIFETIME_US));
    cluster.runUntilExecuted(digest);
    const notified = new Set(cluster.thinReplies.filter((r) => r.replica === 0 && r.msg.type === 'executed').map((r) => r.conn));
    expect([...notified].sort((a, b) => a - b)).toEqual(conns.slice(-MAX_CONNECTIONS_PER_CLIENT_KEY));
  });

  it('finding 6: a repeated Sequence gets the kept notice only with a valid OC, and only on the collector’s connection', () => {
    const cluster = started();
    cluster.authenticate(2, MALLORY_CONN, mallory);
    const digest = cluster.submit(kvBatch([[1, put('a', '1')]], cluster.nowUs + LIFETIME_US));
    const done = cluster.runUntilExecuted(digest);
    const oc: OrderingCert = cluster.executedRecord(2, digest)!.oc;
    const forged: OrderingCert = { digest, stamps: oc.stamps.map((s) => ({ ...s, sig: new Uint8Array(64) })) };
    expect(ask(cluster, 2, CLIENT_CONN, { type: 'sequence', oc: forged, batch: null })).toMatchObject([{ type: 'refused', reason: 'badCert' }]);
    expect(ask(cluster, 2, MALLORY_CONN, { type: 'sequence', oc, batch: null }).map((m) => m.type)).not.toContain('executed');
    // The collector itself, with the OC its batch executed under, gets it again.
    const again = ask(cluster, 2, CLIENT_CONN, { type: 'sequence', oc, batch: null });
    expect(again).toMatchObject([{ type: 'executed', replica: 2, position: done.kind === 'executed' ? done.position : -1 }]);
    expect(toHex((again[0] as { digest: Uint8Array }).digest)).toBe(toHex(digest));
  });
});
