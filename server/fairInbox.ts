/**
 * Fair service between clients when a replica is saturated (issue 12). Phase-1 work is what clients
 * make a replica do — a hash, a signature check, a signature and a write per batch, a signature
 * check per thin command — and it is paid in CPU, so a client that sends faster than the replica
 * can serve must get its share of that CPU, not all of it.
 *
 * Client inputs are stepped at once while client work in this event-loop turn stays under
 * CLIENT_SLICE_MS; beyond that they wait here, per connection, and are served after the turn by
 * deficit round robin over source addresses (then round robin over an address's connections),
 * charging each step the CPU time it took. Peer messages never wait here (consensus first). So a
 * flooding address gets one address's share of client CPU however many connections or keys it
 * opens, and honest clients from other addresses keep theirs. A connection, an address, or all
 * clients together that queue more than their mark have their next inputs refused at once: dropped,
 * counted, and answered with an OVERLOADED error notice (rate limited), on which collectors back
 * off (their re-send timers double).
 *
 * Fairness is per source address: clients behind one proxy or NAT share one share.
 */
import type { ReplicaInput } from '../ordering/types.js';

/** Client work stepped in one event-loop turn before further client input waits: short enough that
 *  peer messages and timers are not held up behind a client burst (a view is ~5–25 ms here). */
export const CLIENT_SLICE_MS = 5;
/** CPU time an address earns per round of the round robin: about a batch of 1000 commands' work. */
export const QUANTUM_MS = 0.5;
/** Bytes waiting for one connection, one address and all clients before more are refused: a few
 *  batches per connection, a few connections' worth per address, and a bound on the memory clients
 *  can make a replica hold here. */
export const MAX_QUEUED_BYTES_PER_CONNECTION = 8 * 1024 * 1024;
export const MAX_QUEUED_BYTES_PER_ADDRESS = 32 * 1024 * 1024;
export const MAX_QUEUED_CLIENT_BYTES = 128 * 1024 * 1024;
/** OVERLOADED notices sent to one connection per second; further refusals are only counted. */
export const OVERLOAD_NOTICES_PER_SECOND = 10;

export interface FairInboxDeps {
  /** Steps one client input (ReplicaCore.step through the driver). */
  step(input: ReplicaInput): void;
  /** Tells a connection its input was refused (an OVERLOADED error notice). */
  refused(conn: number): void;
  /** Runs `fn` after the current event-loop turn's I/O (setImmediate). */
  defer(fn: () => void): void;
  /** Monotonic milliseconds (performance.now). */
  nowMs(): number;
}

interface QueuedInput {
  readonly input: ReplicaInput;
  readonly bytes: number;
}

class ConnQueue {
  /** Waiting inputs from `head` on; served slots are cleared at once, so a served batch's bytes
   *  are not held by the queue until it compacts (they were: up to ~1,000 batches per connection). */
  readonly items: (QueuedInput | undefined)[] = [];
  head = 0;
  bytes = 0;
  noticeWindowMs = 0;
  noticesInWindow = 0;
  constructor(
    readonly conn: number,
    readonly address: AddressQueue,
  ) {}
  get size(): number {
    return this.items.length - this.head;
  }
  shift(): QueuedInput {
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    this.bytes -= item.bytes;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }
}

class AddressQueue {
  /** Its connections with input waiting, served round robin. */
  readonly backlogged: ConnQueue[] = [];
  next = 0;
  bytes = 0;
  deficitMs = 0;
  active = false;
  /** Connections open from this address (the queue is dropped with the last). */
  conns = 0;
  constructor(readonly address: string) {}
}

export interface FairInboxStats {
  /** Client inputs that waited for a later turn, and those refused at a full mark. */
  queued: number;
  refused: number;
  /** Bytes waiting now. */
  queuedBytes: number;
}

export class FairInbox {
  private readonly conns = new Map<number, ConnQueue>();
  private readonly addresses = new Map<string, AddressQueue>();
  /** Addresses with input waiting, in round-robin order. */
  private readonly active: AddressQueue[] = [];
  private activeNext = 0;
  private totalBytes = 0;
  private waiting = 0;
  /** Client work done in the current turn (ms), and whether its end is scheduled. */
  private turnWorkMs = 0;
  private turnEnding = false;
  private closed = false;
  readonly stats: FairInboxStats = { queued: 0, refused: 0, queuedBytes: 0 };

  constructor(private readonly deps: FairInboxDeps) {}

