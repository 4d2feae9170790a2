import { Writable } from 'node:stream';
import { Packr } from 'msgpackr';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageTag } from '../../common/codec.js';
import { ErrorCode } from '../../common/errors.js';
import { replicaId } from '../../common/ids.js';
import { MAX_FRAME_BYTES } from '../../common/limits.js';
import type { CommandMsg } from '../../common/messages.js';
import { ERROR_REPLIES_PER_SECOND, SERVER_MAX_PAYLOAD_BYTES } from './limits.js';
import { RawClient, commandMsg, helloFor, startTestCluster, waitUntil, type TestCluster } from './testing.js';

let cluster: TestCluster | null = null;
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await cluster?.close();
  cluster = null;
});

const pack = (value: unknown[]): Uint8Array => new Packr({ useRecords: false }).pack(value);

/** Each bad frame and the error code it must be answered with. */
const badFrames: { what: string; data: Uint8Array | string; binary?: boolean; code: ErrorCode }[] = [
  { what: 'a text frame', data: 'hello?', binary: false, code: ErrorCode.MalformedFrame },
  { what: 'a reserved msgpack byte', data: new Uint8Array([0xc1]), code: ErrorCode.MalformedFrame },
  { what: 'a truncated frame', data: pack([MessageTag.command, 1, 2, new Uint8Array(10)]).subarray(0, 8), code: ErrorCode.MalformedFrame },
  { what: 'an unknown tag', data: pack([99, 1]), code: ErrorCode.UnknownMessage },
  { what: 'a negative integer', data: pack([MessageTag.command, new Uint8Array(32), -1, 2, new Uint8Array(1), new Uint8Array(64)]), code: ErrorCode.InvalidField },
  { what: 'a frame just over MAX_FRAME_BYTES', data: new Uint8Array(MAX_FRAME_BYTES + 1), code: ErrorCode.FrameTooLarge },
];

/** An authenticated raw link to replica 0's peer port, as replica `as`. */
async function rawPeer(c: TestCluster, as: number): Promise<RawClient> {
  const r = await RawClient.connect(c.cluster.config.replicas[0]!.peerPort, c.cluster.config.n);
  raws.push(r);
  const [challenge] = await r.waitForMessage('helloChallenge');
  r.send(helloFor(challenge!, c.cluster.config, as, c.cluster.keyPairs[as]!.secretKey));
  return r;
}

/** An authenticated raw link to replica 0's client port. */
async function rawClient(c: TestCluster): Promise<RawClient> {
  const r = await RawClient.connect(c.cluster.config.replicas[0]!.clientPort, c.cluster.config.n);
  raws.push(r);
  await r.authenticate(c.cluster.config);
  return r;
}

