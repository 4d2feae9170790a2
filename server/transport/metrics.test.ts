import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../common/errors.js';
import { replicaId } from '../../common/ids.js';
import { PromTransportMetrics } from './metrics.js';
import { RawClient, commandMsg, startTestCluster, waitUntil, type TestCluster } from './testing.js';
import { Transport } from './transport.js';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  const data = await metric.get();
  return data.values.find((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l))?.value;
}

describe('PromTransportMetrics', () => {
  it('agrees with stats(): traffic, rejections, peer status and queue bytes', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [1] }));
    const registry = new Registry();
    const t0 = new Transport({ ...c.options(0), metrics: new PromTransportMetrics(registry) }, c.inboxes[0]!);
    c.transports[0] = t0;
    t0.sendToPeer(replicaId(2), commandMsg(1, 100)); // replica 2 is down: stays queued
    await t0.start();
    await waitUntil(() => t0.peersUp().includes(replicaId(1)) && c.transports[1]!.peersUp().includes(replicaId(0)), 'link 0 ⇄ 1');
    for (let s = 0; s < 10; s++) t0.sendToPeer(replicaId(1), commandMsg(s, 1000));
    for (let s = 0; s < 5; s++) c.transports[1]!.sendToPeer(replicaId(0), commandMsg(s, 1000));
    const client = await RawClient.connect(c.cluster.config.replicas[0]!.clientPort, 4);
    client.sendRaw('text');
    await client.waitForMessage('error');
    client.close();
    await waitUntil(() => c.inboxes[0]!.peer.length === 5 && c.inboxes[1]!.peer.length === 10, 'delivery');
    await waitUntil(() => t0.stats().peers.find((p) => p.peer === 1)!.inflightBytes === 0, 'writes done');

    const s = t0.stats();
    expect(await value(registry, 'pompe_transport_frames_sent_total', { link: 'peer' })).toBe(s.peer.framesOut);
    expect(await value(registry, 'pompe_transport_bytes_sent_total', { link: 'peer' })).toBe(s.peer.bytesOut);
    expect(await value(registry, 'pompe_transport_frames_received_total', { link: 'peer' })).toBe(s.peer.framesIn);
    expect(await value(registry, 'pompe_transport_bytes_received_total', { link: 'client' })).toBe(s.client.bytesIn);
    expect(await value(registry, 'pompe_transport_frames_sent_total', { link: 'client' })).toBe(2); // the challenge and the error reply
    expect(await value(registry, 'pompe_transport_frames_rejected_total', { link: 'client', code: ErrorCode.MalformedFrame })).toBe(1);
    expect(await value(registry, 'pompe_transport_peer_up', { peer: '1' })).toBe(1);
    expect(await value(registry, 'pompe_transport_peer_queue_bytes', { peer: '2' })).toBe(s.peers.find((p) => p.peer === 2)!.queuedBytes);
    expect(s.peer.framesOut).toBeGreaterThanOrEqual(11); // hello + 10
    const text = await registry.metrics();
    expect(text).toMatch(/^pompe_transport_bytes_sent_total\{link="peer"\} \d+$/m);
  });
});
