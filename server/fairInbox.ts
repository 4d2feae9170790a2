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
 * The core triages each input first (ReplicaCore.triageClient, a query):
 *  - overBudget: a submission its key's admission budget (ordering/admission.ts) would refuse. It
 *    is refused here as at a full mark, before it waits or costs a step: a flood from one key is
 *    dropped at the price of its decode, and never fills the queues honest input waits behind.
 *  - urgent: the Sequence of a batch this replica stamped and holds. Phase 2 must reach the
 *    replicas within Δ of the stamp or the batch restarts `late`, so it may take the express lane.
 *    Only batches admitted in phase 1 qualify (a Sequence without one is normal input).
 *
 * The express lane: an urgent input, or any input of an address with nothing waiting (a sparse
 * source, as honest clients with a few batches in flight are, next to a flood that always has a
 * backlog), is stepped at once, ahead of waiting input, while its address has express credit
 * (EXPRESS_MS_PER_SECOND of CPU, charged with what each step took) and this turn's express work is
 * under EXPRESS_SLICE_MS, and nothing of its own connection waits (a connection's inputs are
 * stepped in order); otherwise it waits as normal input. Without it an honest client's
 * every message would wait for the end of a turn filled by the flood: a few ms per phase at each
 * replica, and Δ is 30 ms. The credit bounds what any one address takes through the lane.
 *
 * Fairness is per source address: clients behind one proxy or NAT share one share.
 */
import { TokenBucket } from '../common/tokenBucket.js';
import type { ClientTriage, QueuedSubmissions, ReplicaInput } from '../ordering/types.js';

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
/** Refusals of one connection within a second past which it is shed as faulty (deps.shed): a
 *  correct collector backs off at its first OVERLOADED and has at most its window of batches in
 *  flight (the benchmark's 4, an unbatched client's 64), so hundreds refused in a second means
 *  the notices are ignored, and every further frame would cost a decode and a triage. */
export const REFUSALS_PER_SECOND_BEFORE_SHED = 256;
/** Client work stepped in the express lane in one turn: with the normal slice, a turn holds at
 *  most ~10 ms of client work before peer messages and timers get their turn. */
export const EXPRESS_SLICE_MS = 5;
/** CPU per second one address may spend in the express lane (a bucket holding a second's worth):
 *  a batch of 100 costs a replica ~0.45 ms in phases 1 and 2 (signature checks of the batch and
 *  the OC, two signatures), so this covers ~220 batches a second — more than twice the benchmark's
 *  4 clients at 9,000 cmd/s in batches of 100. An address past it is served in its fair share. */
export const EXPRESS_MS_PER_SECOND = 100;

export interface FairInboxDeps {
  /** Steps one client input (ReplicaCore.step through the driver). */
  step(input: ReplicaInput): void;
  /** Tells a connection its input was refused (an OVERLOADED error notice): past a queue mark
   *  (`share`) or over its key's admission budget (`budget`). */
  refused(conn: number, why: 'share' | 'budget'): void;
  /** Closes a connection that ignores its refusals (REFUSALS_PER_SECOND_BEFORE_SHED); its close
   *  comes back as close(). */
  shed(conn: number): void;
  /** Runs `fn` after the current event-loop turn's I/O (setImmediate). */
  defer(fn: () => void): void;
  /** Monotonic milliseconds (performance.now). */
  nowMs(): number;
}

interface QueuedInput {
  readonly input: ReplicaInput;
  readonly bytes: number;
  /** A phase-1 submission (its budget is spent when it is stepped). */
  readonly submit: boolean;
}

class ConnQueue {
  /** Waiting inputs from `head` on; served slots are cleared at once, so a served batch's bytes
   *  are not held by the queue until it compacts (they were: up to ~1,000 batches per connection). */
  readonly items: (QueuedInput | undefined)[] = [];
  head = 0;
  bytes = 0;
  /** Submissions waiting, and their bytes. */
  submits = 0;
  submitBytes = 0;
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
    if (item.submit) {
      this.submits--;
      this.submitBytes -= item.bytes;
    }
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
  /** CPU ms this address may still spend in the express lane (may run into debt by one step). */
  readonly expressCredit: TokenBucket;
  /** Its connections with input waiting, served round robin. */
  readonly backlogged: ConnQueue[] = [];
  next = 0;
  bytes = 0;
  deficitMs = 0;
  active = false;
  /** Connections open from this address (the queue is dropped with the last). */
  conns = 0;
  constructor(
    readonly address: string,
    nowMs: number,
  ) {
    this.expressCredit = new TokenBucket(EXPRESS_MS_PER_SECOND, EXPRESS_MS_PER_SECOND, nowMs * 1000);
  }
}

