import { afterEach, describe, expect, it } from 'vitest';
import { replicaId } from '../../common/ids.js';
import type { CommandMsg, Message } from '../../common/messages.js';
import { Inbox, commandMsg, startTestCluster, waitUntil, type TestCluster } from './testing.js';
import { Transport } from './transport.js';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const seqs = (msgs: Message[]): number[] => msgs.map((m) => (m as CommandMsg).seq);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('Transport mesh', () => {
  it('4 replicas form a full mesh and exchange messages both ways, in order, with authenticated senders', async () => {
    const c = (cluster = await startTestCluster({ n: 4 }));
    const ts = c.transports.map((t) => t!);
    await waitUntil(() => ts.every((t, i) => t.peersUp().length === 3 && !t.peersUp().includes(replicaId(i))), 'full mesh');
    const perPair = 200;
    for (let from = 0; from < 4; from++) {
      for (let to = 0; to < 4; to++) {
        if (from === to) continue;
        for (let s = 0; s < perPair; s++) ts[from]!.sendToPeer(replicaId(to), commandMsg(from * 1_000_000 + to * 1_000 + s));
      }
    }
    await waitUntil(() => c.inboxes.every((inbox) => inbox.peer.length === 3 * perPair), 'all messages delivered');
    for (let to = 0; to < 4; to++) {
      for (let from = 0; from < 4; from++) {
        if (from === to) continue;
        expect(seqs(c.inboxes[to]!.fromPeer(from))).toEqual(range(0, perPair).map((s) => from * 1_000_000 + to * 1_000 + s));
      }
    }
    for (const t of ts) {
      const s = t.stats();
      expect(s.inboundPeers).toHaveLength(3);
      expect(s.rejectedFrames).toEqual({});
      expect(s.droppedFrames).toBe(0);
      expect(s.peers.every((p) => p.state === 'up' && p.queuedFrames === 0)).toBe(true);
    }
    // Every up-transition was reported once per peer.
    for (const inbox of c.inboxes) expect(inbox.status.filter((e) => e.up)).toHaveLength(3);
  });

  it('broadcast encodes once and reaches every other replica, not the sender', async () => {
    const c = (cluster = await startTestCluster({ n: 4 }));
    const ts = c.transports.map((t) => t!);
    await waitUntil(() => ts.every((t) => t.peersUp().length === 3), 'full mesh');
    for (let s = 0; s < 50; s++) ts[2]!.broadcastToPeers(commandMsg(s, 1000));
    await waitUntil(() => [0, 1, 3].every((i) => c.inboxes[i]!.peer.length === 50), 'broadcast delivered');
    for (const i of [0, 1, 3]) expect(seqs(c.inboxes[i]!.fromPeer(2))).toEqual(range(0, 50));
    expect(c.inboxes[2]!.peer).toHaveLength(0);
    const sent = ts[2]!.stats().peer;
    expect(sent.framesOut).toBeGreaterThanOrEqual(150);
  });

  it('queues messages for a peer that is not up yet, and flushes them when it comes up', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const t0 = c.transports[0]!;
    for (let s = 0; s < 100; s++) t0.sendToPeer(replicaId(1), commandMsg(s));
    await new Promise((r) => setTimeout(r, 100));
    expect(t0.stats().peers.find((p) => p.peer === 1)!.queuedFrames).toBe(100);
    const t1 = new Transport(c.options(1), c.inboxes[1]!);
    c.transports[1] = t1;
    await t1.start();
    await waitUntil(() => c.inboxes[1]!.peer.length === 100, 'queued messages delivered');
    expect(seqs(c.inboxes[1]!.fromPeer(0))).toEqual(range(0, 100));
  });

  it('reconnects to a peer that restarts on the same ports, and messages flow again both ways', async () => {
    const c = (cluster = await startTestCluster({ n: 4 }));
    const ts = c.transports;
    await waitUntil(() => ts.every((t) => t!.peersUp().length === 3), 'full mesh');
    ts[0]!.sendToPeer(replicaId(3), commandMsg(1));
    await waitUntil(() => c.inboxes[3]!.peer.length === 1, 'first message');

    await ts[3]!.close();
    await waitUntil(() => !ts[0]!.peersUp().includes(replicaId(3)), 'replica 0 sees replica 3 down');
    // Sent while 3 is down: queued, delivered to the new incarnation.
    for (let s = 2; s < 52; s++) ts[0]!.sendToPeer(replicaId(3), commandMsg(s));

    const inbox = new Inbox();
    const t3 = new Transport(c.options(3), inbox);
    ts[3] = t3;
    await t3.start();
    await waitUntil(() => inbox.fromPeer(0).length === 50, 'queued messages reach the restarted replica');
    expect(seqs(inbox.fromPeer(0))).toEqual(range(2, 52));
    await waitUntil(() => t3.peersUp().length === 3 && ts.every((t) => t!.peersUp().includes(replicaId(3)) || t === t3), 'mesh re-formed');
    t3.sendToPeer(replicaId(1), commandMsg(99));
    await waitUntil(() => c.inboxes[1]!.fromPeer(3).some((m) => (m as CommandMsg).seq === 99), 'restarted replica can send');
    expect(ts[0]!.stats().reconnects).toBeGreaterThanOrEqual(1);
    expect(c.inboxes[0]!.status).toContainEqual({ peer: 3, up: false });
  });

  it('dials a restarted peer as soon as it dials us, not when the reconnect backoff ends', async () => {
    // A backoff far longer than the test: only the peer's own link can bring ours up in time.
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { reconnectBaseMs: 120_000, reconnectMaxMs: 120_000 } }));
    const t0 = c.transports[0]!;
    const linkTo1 = () => t0.stats().peers.find((p) => p.peer === 1)!;
    await waitUntil(() => linkTo1().connectAttempts >= 1 && linkTo1().state === 'idle', 'first dial of the absent peer failed');
    const t1 = new Transport(c.options(1), c.inboxes[1]!);
    c.transports[1] = t1;
    await t1.start();
    await waitUntil(() => t0.peersUp().includes(replicaId(1)) && t1.peersUp().includes(replicaId(0)), 'both links up');
    t0.sendToPeer(replicaId(1), commandMsg(7));
    await waitUntil(() => c.inboxes[1]!.fromPeer(0).length === 1, 'message over the redialled link');
  });

  it('close() is idempotent, stops delivery and leaves nothing running', async () => {
    const c = (cluster = await startTestCluster({ n: 4 }));
    await waitUntil(() => c.transports.every((t) => t!.peersUp().length === 3), 'full mesh');
    await Promise.all(c.transports.map((t) => t!.close()));
    await Promise.all(c.transports.map((t) => t!.close()));
    for (const t of c.transports) expect(t!.peersUp()).toEqual([]);
  });

  it('refuses a signer that does not match the configured key of its replica id', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [] }));
    const wrong = { ...c.options(0), signer: c.options(1).signer };
    expect(() => new Transport(wrong, new Inbox())).toThrow(/does not match replica 0/);
  });
});
