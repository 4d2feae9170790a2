/**
 * The drive loop: the one place where the replica core meets time, disk and network.
 *
 * Every input (a peer or client message, a closed client, a timer tick) becomes one synchronous
 * `core.step(input, wallClockUs())`, and its output is applied in the core's order (ordering/types.ts):
 *
 *  1. persist: `storage.apply(ops)` starts at once. It is asynchronous; the WriteBatcher folds the
 *     writes of one event-loop turn into one LevelDB batch, so many steps share one fsync.
 *  2. send: the core numbers outputs with persist ops (persistSeq) and says how far the persists
 *     must be durable before an output's messages may leave (sendAfter, ReplicaOutput: votes,
 *     timeouts and acks wait for everything up to their own write; a proposal for the write of the
 *     vote its certificate counts; a timestamp reply for its reservation; refusals and notices for
 *     their output's own write only). Persists become durable in order (the WriteBatcher writes
 *     groups in order), so an output leaves once persists 1..sendAfter have resolved: an ack or a
 *     seal never leaves before what it relies on is durable, and a message that relies on nothing
 *     in flight never waits behind an unrelated fsync.
 *  3. serve: block, batch and checkpoint reads for peers are reads of durable data, so they need no
 *     ordering with the writes; they run concurrently, bounded per peer. What is no longer held
 *     (pruned below a stable checkpoint) is answered with that checkpoint's certificate, from which
 *     the asker can catch up by state transfer.
 *  4. report: executed batches, commits and peer faults go to metrics and logs right away.
 *  5. checkpoints: a checkpoint the core captured is written once its step's persists are durable
 *     (its block's commit among them), one at a time, pulling the state machine's chunks as it
 *     goes; then the core is told (input 'checkpointWritten'). An install (a checkpoint fetched
 *     from peers) is handed to `onInstall` once its persist group is durable: the host replaces
 *     the core, as after a restart.
 *
 * Client input goes through a FairInbox (server/fairInbox.ts), as the core triaged it: stepped at
 * once unless client work has filled this event-loop turn, else served fairly between source
 * addresses afterwards; phase 2 of a batch stamped here ahead of that, a submission over its key's
 * budget refused before it waits.
 *
 * One timer: after each step the tick is scheduled at core.nextWakeUs() (µs of wall clock), the
 * previous one replaced. The core is never stepped concurrently (steps are synchronous; a re-entrant
 * call asserts), and nothing here blocks the event loop. A throw from the core or a failed write is
 * a broken invariant or a lost write: the loop stops for good and reports it as fatal; the process
 * must crash rather than continue.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { AssertionError, assert } from '../common/assert.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import { MAX_SYNC_RESPONSE_BYTES } from '../common/limits.js';
import { ErrorCode } from '../common/errors.js';
import { RefusalReason, type Message } from '../common/messages.js';
import type { ClientIdentity } from '../ordering/clientKeys.js';
import type { ServeBlocksRequest } from '../consensus/types.js';
import type { ReplicaStorage } from '../ordering/storage.js';
import type { LocalCheckpoint } from '../ordering/checkpointFormat.js';
import type { ClientTriage, QueuedSubmissions, ReplicaInput, ReplicaOutput, ServeBatchesRequest, ServeChunkRequest } from '../ordering/types.js';
import { FairInbox, type FairInboxStats } from './fairInbox.js';
import { RateWindow, type ReplicaMetrics } from './metrics.js';
import { LogThrottle } from './transport/logThrottle.js';

/** Reads of one kind served to one peer at a time; more requests of that kind are refused
 *  (counted and logged) until one finishes. An honest peer has one or two outstanding fetches of a
 *  kind; a peer that floods requests must not make us hold gigabytes of bytes read for it: at most
 *  4 batch reads (SERVE_READ_GROUP batches each), 4 block reads (MAX_SYNC_RESPONSE_BYTES each) and
 *  4 checkpoint pieces at once per peer, and none while its send queue holds SERVE_BACKLOG_MAX_BYTES.
 *  Each kind has its own budget: a replica back from a crash asks the leader for the blocks behind
 *  every proposal it sees, and a budget shared with batch reads refused the batches its execution
 *  waited for (retried 200 ms later, on a peer as busy): execution stood still for 2 s while
 *  blocks synced (crash soak, the leader down 9 s: catch-up 10–11 s instead of 8). */