export interface FairInboxStats {
  /** Client inputs that waited for a later turn, and those refused at a full mark or over their
   *  key's admission budget (the latter also counted in `overBudget`). */
  queued: number;
  refused: number;
  overBudget: number;
  /** Client inputs stepped in the express lane while others waited. */
  express: number;
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
  private turnExpressMs = 0;
  private turnEnding = false;
  private closed = false;
  readonly stats: FairInboxStats = { queued: 0, refused: 0, overBudget: 0, express: 0, queuedBytes: 0 };

  constructor(private readonly deps: FairInboxDeps) {}

  /** A client connection from `address` authenticated: its input may come from now on. */
  open(conn: number, address: string): void {
    if (this.conns.has(conn)) return;
    let a = this.addresses.get(address);
    if (a === undefined) this.addresses.set(address, (a = new AddressQueue(address, this.deps.nowMs())));
    a.conns++;
    this.conns.set(conn, new ConnQueue(conn, a));
  }

  /** One input of an open connection (its authentication first), as the core triaged it: stepped
   *  now, queued, or refused. */
  push(conn: number, input: ReplicaInput, bytes: number, triage: ClientTriage = 'normal'): void {
    if (this.closed) return;
    const c = this.conns.get(conn);
    if (c === undefined) return;
    if (triage === 'overBudget') {
      this.stats.overBudget++;
      this.refuse(c, 'budget');
      return;
    }
    if (this.waiting === 0 && this.turnWorkMs < CLIENT_SLICE_MS) {
      this.run(input);
      return;
    }
    const a = c.address;
    // Ahead of waiting input, if any waits; a connection's inputs are stepped in its order, so
    // nothing of its own may be waiting.
    if (this.waiting > 0 && c.size === 0 && (triage === 'urgent' || !a.active) && this.turnExpressMs < EXPRESS_SLICE_MS && a.expressCredit.available(this.deps.nowMs() * 1000) > 0) {
      this.runExpress(input, a);
      return;
    }
    if (
      input.kind === 'client' &&
      (c.bytes + bytes > MAX_QUEUED_BYTES_PER_CONNECTION || a.bytes + bytes > MAX_QUEUED_BYTES_PER_ADDRESS || this.totalBytes + bytes > MAX_QUEUED_CLIENT_BYTES)
    ) {
      this.refuse(c, 'share');
      return;
    }
    if (c.size === 0) a.backlogged.push(c);
    if (!a.active) {
      a.active = true;
      this.active.push(a);
    }
    const submit = input.kind === 'client' && input.msg.type === 'submit';
    c.items.push({ input, bytes, submit });
    c.bytes += bytes;
    if (submit) {
      c.submits++;
      c.submitBytes += bytes;
    }
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

  /** What a connection has waiting of phase-1 submissions (none for an unknown one). */
  queuedSubmissions(conn: number): QueuedSubmissions {
    const c = this.conns.get(conn);
    return c === undefined ? { batches: 0, bytes: 0 } : { batches: c.submits, bytes: c.submitBytes };
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

  /** Steps an input ahead of waiting ones, charging its CPU time to its address's express credit
   *  and to the turn's express slice (not the normal one: waiting input keeps its share). */
  private runExpress(input: ReplicaInput, a: AddressQueue): void {
    const started = this.deps.nowMs();
    this.deps.step(input);
    const ended = this.deps.nowMs();
    this.turnExpressMs += ended - started;
    a.expressCredit.spend(ended - started, ended * 1000);
    this.stats.express++;
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
    this.turnExpressMs = 0;
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

  private refuse(c: ConnQueue, why: 'share' | 'budget'): void {
    this.stats.refused++;
    const now = this.deps.nowMs();
    if (now - c.noticeWindowMs >= 1000) {
      c.noticeWindowMs = now;
      c.noticesInWindow = 0;
    }
    const inWindow = ++c.noticesInWindow;
    if (inWindow <= OVERLOAD_NOTICES_PER_SECOND) this.deps.refused(c.conn, why);
    else if (inWindow === REFUSALS_PER_SECOND_BEFORE_SHED + 1) this.deps.shed(c.conn);
  }
}
