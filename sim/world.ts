/**
 * The simulated world: one virtual clock, one event queue, one network, and the nodes on it.
 * Nodes are replicas (ids 0..n−1) and, for the ordering phase, clients (ids n and up). The world
 * only moves bytes and time; what a node does with them is the node's business.
 */
import { EventQueue } from './eventQueue.js';
import type { SimNetwork } from './network.js';

export interface SimNode {
  readonly id: number;
  /** A message arrived (bytes exactly as sent). Nodes that are down ignore it. */
  onDeliver(from: number, bytes: Uint8Array): void;
  /** The wake-up the node asked for is due. */
  onWake(): void;
}

type WorldEvent =
  | { readonly kind: 'deliver'; readonly to: number; readonly from: number; readonly bytes: Uint8Array }
  | { readonly kind: 'wake'; readonly node: number }
  | { readonly kind: 'action'; readonly run: () => void };

/** Far above what any instant of a run holds (a broadcast storm is thousands), far below forever. */
const MAX_EVENTS_PER_INSTANT = 1_000_000;
/** Events one world may process in all: the largest full-layer run of 240 sampled (n = 4 and 7,
 *  every rule, mode and fault kind) took ~300,000, a consensus-layer run ~16,000. Past this a run
 *  is a runaway (two impersonating replicas answering each other's forgeries for ever, seed 1662,
 *  reached 5.5 million events by 2.3 s of virtual time): it throws, failing the seed, where it
 *  used to hang the sweep. */
export const MAX_EVENTS_PER_RUN = 20_000_000;

export interface WorldStats {
  messagesSent: number;
  messagesDelivered: number;
  messagesDropped: number;
  bytesSent: number;
  /** Events processed so far (deliveries, wakes, actions, stale ones included). */
  events: number;
}

export class World {
  nowUs = 0;
  private readonly queue = new EventQueue<WorldEvent>();
  private readonly nodes = new Map<number, SimNode>();
  /** The wake time each node currently wants; queued wakes for other times are stale. */
  private readonly wakeAt = new Map<number, number>();
  readonly stats: WorldStats = { messagesSent: 0, messagesDelivered: 0, messagesDropped: 0, bytesSent: 0, events: 0 };

  constructor(
    readonly network: SimNetwork,
    private readonly maxEvents = MAX_EVENTS_PER_RUN,
  ) {}

  add(node: SimNode): void {
    this.nodes.set(node.id, node);
  }

  send(from: number, to: number, bytes: Uint8Array): void {
    this.stats.messagesSent++;
    this.stats.bytesSent += bytes.length;
    const delays = this.network.delays(from, to, this.nowUs);
    if (delays.length === 0) this.stats.messagesDropped++;
    for (const d of delays) this.queue.push(this.nowUs + d, { kind: 'deliver', to, from, bytes });
  }

  /** Asks for `onWake` at `atUs` (replacing any earlier request); null cancels. */
  setWake(node: number, atUs: number | null): void {
    if (atUs === null) {
      this.wakeAt.delete(node);
      return;
    }
    const at = Math.max(atUs, this.nowUs);
    if (this.wakeAt.get(node) === at) return;
    this.wakeAt.set(node, at);
    this.queue.push(at, { kind: 'wake', node });
  }

  at(atUs: number, run: () => void): void {
    this.queue.push(Math.max(atUs, this.nowUs), { kind: 'action', run });
  }

  /** Processes events up to `untilUs`; `afterEvent` runs after each (the checkers hook in here).
   *  A node that keeps asking to be woken at the same instant would spin forever without time
   *  moving, and a run past MAX_EVENTS_PER_RUN is a runaway: either throws (and so fails the seed)
   *  instead of hanging a sweep. */
  run(untilUs: number, afterEvent?: () => void): void {
    let sameInstant = 0;
    for (;;) {
      const next = this.queue.peekTime();
      if (next === null || next > untilUs) break;
      const { atUs, event } = this.queue.pop()!;
      sameInstant = atUs === this.nowUs ? sameInstant + 1 : 0;
      if (sameInstant > MAX_EVENTS_PER_INSTANT) throw new Error(`simulation stuck: over ${MAX_EVENTS_PER_INSTANT} events at ${atUs} µs`);
      if (++this.stats.events > this.maxEvents) throw new Error(`simulation runaway: over ${this.maxEvents} events by ${atUs} µs`);
      this.nowUs = atUs;
      switch (event.kind) {
        case 'deliver': {
          const node = this.nodes.get(event.to);
          if (node === undefined) break;
          this.stats.messagesDelivered++;
          node.onDeliver(event.from, event.bytes);
          break;
        }
        case 'wake':
          if (this.wakeAt.get(event.node) !== atUs) break;
          this.wakeAt.delete(event.node);
          this.nodes.get(event.node)?.onWake();
          break;
        case 'action':
          event.run();
          break;
      }
      afterEvent?.();
    }
    this.nowUs = Math.max(this.nowUs, untilUs);
  }
}
