/**
 * Watches every step of the replica core from outside (input, output, the core's view after it)
 * and turns it into what operators and embedding applications see: the phase latencies
 * (phaseLatency.ts), the events (events.ts), the leader as this replica knows it, and when the
 * committed height last moved (for /ready). Read-only: it never changes an output.
 */
import { toHex } from '../common/bytes.js';
import { decodeBatchCommands } from '../common/batch.js';
import type { Message } from '../common/messages.js';
import type { ExecutionRecord, ReplicaInput, ReplicaOutput } from '../ordering/types.js';
import { batchResults } from '../client/results.js';
import type { ExecutedCommand, ReplicaEvents } from './events.js';
import type { PhaseLatency } from './phaseLatency.js';

/** The core's state after a step, as far as the observer needs it. */
export interface CoreView {
  readonly view: number;
  readonly leading: boolean;
}

export class StepObserver {
  private view: number;
  /** The replica that leads the current view as far as this replica knows (null: not yet). */
  private leaderId: number | null = null;
  private committedAtUs: number;

  constructor(
    private readonly self: number,
    private readonly latency: PhaseLatency,
    private readonly events: ReplicaEvents,
    initial: CoreView,
    startUs: number,
  ) {
    this.view = initial.view;
    // Height "last moved" at start: readiness gives a fresh process the same grace as a stall.
    this.committedAtUs = startUs;
  }

  get leader(): number | null {
    return this.leaderId;
  }

  /** When the committed height last advanced (this process's clock, µs). */
  get lastCommitUs(): number {
    return this.committedAtUs;
  }

  observe(input: ReplicaInput, out: ReplicaOutput, after: CoreView, nowUs: number): void {
    for (const { msg } of out.toClients) this.outgoing(msg, nowUs);
    for (const { msg } of out.toPeers) this.outgoing(msg, nowUs);
    for (const c of out.commits) {
      this.committedAtUs = nowUs;
      this.latency.commit(c.height, nowUs);
      this.events.emit('committed', { height: c.height, digest: toHex(c.digest), toSlot: c.toSlot, atUs: nowUs });
    }
    for (const e of out.executed) {
      const digest = toHex(e.digest);
      this.latency.execute(digest, e.blockHeight, nowUs);
      if (this.events.wanted('executed')) this.events.emit('executed', executedEvent(e, digest, nowUs));
    }
    let wrongLeader = false;
    for (const f of out.faults) {
      if (f.kind === 'wrongLeader') wrongLeader = true;
      this.events.emit('fault', { peer: f.peer, kind: f.kind, detail: f.detail, atUs: nowUs });
    }
    // A proposal names its proposer; one this core refused as from the wrong leader does not count.
    if (input.kind === 'peer' && input.msg.type === 'proposal' && !wrongLeader && input.msg.block.view >= after.view - 1) {
      this.leaderId = input.msg.block.proposer;
    }
    if (after.leading) this.leaderId = this.self;
    if (after.view !== this.view) {
      this.events.emit('viewChange', { from: this.view, to: after.view, leading: after.leading, atUs: nowUs });
      this.view = after.view;
    }
  }

  private outgoing(msg: Message, nowUs: number): void {
    if (msg.type === 'tsReply') this.latency.stamp(toHex(msg.digest), nowUs);
    else if (msg.type === 'ack') this.latency.ack(toHex(msg.digest), nowUs);
  }
}

function executedEvent(e: ExecutionRecord, digest: string, atUs: number) {
  const decoded = decodeBatchCommands(e.batch);
  const commands: ExecutedCommand[] = [];
  if (decoded.ok) {
    const results = batchResults(e.results, decoded.value.length);
    decoded.value.forEach((c, i) => commands.push({ clientKey: toHex(c.clientKey), seq: c.seq, status: results[i]!.status, result: results[i]!.result }));
  }
  return { position: e.position, digest, ts: e.ts, blockHeight: e.blockHeight, collectorKey: e.collectorKey, commands, malformed: !decoded.ok, atUs };
}
