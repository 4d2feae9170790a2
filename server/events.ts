/**
 * Events of an embedded replica (`replica.events.on(name, listener)`), for applications that want
 * to react to commits, executions, view changes, peers and faults without polling /status.
 *
 * - Delivered after the step that caused them, once its messages have been handed to the network
 *   (a listener never delays a vote or an ack), in the order the replica saw them: a block's
 *   `committed` comes before the `executed` of its batches.
 * - A listener that throws is logged and the replica runs on; it cannot change the replica's
 *   state (every event is a fresh object; byte arrays are views the listener must not modify).
 * - Built only when someone listens: `executed` decodes each batch's commands and results, which
 *   costs nothing for a replica without listeners.
 * - Only this process's own work: batches re-executed while replaying the committed chain at start
 *   are not reported (their state is rebuilt, not new).
 */
import type { CommandStatus } from '../client/results.js';
import type { PeerFaultKind } from '../consensus/types.js';

export interface CommittedEvent {
  readonly height: number;
  /** The block's digest, hex. */
  readonly digest: string;
  /** The last slot the block covers. */
  readonly toSlot: number;
  /** Wall-clock µs at this replica. */
  readonly atUs: number;
}

export interface ExecutedCommand {
  /** The client's public key, hex: its identity. */
  readonly clientKey: string;
  readonly seq: number;
  /** executed, or duplicate (skipped: the same (clientKey, seq) executed before), … */
  readonly status: CommandStatus;
  /** What the state machine returned (empty unless status is 'executed'). */
  readonly result: Uint8Array;
}

export interface ExecutedEvent {
  /** The batch's place in the executed sequence (the same at every correct replica). */
  readonly position: number;
  /** The batch's digest, hex. */
  readonly digest: string;
  /** The batch's agreed timestamp, µs. */
  readonly ts: number;
  readonly blockHeight: number;
  /** The batch's collector key, hex: the client's (direct mode) or the gateway replica's. */
  readonly collectorKey: string;
  /** In batch order. Empty for a malformed batch (it executes as one refusal). */
  readonly commands: readonly ExecutedCommand[];
  readonly malformed: boolean;
  readonly atUs: number;
}

export interface ViewChangeEvent {
  readonly from: number;
  readonly to: number;
  /** True when this replica leads the new view. */
  readonly leading: boolean;
  readonly atUs: number;
}

export interface PeerEvent {
  readonly peer: number;
  /** True when the link came up, false when it went down. */
  readonly up: boolean;
  readonly atUs: number;
}

export interface FaultEvent {
  /** The replica that misbehaved (or sent something this replica could not accept). */
  readonly peer: number;
  readonly kind: PeerFaultKind;
  readonly detail: string;
  readonly atUs: number;
}

export interface ReplicaEventMap {
  committed: CommittedEvent;
  executed: ExecutedEvent;
  viewChange: ViewChangeEvent;
  peer: PeerEvent;
  fault: FaultEvent;
}

export type ReplicaEventName = keyof ReplicaEventMap;
export type ReplicaEventListener<K extends ReplicaEventName> = (event: ReplicaEventMap[K]) => void;

/** Listeners per event name: a leak (adding one per request, never removing it) shows up as an
 *  error, not as a replica that slows down for ever. */
export const MAX_LISTENERS_PER_EVENT = 64;

/** The subscription side, what an application sees. */
export interface ReplicaEventSource {
  /** Adds a listener; returns the function that removes it. */
  on<K extends ReplicaEventName>(name: K, listener: ReplicaEventListener<K>): () => void;
  off<K extends ReplicaEventName>(name: K, listener: ReplicaEventListener<K>): void;
}

export class ReplicaEvents implements ReplicaEventSource {
  private readonly listeners: { [K in ReplicaEventName]: ReplicaEventListener<K>[] } = {
    committed: [],
    executed: [],
    viewChange: [],
    peer: [],
    fault: [],
  };
  private queue: (() => void)[] = [];
  private flushQueued = false;

  constructor(private readonly onListenerError: (name: ReplicaEventName, error: unknown) => void) {}

  on<K extends ReplicaEventName>(name: K, listener: ReplicaEventListener<K>): () => void {
    const list = this.listeners[name];
    if (list.length >= MAX_LISTENERS_PER_EVENT) throw new RangeError(`more than ${MAX_LISTENERS_PER_EVENT} listeners for '${name}': remove the ones no longer needed`);
    list.push(listener);
    return () => this.off(name, listener);
  }

  off<K extends ReplicaEventName>(name: K, listener: ReplicaEventListener<K>): void {
    const list = this.listeners[name];
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  }

  /** Whether anyone listens (so the caller can skip building the event). */
  wanted(name: ReplicaEventName): boolean {
    return this.listeners[name].length > 0;
  }

  /** Queues an event for delivery after the current step (see the module comment). */
  emit<K extends ReplicaEventName>(name: K, event: ReplicaEventMap[K]): void {
    if (!this.wanted(name)) return;
    this.queue.push(() => this.deliver(name, event));
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    const queue = this.queue;
    this.queue = [];
    for (const deliver of queue) deliver();
  }

  private deliver<K extends ReplicaEventName>(name: K, event: ReplicaEventMap[K]): void {
    // A copy: a listener that removes itself must not make the next one be skipped.
    for (const listener of [...this.listeners[name]]) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(name, error);
      }
    }
  }
}