/** Replica 1 streams `count` commands of 1 KB to replica 0 over the real transport, a slice per tick. */
async function honestStream(c: TestCluster, count: number): Promise<void> {
  const t1 = c.transports[1]!;
  for (let s = 0; s < count; s++) {
    t1.sendToPeer(replicaId(0), commandMsg(s, 1024));
    if (s % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('bad input', () => {
  it('malformed, oversized and text frames on peer and client links get typed errors and counters while an honest stream is delivered in full', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0, 1] }));
    await waitUntil(() => c.transports[1]!.peersUp().includes(replicaId(0)), 'link 1 → 0');
    const peer = await rawPeer(c, 2);
    const client = await rawClient(c);
    const streamed = honestStream(c, 3000);
    for (const bad of badFrames) {
      peer.sendRaw(bad.data, bad.binary ?? true);
      client.sendRaw(bad.data, bad.binary ?? true);
    }
    await streamed;
    const peerErrors = await peer.waitForMessage('error', badFrames.length);
    const clientErrors = await client.waitForMessage('error', badFrames.length);
    expect(peerErrors.map((e) => e.code)).toEqual(badFrames.map((b) => b.code));
    expect(clientErrors.map((e) => e.code)).toEqual(badFrames.map((b) => b.code));
    expect(peerErrors[0]!.message).toMatch(/text frame/);
    // Links that sent bad frames stay usable: the peer link still delivers, as replica 2.
    peer.send(commandMsg(424242));
    await waitUntil(() => c.inboxes[0]!.fromPeer(2).length === 1, 'delivery after bad frames');
    await waitUntil(() => c.inboxes[0]!.fromPeer(1).length === 3000, 'the honest stream');
    expect(c.inboxes[0]!.fromPeer(1).map((m) => (m as CommandMsg).seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(c.inboxes[0]!.client).toHaveLength(0);
    const rejected = c.transports[0]!.stats().rejectedFrames;
    const expected: Record<string, number> = {};
    for (const b of badFrames) expected[b.code] = (expected[b.code] ?? 0) + 2;
    expect(rejected).toEqual(expected);
  });

  it('a frame beyond the library limit cuts that connection (counted) and nothing else', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0, 1] }));
    await waitUntil(() => c.transports[1]!.peersUp().includes(replicaId(0)), 'link 1 → 0');
    const client = await rawClient(c);
    const streamed = honestStream(c, 1000);
    client.sendRaw(new Uint8Array(SERVER_MAX_PAYLOAD_BYTES + 1));
    await client.waitClosed();
    await streamed;
    await waitUntil(() => c.inboxes[0]!.fromPeer(1).length === 1000, 'the honest stream');
    // The client may see its close before the replica's close handler has counted the cut (ws).
    await waitUntil(() => c.transports[0]!.stats().rejectedFrames[ErrorCode.FrameTooLarge] !== undefined, 'the cut counted');
    expect(c.transports[0]!.stats().rejectedFrames).toEqual({ [ErrorCode.FrameTooLarge]: 1 });
    expect(c.transports[1]!.peersUp()).toContain(0);
  });

  it('a flood of bad frames is answered at a bounded rate, counted in full, logged at a bounded rate, and does not stall honest traffic', async () => {
    const lines: { msg: string; replica?: number; suppressed?: number }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().trim().split('\n')) lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    });
    const logger = pino({ level: 'warn' }, sink);
    const c = (cluster = await startTestCluster({ n: 4, start: [0, 1], logger }));
    await waitUntil(() => c.transports[1]!.peersUp().includes(replicaId(0)), 'link 1 → 0');
    const flooder = await rawPeer(c, 3);
    const floodCount = 3 * ERROR_REPLIES_PER_SECOND;
    const streamed = honestStream(c, 2000);
    for (let i = 0; i < floodCount; i++) flooder.sendRaw(new Uint8Array([0xc1]));
    await streamed;
    await waitUntil(() => c.inboxes[0]!.fromPeer(1).length === 2000, 'the honest stream');
    await waitUntil(() => (c.transports[0]!.stats().rejectedFrames[ErrorCode.MalformedFrame] ?? 0) === floodCount, 'every bad frame counted');
    const s = c.transports[0]!.stats();
    expect(s.errorRepliesSuppressed).toBeGreaterThan(0);
    await flooder.waitForMessage('error', floodCount - s.errorRepliesSuppressed);
    expect(flooder.errors().length).toBeLessThan(floodCount);
    // One line for the flooding connection (the next one, due in 10 s, would carry the suppressed count).
    expect(lines.filter((l) => l.msg === 'refused a frame' && l.replica === 0)).toHaveLength(1);
  });

  it('error notices received are counted, not delivered and not answered', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const peer = await rawPeer(c, 2);
    const client = await rawClient(c);
    peer.send({ type: 'error', code: 'SOMETHING', message: 'from a peer' });
    client.send({ type: 'error', code: 'SOMETHING', message: 'from a client' });
    await waitUntil(() => c.transports[0]!.stats().errorNoticesReceived === 2, 'error notices counted');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(c.inboxes[0]!.peer).toHaveLength(0);
    expect(c.inboxes[0]!.client).toHaveLength(0);
    expect(peer.errors()).toHaveLength(0);
    expect(client.errors()).toHaveLength(0);
  });
});