export const MAX_SERVES_IN_FLIGHT_PER_PEER = 4;

/** What a peer asks to read: each kind has its own MAX_SERVES_IN_FLIGHT_PER_PEER. */
type ServeKind = 'blocks' | 'batches' | 'checkpoint';

/** Batches read from storage per read while serving: bounds the bytes held at once for one
 *  request (16 × 4 MiB at most) while keeping reads few. */
export const SERVE_READ_GROUP = 16;

/** A read for a peer starts only while less than this waits in its send queue, and a serve of
 *  several responses stops there: catching a peer up goes at the pace its link takes (the peer
 *  asks again for the rest), instead of queueing hundreds of MB for it (issue 13). */
export const SERVE_BACKLOG_MAX_BYTES = 32 * 1024 * 1024;

/** At most one log line per kind of trouble per interval (with a count of the ones suppressed). */
const LOG_INTERVAL_MS = 10_000;

/** Sliding window of the rates in stats(). */
const RATE_WINDOW_MS = 10_000;

/** What the loop drives: ReplicaCore, or a stand-in in tests. */
export interface DrivenCore {
  step(input: ReplicaInput, nowUs: number): ReplicaOutput;
  /** How the fair inbox should treat a client message (ReplicaCore.triageClient: a query). */
  triageClient(conn: number, msg: Message, nowUs: number, queued: QueuedSubmissions): ClientTriage;
  nextWakeUs(): number | null;
  /** The current view, to log view changes. */
  readonly view: number;
}

/** Where messages go: the Transport. */
export interface Sender {
  sendToPeer(to: ReplicaId, msg: Message): void;
  broadcastToPeers(msg: Message): void;
  /** False if the connection is gone. */
  sendToClient(conn: number, msg: Message): boolean;
  /** Closes a client connection judged faulty (and refuses its address for a moment); its close
   *  comes back as clientClosed. */
  shedClient(conn: number, reason: string): void;
  /** Bytes waiting for replica `to` (not yet written to its socket). */
  peerBacklogBytes(to: ReplicaId): number;
}

export interface DriverOptions {
  readonly core: DrivenCore;
  readonly storage: ReplicaStorage;
  readonly sender: Sender;
  readonly metrics: ReplicaMetrics;
  readonly logger: Logger;
  /** Wall-clock µs, monotone (client/clock.ts wallClockUs). */
  readonly clockUs: () => number;
  /** Called once when the loop stops on a broken invariant or a failed write. */
  readonly onFatal: (error: unknown) => void;
  /** A checkpoint fetched from peers is durable: replace the core (the loop takes no more input). */
  readonly onInstall?: (checkpoint: LocalCheckpoint) => void;
}

/** Counters for /status. */
export interface DriverStats {
  readonly steps: number;
  readonly stepsPerSecond: number;
  readonly executedBatches: number;
  readonly executedCommands: number;
  /** Executed commands per second over the last 10 s (this process only, not the replay). */
  readonly executedCommandsPerSecond: number;
  readonly persists: number;
  readonly meanPersistMs: number;
  readonly sendBacklog: number;
  readonly maxSendBacklog: number;
  readonly clientsGone: number;
  readonly servesRefused: number;
  readonly readErrors: number;
  readonly peerFaults: Readonly<Record<string, number>>;
  /** Client input that waited for fair service, and that was refused at a full queue. */
  readonly clientInbox: Readonly<FairInboxStats>;
  readonly checkpointsWritten: number;
  readonly lastCheckpointWriteMs: number;
}

/** What a client message weighs in the fair inbox's byte marks (its large fields; a few hundred
 *  bytes for the rest). */
function clientBytes(msg: Message): number {
  switch (msg.type) {
    case 'submit':
      return msg.batch.length;
    case 'sequence':
      return 256 + (msg.batch?.length ?? 0);
    case 'command':
      return 256 + msg.payload.length;
    default:
      return 256;
  }
}

type State = 'new' | 'running' | 'stopping' | 'closed' | 'dead';

/** Why a refusal shows its client connection faulty, or null: a correct client never sends a
 *  malformed or oversized batch, nor one its key did not sign (ordering/batchCheck.ts). A bad OC
 *  is not among these: a collector that does not check stamps may pass on a Byzantine replica's. */
