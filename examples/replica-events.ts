/**
 * Reacting to what an embedded replica does, without polling: its typed events (server/events.ts).
 * Four replicas run in this process with the default key-value store; the application listens on
 * replica 0 to commits, executed batches (position, and each command's client, sequence number
 * and result), view changes, peers coming and going, and peer faults, while a client submits
 * puts and one replica is stopped.
 *
 *   npm run build && node dist/examples/replica-events.js
 */
import { PompeClient } from '../client/client.js';
import { encodeKvCommand, KvOp, KvStore } from '../ordering/kvStore.js';
import type { ReplicaEventMap } from '../server/events.js';
import { startLocalCluster } from './localCluster.js';
import { isEntryPoint } from '../client/entryPoint.js';

/** How long the example waits to see replica 3 leave. */
const PEER_DOWN_WAIT_MS = 30_000;

export interface EventLog {
  readonly committed: ReplicaEventMap['committed'][];
  readonly executed: ReplicaEventMap['executed'][];
  readonly viewChanges: ReplicaEventMap['viewChange'][];
  readonly peers: ReplicaEventMap['peer'][];
  readonly faults: ReplicaEventMap['fault'][];
}

/** Runs the story; `print` gets one line per event worth telling. */
export async function runEventsExample(puts: number, print: (line: string) => void = () => {}): Promise<EventLog> {
  const cluster = await startLocalCluster(4, () => new KvStore());
  const log: EventLog = { committed: [], executed: [], viewChanges: [], peers: [], faults: [] };
  const events = cluster.replicas[0]!.events;
  events.on('committed', (e) => log.committed.push(e));
  events.on('executed', (e) => {
    log.executed.push(e);
    for (const c of e.commands) print(`executed at position ${e.position}: client ${c.clientKey.slice(0, 8)} seq ${c.seq} → ${c.status}`);
  });
  events.on('viewChange', (e) => log.viewChanges.push(e));
  events.on('peer', (e) => {
    log.peers.push(e);
    print(`peer ${e.peer} ${e.up ? 'up' : 'down'}`);
  });
  events.on('fault', (e) => {
    log.faults.push(e);
    print(`fault by replica ${e.peer}: ${e.kind} (${e.detail})`);
  });
  const client = await PompeClient.connect({ confDir: cluster.dir });
  try {
    const text = new TextEncoder();
    await Promise.all(Array.from({ length: puts }, (_, i) => client.submit(encodeKvCommand(KvOp.Put, text.encode(`key${i}`), text.encode(`value${i}`)))));
    // Replica 3 goes away: replica 0 sees its peer go down, and the cluster carries on.
    await cluster.replicas[3]!.close();
    // A closed peer is noticed when its connection closes: at once, or after a ping interval
    // (10 s) on a machine too busy to see the close.
    const deadline = Date.now() + PEER_DOWN_WAIT_MS;
    while (!log.peers.some((p) => p.peer === 3 && !p.up) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const after = await client.submit(text.encode('after replica 3 left'));
    print(`a command after replica 3 stopped executed at position ${after.position}`);
    print(`${log.committed.length} blocks committed, ${log.viewChanges.length} view changes seen at replica 0`);
    return log;
  } finally {
    await client.close();
    await cluster.close();
  }
}

if (isEntryPoint(import.meta.url)) await runEventsExample(5, (line) => console.log(line));