  /** A client connection from `address` authenticated: its input may come from now on. */
  open(conn: number, address: string): void {
    if (this.conns.has(conn)) return;
    let a = this.addresses.get(address);
    if (a === undefined) this.addresses.set(address, (a = new AddressQueue(address)));
    a.conns++;
    this.conns.set(conn, new ConnQueue(conn, a));
  }

  /** One input of an open connection (its authentication first): stepped now, queued, or refused. */
  push(conn: number, input: ReplicaInput, bytes: number): void {
    if (this.closed) return;
    const c = this.conns.get(conn);
    if (c === undefined) return;
    if (this.waiting === 0 && this.turnWorkMs < CLIENT_SLICE_MS) {
      this.run(input);
      return;
    }
    const a = c.address;
    if (
      input.kind === 'client' &&
      (c.bytes + bytes > MAX_QUEUED_BYTES_PER_CONNECTION || a.bytes + bytes > MAX_QUEUED_BYTES_PER_ADDRESS || this.totalBytes + bytes > MAX_QUEUED_CLIENT_BYTES)
    ) {
      this.refuse(c);
      return;
    }
    if (c.size === 0) a.backlogged.push(c);
    if (!a.active) {
      a.active = true;
      this.active.push(a);
    }
    c.items.push({ input, bytes });
    c.bytes += bytes;
    a.bytes += bytes;
    this.totalBytes += bytes;
    this.waiting++;
    this.stats.queued++;
    this.stats.queuedBytes = this.totalBytes;
    this.endTurnLater();
  }

  /** The connection closed: what it had waiting is dropped. */
  close(conn: number): void {
    const c = this.conns.get(conn);
    if (c === undefined) return;
    this.conns.delete(conn);
    const a = c.address;
    while (c.size > 0) {
      const item = c.shift();
      a.bytes -= item.bytes;
      this.totalBytes -= item.bytes;
      this.waiting--;
    }
    const at = a.backlogged.indexOf(c);
    if (at >= 0) a.backlogged.splice(at, 1);
    if (--a.conns === 0 && a.backlogged.length === 0) this.addresses.delete(a.address);
    this.stats.queuedBytes = this.totalBytes;
  }

  /** Stops serving (the driver is closing): what waits is dropped. */
  stop(): void {
    this.closed = true;
  }

  get queuedInputs(): number {
    return this.waiting;
  }

  private run(input: ReplicaInput): void {
    const started = this.deps.nowMs();
    this.deps.step(input);
    this.turnWorkMs += this.deps.nowMs() - started;
    this.endTurnLater();
  }

  private endTurnLater(): void {
    if (this.turnEnding) return;
    this.turnEnding = true;
    this.deps.defer(() => this.endTurn());
  }

  /** A new turn: serve what waits, fairly, for up to a slice of client work. */
  private endTurn(): void {
    this.turnEnding = false;
    this.turnWorkMs = 0;
    if (this.closed) return;
    while (this.waiting > 0 && this.turnWorkMs < CLIENT_SLICE_MS) {
      if (this.activeNext >= this.active.length) this.activeNext = 0;
      const a = this.active[this.activeNext]!;
      a.deficitMs = Math.min(a.deficitMs + QUANTUM_MS, CLIENT_SLICE_MS);
      while (a.deficitMs > 0 && a.backlogged.length > 0 && this.turnWorkMs < CLIENT_SLICE_MS) {
        if (a.next >= a.backlogged.length) a.next = 0;
        const c = a.backlogged[a.next]!;
        const item = c.shift();
        a.bytes -= item.bytes;
        this.totalBytes -= item.bytes;
        this.waiting--;
        if (c.size === 0) a.backlogged.splice(a.next, 1);
        else a.next++;
        const started = this.deps.nowMs();
        this.deps.step(item.input);
        const cost = this.deps.nowMs() - started;
        this.turnWorkMs += cost;
        a.deficitMs -= cost;
      }
      if (a.backlogged.length === 0) {
        a.active = false;
        a.deficitMs = 0;
        this.active.splice(this.activeNext, 1);
        if (a.conns === 0) this.addresses.delete(a.address);
      } else {
        this.activeNext++;
      }
    }
    this.stats.queuedBytes = this.totalBytes;
    if (this.waiting > 0) this.endTurnLater();
  }

  private refuse(c: ConnQueue): void {
    this.stats.refused++;
    const now = this.deps.nowMs();
    if (now - c.noticeWindowMs >= 1000) {
      c.noticeWindowMs = now;
      c.noticesInWindow = 0;
    }
    if (++c.noticesInWindow <= OVERLOAD_NOTICES_PER_SECOND) this.deps.refused(c.conn);
  }
}