function faultyClientInput(msg: Message): string | null {
  if (msg.type !== 'refused') return null;
  if (msg.reason === RefusalReason.BadSignature) return 'a batch or command its key did not sign';
  if (msg.reason === RefusalReason.BadBatch) return 'a malformed or oversized batch';
  return null;
}


export class Driver {
  private state: State = 'new';
  private stepping = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAtUs = 0;
  /** Outputs with persist ops so far, and how many of those are durable (in order). */
  private persistCount = 0;
  private durableThrough = 0;
  /** Persists that resolved before an earlier one did (none with the WriteBatcher; kept safe). */
  private readonly resolvedEarly = new Set<number>();
  /** Outputs waiting to be sent, by the persist count they need durable, in step order. */
  private readonly waiting = new Map<number, ReplicaOutput[]>();
  private waitingCount = 0;
  private drainWaiters: (() => void)[] = [];
  /** Reads in flight per peer and kind, keyed `${peer}:${kind}`. */
  private readonly servesInFlight = new Map<string, number>();
  private lastView = -1;
  private readonly faultLogs = new Map<string, LogThrottle>();
  private readonly troubleLog = new LogThrottle(LOG_INTERVAL_MS);
  private readonly stepRate = new RateWindow(RATE_WINDOW_MS);
  private readonly commandRate = new RateWindow(RATE_WINDOW_MS);
  private readonly counts = {
    steps: 0,
    executedBatches: 0,
    executedCommands: 0,
    persists: 0,
    persistMs: 0,
    maxSendBacklog: 0,
    clientsGone: 0,
    servesRefused: 0,
    readErrors: 0,
  };
  private readonly peerFaults: Record<string, number> = {};
  /** Checkpoint writes, one after the other. */
  private checkpointWrites: Promise<void> = Promise.resolve();
  private checkpointsWritten = 0;
  private lastCheckpointWriteMs = 0;
  private readonly tick = (): void => {
    this.timer = null;
    this.input({ kind: 'tick' });
  };
  private readonly inbox: FairInbox;

  constructor(private readonly opts: DriverOptions) {
    this.inbox = new FairInbox({
      step: (input) => this.input(input),
      refused: (conn, why) =>
        void opts.sender.sendToClient(conn, {
          type: 'error',
          code: ErrorCode.Overloaded,
          message:
            why === 'budget'
              ? 'your client key is over its budget of batches or bytes per second: send more slowly'
              : 'this replica is saturated and your source is over its share: send more slowly',
        }),
      shed: (conn) => opts.sender.shedClient(conn, 'kept sending far past OVERLOADED'),
      defer: (fn) => void setImmediate(fn),
      nowMs: () => performance.now(),
    });
  }

  /** Steps the core's `start` input; inputs are accepted from now on. */
  start(): void {
    assert(this.state === 'new', `Driver.start() in state ${this.state}`);
    this.state = 'running';
    this.lastView = this.opts.core.view;
    this.step({ kind: 'start' });
  }

  /** One input from the network or the timer. Ignored unless running. */
  input(input: ReplicaInput): void {
    if (this.state === 'running') this.step(input);
  }

  /** A client connection from `address` proved its key: its input is served fairly from now on. */
  clientAuthenticated(conn: number, identity: ClientIdentity, address: string): void {
    this.inbox.open(conn, address);
    this.inbox.push(conn, { kind: 'clientAuthenticated', conn, identity }, 0);
  }

  /** A message of an authenticated client connection: triaged by the core, then stepped, queued
   *  or refused by the fair inbox. */
  clientMessage(conn: number, msg: Message): void {
    if (this.state !== 'running') return;
    let triage: ClientTriage;
    try {
      triage = this.opts.core.triageClient(conn, msg, this.opts.clockUs(), this.inbox.queuedSubmissions(conn));
    } catch (error) {
      this.die(error);
      return;
    }
    this.inbox.push(conn, { kind: 'client', conn, msg }, clientBytes(msg), triage);
  }

  /** A client connection closed: what it had waiting is dropped. */
  clientClosed(conn: number): void {
    this.inbox.close(conn);
    this.input({ kind: 'clientClosed', conn });
  }

  /** Stops taking input (and ticks). Persists already started still finish and their sends go out. */
  stop(): void {
    if (this.state === 'running' || this.state === 'new') this.state = 'stopping';
    this.inbox.stop();
    this.clearTimer();
  }

  /** After drain(), before the transport closes: reads still in flight send nothing. */
  close(): void {
    this.stop();
    if (this.state !== 'dead') this.state = 'closed';
  }

  /** Resolves once every started persist has finished and its sends have gone out, and the
   *  checkpoint write in progress (if any) is done; queued ones are dropped once stopped. */
  drain(): Promise<void> {
    const persists = this.idle() || this.state === 'dead' ? Promise.resolve() : new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    return persists.then(() => this.checkpointWrites);
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Once a second: feeds the rate windows. */
  sampleRates(nowMs: number): void {
    this.stepRate.sample(nowMs, this.counts.steps);
    this.commandRate.sample(nowMs, this.counts.executedCommands);
  }

  stats(): DriverStats {
    const c = this.counts;
    return {
      steps: c.steps,
      stepsPerSecond: round(this.stepRate.perSecond()),
      executedBatches: c.executedBatches,
      executedCommands: c.executedCommands,
      executedCommandsPerSecond: round(this.commandRate.perSecond()),
      persists: c.persists,
      meanPersistMs: c.persists === 0 ? 0 : round(c.persistMs / c.persists, 3),
      sendBacklog: this.waitingCount,
      maxSendBacklog: c.maxSendBacklog,
      clientsGone: c.clientsGone,
      servesRefused: c.servesRefused,
      readErrors: c.readErrors,
      peerFaults: { ...this.peerFaults },
      clientInbox: { ...this.inbox.stats },
      checkpointsWritten: this.checkpointsWritten,
      lastCheckpointWriteMs: round(this.lastCheckpointWriteMs),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Stepping

  private step(input: ReplicaInput): void {
    if (this.stepping) return this.die(new AssertionError('ReplicaCore.step re-entered: an input arrived from inside a step'));
    this.stepping = true;
    let out: ReplicaOutput;
    const startedMs = performance.now();
    try {
      out = this.opts.core.step(input, this.opts.clockUs());
    } catch (error) {
      this.stepping = false;
      this.die(error);
      return;
    }
    this.stepping = false;
    this.counts.steps++;
    this.opts.metrics.step(input.kind, (performance.now() - startedMs) / 1000);
    try {
      this.apply(out);
    } catch (error) {
      this.die(error);
      return;
    }
    this.noteView();
    this.schedule();
  }

  private apply(out: ReplicaOutput): void {
    const own = out.persist.length > 0 ? ++this.persistCount : 0;
    assert(out.persistSeq === 0 || out.persistSeq === own, `core numbered persist ${out.persistSeq}, the driver ${own}`);
    // A negative sendAfter (stand-in cores in tests) means: after every persist so far.
    const required = out.sendAfter < 0 ? this.persistCount : out.sendAfter;
    assert(required <= this.persistCount, `sends wait for persist ${required}, only ${this.persistCount} started`);
    let written: Promise<void> = Promise.resolve();
    if (own > 0) {
      const startedMs = performance.now();
      written = this.opts.storage.apply(out.persist).then(
        () => {
          const ms = performance.now() - startedMs;
          this.counts.persists++;
          this.counts.persistMs += ms;
          this.opts.metrics.persisted(ms / 1000);
          this.durable(own);
        },
        (error: unknown) => this.die(error),
      );
    }
    for (const capture of out.checkpoints) this.writeCheckpoint(written, capture);
    const install = out.install;
    if (install !== null) {
      void written.then(() => {
        if (this.state === 'running' || this.state === 'stopping') this.opts.onInstall?.(install);
      });
    }
    if (required <= this.durableThrough) {
      this.send(out);
    } else {
      let list = this.waiting.get(required);
      if (list === undefined) this.waiting.set(required, (list = []));
      list.push(out);
      if (++this.waitingCount > this.counts.maxSendBacklog) this.counts.maxSendBacklog = this.waitingCount;
    }
    for (const req of out.serveBlocks) this.serveBlocks(req);
    for (const req of out.serveBatches) this.serveBatches(req);
    for (const req of out.serveChunks) this.serveChunk(req);
    this.report(out);
  }

  /** Writes a captured checkpoint after `durable` (its step's persists) and the writes before it. */
  private writeCheckpoint(durable: Promise<void>, capture: ReplicaOutput['checkpoints'][number]): void {
    this.checkpointWrites = this.checkpointWrites
      .then(() => durable)
      .then(async () => {
        if (this.state !== 'running') return;
        const startedMs = performance.now();
        const stored = await this.opts.storage.writeCheckpoint(capture);
        this.checkpointsWritten++;
        this.lastCheckpointWriteMs = performance.now() - startedMs;
        this.opts.logger.info(
          { height: stored.manifest.height, position: stored.manifest.position, chunks: stored.manifest.chunkHashes.length, writeMs: Math.round(this.lastCheckpointWriteMs) },
          'checkpoint written',
        );
        this.input({ kind: 'checkpointWritten', checkpoint: stored });
      })
      .catch((error: unknown) => this.die(error));
  }

  /** Persist `seq` resolved: advance the durable count and send what waited for it. */
  private durable(seq: number): void {
    if (this.state === 'dead') return;
    this.resolvedEarly.add(seq);
    try {
      while (this.resolvedEarly.delete(this.durableThrough + 1)) {
        this.durableThrough++;
        const ready = this.waiting.get(this.durableThrough);
        if (ready === undefined) continue;
        this.waiting.delete(this.durableThrough);
        this.waitingCount -= ready.length;
        if (this.state === 'closed') continue;
        for (const out of ready) this.send(out);
      }
    } catch (error) {
      this.die(error);
      return;
    }
    if (this.idle()) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private idle(): boolean {
    return this.waitingCount === 0 && this.durableThrough === this.persistCount;
  }

  private send(out: ReplicaOutput): void {
    const { sender } = this.opts;
    for (const { to, msg } of out.toPeers) {
      if (to === 'all') sender.broadcastToPeers(msg);
      else sender.sendToPeer(to, msg);
    }
    for (const { conn, msg } of out.toClients) {
      // A client that left has nothing to receive; its collector retries on a new connection.
      if (!sender.sendToClient(conn, msg)) {
        this.counts.clientsGone++;
        continue;
      }
      const fault = faultyClientInput(msg);
      if (fault !== null) sender.shedClient(conn, fault);
    }
  }

  private report(out: ReplicaOutput): void {
    const { metrics, logger } = this.opts;
    if (out.executed.length > 0) {
      let commands = 0;
      for (const e of out.executed) commands += e.commands;
      this.counts.executedBatches += out.executed.length;
      this.counts.executedCommands += commands;
      metrics.executed(out.executed.length, commands);
    }
    if (out.commits.length > 0) metrics.committed(out.commits.length);
    for (const f of out.faults) {
      this.peerFaults[f.kind] = (this.peerFaults[f.kind] ?? 0) + 1;
      metrics.peerFault(f.kind);
      let throttle = this.faultLogs.get(f.kind);
      if (throttle === undefined) this.faultLogs.set(f.kind, (throttle = new LogThrottle(LOG_INTERVAL_MS)));
      throttle.run((suppressed) => logger.warn({ peer: f.peer, kind: f.kind, detail: f.detail, suppressed }, 'peer fault'));
    }
  }

  private noteView(): void {
    const view = this.opts.core.view;
    if (view === this.lastView) return;
    this.opts.logger.debug({ from: this.lastView, to: view }, 'view change');
    this.lastView = view;
  }

  // ---------------------------------------------------------------------------------------------
  // The timer

  private schedule(): void {
    if (this.state !== 'running') return;
    const wakeUs = this.opts.core.nextWakeUs();
    if (wakeUs === null) return this.clearTimer();
    if (this.timer !== null && this.timerAtUs === wakeUs) return;
    this.clearTimer();
    this.timerAtUs = wakeUs;
    // Timers have millisecond resolution; a delay under 1 ms fires on the next timer phase.
    this.timer = setTimeout(this.tick, Math.max(0, (wakeUs - this.opts.clockUs()) / 1000));
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  // ---------------------------------------------------------------------------------------------
  // Serving reads to peers

  private admitServe(to: ReplicaId, what: ServeKind): boolean {
    const key = `${to}:${what}`;
    const inFlight = this.servesInFlight.get(key) ?? 0;
    if (this.opts.sender.peerBacklogBytes(to) >= SERVE_BACKLOG_MAX_BYTES) {
      this.counts.servesRefused++;
      this.opts.metrics.error('serveBacklog');
      this.troubleLog.run((suppressed) =>
        this.opts.logger.info({ peer: to, what, suppressed }, 'deferred a read for a peer: its send queue is full (it asks again)'),
      );
      return false;
    }
    if (inFlight >= MAX_SERVES_IN_FLIGHT_PER_PEER) {
      this.counts.servesRefused++;
      this.opts.metrics.error('serveRefused');
      this.troubleLog.run((suppressed) =>
        this.opts.logger.warn({ peer: to, what, inFlight, suppressed }, 'refused a read for a peer: too many of its requests in flight (it retries)'),
      );
      return false;
    }
    this.servesInFlight.set(key, inFlight + 1);
    return true;
  }

  private serveDone(to: ReplicaId, what: ServeKind): void {
    const key = `${to}:${what}`;
    const left = (this.servesInFlight.get(key) ?? 1) - 1;
    if (left <= 0) this.servesInFlight.delete(key);
    else this.servesInFlight.set(key, left);
  }

  private canServe(): boolean {
    return this.state === 'running' || this.state === 'stopping';
  }

  private serveBlocks(req: ServeBlocksRequest): void {
    if (!this.admitServe(req.to, 'blocks')) return;
    this.opts.storage
      .readBlocks(req.digest, req.maxBlocks)
      .then(
        (blocks) => {
          if (!this.canServe()) return;
          if (blocks.length > 0) this.opts.sender.sendToPeer(req.to, { type: 'blockResponse', blocks });
          else this.answerPruned(req.to);
        },
        (error: unknown) => this.readFailed('blocks', error),
      )
      .finally(() => this.serveDone(req.to, 'blocks'));
  }

  private serveChunk(req: ServeChunkRequest): void {
    if (!this.admitServe(req.to, 'checkpoint')) return;
    this.opts.storage
      .readCheckpointPiece(req.height, req.state, req.index)
      .then(
        (bytes) => {
          if (!this.canServe()) return;
          if (bytes !== undefined) this.opts.sender.sendToPeer(req.to, { type: 'chunkResponse', height: req.height, state: req.state, index: req.index, bytes });
          else this.answerPruned(req.to);
        },
        (error: unknown) => this.readFailed('checkpoint', error),
      )
      .finally(() => this.serveDone(req.to, 'checkpoint'));
  }

  /** A peer asked for what this replica pruned (or never held): its latest stable checkpoint lets
   *  the peer catch up by state transfer instead. */
  private answerPruned(to: ReplicaId): void {
    const cert = this.opts.storage.latestStableCert();
    if (cert !== null) this.opts.sender.sendToPeer(to, { type: 'checkpointCert', cert });
  }

  private serveBatches(req: ServeBatchesRequest): void {
    if (!this.admitServe(req.to, 'batches')) return;
    this.readAndSendBatches(req.to, req.digests)
      .catch((error: unknown) => this.readFailed('batches', error))
      .finally(() => this.serveDone(req.to, 'batches'));
  }

  /** Reads in groups and sends responses of at most MAX_SYNC_RESPONSE_BYTES (each fits a frame). */
  private async readAndSendBatches(to: ReplicaId, digests: readonly Digest[]): Promise<void> {
    let found: Uint8Array[] = [];
    let bytes = 0;
    for (let i = 0; i < digests.length && this.canServe() && this.opts.sender.peerBacklogBytes(to) < SERVE_BACKLOG_MAX_BYTES; i += SERVE_READ_GROUP) {
      for (const batch of await this.opts.storage.readBatches(digests.slice(i, i + SERVE_READ_GROUP))) {
        if (found.length > 0 && bytes + batch.length > MAX_SYNC_RESPONSE_BYTES) {
          this.opts.sender.sendToPeer(to, { type: 'batchResponse', batches: found });
          found = [];
          bytes = 0;
        }
        found.push(batch);
        bytes += batch.length;
      }
    }
    if (found.length > 0 && this.canServe()) this.opts.sender.sendToPeer(to, { type: 'batchResponse', batches: found });
  }

  /** A failed read: corruption of our own data is fatal, anything else (I/O) is logged and survived. */
  private readFailed(what: string, error: unknown): void {
    if (error instanceof AssertionError) return this.die(error);
    if (this.state !== 'running') return; // the store is closing
    this.counts.readErrors++;
    this.opts.metrics.error('readFailed');
    this.troubleLog.run((suppressed) => this.opts.logger.error({ what, err: error, suppressed }, 'a read for a peer failed'));
  }

  // ---------------------------------------------------------------------------------------------

  private die(error: unknown): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.clearTimer();
    for (const resolve of this.drainWaiters.splice(0)) resolve();
    this.opts.onFatal(error);
  }
}

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;
