/**
 * The replica's dialling side: one outgoing `ws` connection to every other replica's peer port, over
 * which we send it everything we have for it. (We receive from it on our own listener.)
 *
 * Handshake: the acceptor sends helloChallenge{replica, nonce}; we check that it is the replica we
 * meant to dial, then answer hello{self, nonce, sig} signed over helloMessage(clusterId, self,
 * peer, nonce). The acceptor checks the hello before it reads our next frame, so the link is up as
 * soon as the hello is sent. Nothing the acceptor sends on this connection is delivered: it is not
 * authenticated in this direction, and an honest acceptor sends only its challenge and error notices.
 *
 * Sending: frames wait in a per-link queue and are handed to `ws` while less than
 * PEER_INFLIGHT_MAX_BYTES are unwritten (tracked through `ws`'s write callbacks). While the peer is
 * unreachable the queue keeps filling; on reconnect it is flushed, and frames a dropped connection
 * had not confirmed as written go out again first (so a frame may arrive twice across a reconnect:
 * protocol messages are idempotent). While the peer is unreachable only the newest
 * peerDownQueueMaxBytes, queued within peerDownQueueMaxAgeMs, are kept (older frames are shed,
 * counted and logged at info: the peer catches up from its peers' stores when it is back). If queued plus unwritten bytes on a live
 * link would pass the link's limit, the backlog is dropped, logged at error level and counted, and
 * the connection is replaced: that is the transport's only loss.
 */
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { decodeMessage, encodeMessage } from '../../common/codec.js';
import type { ClusterTls, ReplicaInfo } from '../../common/config.js';
import type { Signer } from '../../common/crypto/types.js';
import type { Digest, ReplicaId } from '../../common/ids.js';
import type { HelloChallengeMsg } from '../../common/messages.js';
import { helloMessage } from '../../common/signing.js';
import { FrameQueue } from './frameQueue.js';
import {
  BAD_INPUT_LOG_INTERVAL_MS,
  CLOSE_HANDSHAKE_TIMEOUT_MS,
  CONNECT_TIMEOUT_MS,
  PEER_DEAD_AFTER_MS,
  PEER_INFLIGHT_MAX_BYTES,
  PEER_PING_INTERVAL_MS,
  PEER_REVERSE_MAX_FRAME_BYTES,
  type TransportLimits,
} from './limits.js';
import { LogThrottle } from './logThrottle.js';
import type { PeerLinkState, PeerLinkStats, TransportCounters } from './stats.js';

export interface PeerLinkContext {
  readonly self: ReplicaId;
  readonly clusterId: Digest;
  readonly replicaCount: number;
  readonly signer: Signer;
  readonly logger: Logger;
  readonly limits: TransportLimits;
  readonly counters: TransportCounters;
  /** The cluster speaks TLS: dial wss:// and verify peers against its CA. */
  readonly tls: ClusterTls | null;
  onStatus(peer: ReplicaId, up: boolean): void;
}

const GOING_AWAY = 1001;

function peerUrl(peer: ReplicaInfo, tls: boolean): string {
  const host = peer.host.includes(':') ? `[${peer.host}]` : peer.host; // IPv6 literal
  return `${tls ? 'wss' : 'ws'}://${host}:${peer.peerPort}/`;
}

export class PeerLink {
  private state: PeerLinkState = 'idle';
  private ws: WebSocket | null = null;
  /** Bumped whenever the current connection is abandoned: events of older ones are ignored. */
  private generation = 0;
  private readonly queue = new FrameQueue();
  /** Handed to `ws`, not yet written to the kernel, oldest first. */
  private readonly inflight = new FrameQueue();
  /** Consecutive failed attempts, for the backoff. */
  private failures = 0;
  private everUp = false;
  private connectAttempts = 0;
  private reconnects = 0;
  private droppedFrames = 0;
  private shedFrames = 0;
  private readonly shedLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  private lastError = '';
  private lastPongMs = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private closing = false;
  /** The current connection's write callback (one per connection, not one per frame). */
  private onWritten: (err?: Error | null) => void = () => undefined;
  /** Resolved when the queue empties or the connection drops (close() waits on it). */
  private flushWaiters: (() => void)[] = [];
  private readonly log: Logger;
  private readonly downLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  private readonly badInputLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  private readonly lateSendLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  private readonly wrongPeerLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);

  constructor(
    private readonly ctx: PeerLinkContext,
    readonly peer: ReplicaInfo,
  ) {
    this.log = ctx.logger.child({ peer: peer.id });
  }

  get up(): boolean {
    return this.state === 'up';
  }

  start(): void {
    if (this.state === 'idle' && this.ws === null && this.reconnectTimer === null) this.connect();
  }

  /** The peer is known to be reachable again: a link waiting out its reconnect backoff dials now
   *  (an attempt under way or a link that is up is left alone). */
  redialNow(): void {
    if (this.closing || this.state !== 'idle' || this.reconnectTimer === null) return;
    this.clearTimer('reconnectTimer');
    this.failures = 0;
    this.connect();
  }

  /** Queues one encoded frame (shared, never modified) for the peer. */
  send(frame: Uint8Array): void {
    if (this.state === 'closed') {
      this.droppedFrames++;
      this.ctx.counters.dropped('peer', 1);
      this.lateSendLog.run((suppressed) => this.log.warn({ suppressed }, 'frame for a peer after the transport closed: dropped'));
      return;
    }
    const nowMs = Date.now();
    if (this.state !== 'up') this.shed(frame.length, nowMs);
    const pending = this.queue.bytes + this.inflight.bytes;
    if (pending > 0 && pending + frame.length > this.ctx.limits.peerQueueMaxBytes) this.overflow(pending);
    this.queue.push(frame, nowMs);
    if (this.state === 'up') this.pump();
    this.ctx.counters.peerQueue(this.peer.id, this.queue.bytes + this.inflight.bytes);
  }

  /** Bytes waiting for this peer. */
  get backlogBytes(): number {
    return this.queue.bytes + this.inflight.bytes;
  }

  /** The peer is unreachable (or just back): makes room for `incoming` bytes within the down
   *  backlog and sheds what is older than its age limit, oldest first. */
  private shed(incoming: number, nowMs: number): void {
    const { peerDownQueueMaxBytes: max, peerDownQueueMaxAgeMs: maxAgeMs } = this.ctx.limits;
    let shed = 0;
    while (this.queue.length > 0 && (this.queue.bytes + incoming > max || this.queue.peekQueuedAtMs()! < nowMs - maxAgeMs)) {
      this.queue.shift();
      shed++;
    }
    if (shed === 0) return;
    this.shedFrames += shed;
    this.ctx.counters.shed(this.peer.id, shed);
    this.shedLog.run((suppressed) =>
      this.log.info(
        { shedFrames: this.shedFrames, keptBytes: this.queue.bytes, limit: max, maxAgeMs, state: this.state, suppressed },
        `shed frames for replica ${this.peer.id}, unreachable or just back: kept the newest, within limit and maxAgeMs (it catches up from its peers)`,
      ),
    );
  }

  private overflow(pendingBytes: number): void {
    const dropped = this.queue.clear() + this.inflight.clear();
    this.droppedFrames += dropped;
    this.ctx.counters.dropped('peer', dropped);
    this.log.error(
      { droppedFrames: dropped, droppedBytes: pendingBytes, limit: this.ctx.limits.peerQueueMaxBytes, state: this.state },
      `send queue to replica ${this.peer.id} exceeded its limit: dropped its backlog and replacing the connection`,
    );
    // The backlog is already gone, so nothing is requeued; a fresh connection starts from the new frame.
    if (this.ws !== null) this.abandon('send queue overflow');
  }

  /** Hands queued frames to `ws` while the unwritten amount is below the mark. */
  private pump(): void {
    const ws = this.ws;
    if (ws === null) return;
    while (this.queue.length > 0) {
      const next = this.queue.peek()!;
      if (this.inflight.bytes > 0 && this.inflight.bytes + next.length > PEER_INFLIGHT_MAX_BYTES) break;
      const queuedAtMs = this.queue.peekQueuedAtMs()!;
      this.queue.shift();
      this.inflight.push(next, queuedAtMs);
      ws.send(next, { binary: true }, this.onWritten);
    }
  }

  /** `ws` wrote one frame to the kernel (callbacks come in send order). */
  private written(generation: number, err: Error | null | undefined): void {
    // A failed write belongs to a connection that is closing; disconnected() requeues its frames.
    if (generation !== this.generation || (err !== undefined && err !== null)) return;
    const frame = this.inflight.shift();
    if (frame === undefined) return;
    this.ctx.counters.frameOut('peer', frame.length);
    if (this.queue.length > 0) this.pump();
    else if (this.inflight.length === 0) this.resolveFlushWaiters();
    this.ctx.counters.peerQueue(this.peer.id, this.queue.bytes + this.inflight.bytes);
  }

  // ---------------------------------------------------------------------------------------------
  // Connection lifecycle

  private connect(): void {
    this.reconnectTimer = null;
    this.connectAttempts++;
    this.state = 'connecting';
    const generation = ++this.generation;
    const tls = this.ctx.tls;
    const ws = new WebSocket(peerUrl(this.peer, tls !== null), {
      perMessageDeflate: false,
      maxPayload: PEER_REVERSE_MAX_FRAME_BYTES,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
      followRedirects: false,
      // The certificate must chain to the cluster's CA and name the peer's host (ws checks it).
      ...(tls === null || tls.ca === null ? {} : { ca: tls.ca }),
    });
    this.ws = ws;
    this.onWritten = (err) => this.written(generation, err);
    const current = (): boolean => generation === this.generation;
    ws.on('open', () => {
      if (current()) this.onOpen();
    });
    ws.on('message', (data, isBinary) => {
      if (current()) this.onMessage(data as Buffer, isBinary);
    });
    ws.on('pong', () => {
      if (current()) this.lastPongMs = Date.now();
    });
    ws.on('error', (e) => {
      if (current()) this.lastError = e.message; // 'close' always follows
    });
    ws.on('close', (code, reason) => {
      if (current()) this.disconnected(`closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`);
    });
  }

  private onOpen(): void {
    this.state = 'handshaking';
    this.handshakeTimer = setTimeout(() => this.abandon('no helloChallenge in time'), this.ctx.limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.ctx.counters.frameIn('peer', data.length);
    const decoded = isBinary ? decodeMessage(data, { replicaCount: this.ctx.replicaCount }) : null;
    if (decoded === null || !decoded.ok) {
      const code = decoded === null ? 'MALFORMED_FRAME' : decoded.error.code;
      this.ctx.counters.reject('peer', code);
      this.badInputLog.run((suppressed) =>
        this.log.warn({ code, reason: decoded?.ok === false ? decoded.error.message : 'text frame', suppressed }, 'undecodable frame from a peer we dialled'),
      );
      return;
    }
    const msg = decoded.value;
    if (msg.type === 'helloChallenge') {
      if (this.state === 'handshaking') this.answer(msg);
      else this.abandon('a second helloChallenge on an established link');
      return;
    }
    if (msg.type === 'error') {
      this.ctx.counters.errorNoticesReceived++;
      this.badInputLog.run((suppressed) => this.log.warn({ code: msg.code, message: msg.message, suppressed }, 'peer refused a frame we sent'));
      return;
    }
    this.badInputLog.run((suppressed) => this.log.warn({ type: msg.type, suppressed }, 'ignored a message on a link we dialled (peers send to us on their own links)'));
  }

  private answer(challenge: HelloChallengeMsg): void {
    const { self, clusterId, signer } = this.ctx;
    if (challenge.replica !== this.peer.id) {
      // A misconfiguration that repeats on every redial: loud, but once per interval.
      this.wrongPeerLog.run((suppressed) =>
        this.log.error(
          { url: peerUrl(this.peer, this.ctx.tls !== null), claimed: challenge.replica, suppressed },
          `dialled replica ${this.peer.id} but the acceptor says it is replica ${challenge.replica}: check replica ${this.peer.id}'s host and peerPort in the cluster config`,
        ),
      );
      this.abandon('acceptor is not the replica we dialled');
      return;
    }
    const sig = signer.sign(helloMessage(clusterId, self, this.peer.id, challenge.nonce));
    const hello = encodeMessage({ type: 'hello', replica: self, nonce: challenge.nonce, sig });
    this.clearTimer('handshakeTimer');
    this.ws!.send(hello, { binary: true });
    this.ctx.counters.frameOut('peer', hello.length);
    this.state = 'up';
    this.failures = 0;
    if (this.everUp) {
      this.reconnects++;
      this.ctx.counters.reconnected(this.peer.id);
    }
    this.everUp = true;
    this.lastPongMs = Date.now();
    this.pingTimer = setInterval(() => this.ping(), PEER_PING_INTERVAL_MS);
    this.pingTimer.unref();
    // What waited longer than the age limit (no send came to shed it) is stale now too.
    this.shed(0, Date.now());
    this.log.info({ queuedFrames: this.queue.length, attempts: this.connectAttempts }, `link to replica ${this.peer.id} is up`);
    this.ctx.counters.peerUp(this.peer.id, true);
    this.notifyStatus(true);
    this.pump();
  }

  private ping(): void {
    if (Date.now() - this.lastPongMs > PEER_DEAD_AFTER_MS) this.abandon(`no pong for ${PEER_DEAD_AFTER_MS} ms`);
    else this.ws?.ping();
  }

  /** Drops the current connection now (its later events are ignored) and redials. */
  private abandon(reason: string): void {
    const ws = this.ws;
    this.disconnected(reason);
    ws?.terminate();
  }

  /** The current connection is gone: requeue what it never wrote, report, and redial unless closing. */
  private disconnected(reason: string): void {
    const wasUp = this.state === 'up';
    this.generation++;
    this.ws = null;
    this.clearTimer('handshakeTimer');
    this.clearTimer('pingTimer');
    this.queue.prependAll(this.inflight);
    this.state = this.closing ? 'closed' : 'idle';
    this.resolveFlushWaiters();
    if (wasUp) {
      if (!this.closing) this.log.warn({ reason, queuedFrames: this.queue.length }, `link to replica ${this.peer.id} is down`);
      this.ctx.counters.peerUp(this.peer.id, false);
      if (!this.closing) this.notifyStatus(false);
    } else {
      this.failures++;
      const detail = this.lastError === '' ? reason : `${reason}: ${this.lastError}`;
      this.downLog.run((suppressed) => this.log.info({ reason: detail, failedAttempts: this.failures, suppressed }, `cannot reach replica ${this.peer.id} yet`));
    }
    this.lastError = '';
    if (!this.closing) this.scheduleReconnect();
  }

  /**
   * Reports up/down to the embedder from a microtask: a link can go down inside send() (queue
   * overflow), and the embedder must never be re-entered from its own call.
   */
  private notifyStatus(up: boolean): void {
    queueMicrotask(() => this.ctx.onStatus(this.peer.id, up));
  }

  private scheduleReconnect(): void {
    const { reconnectBaseMs, reconnectMaxMs } = this.ctx.limits;
    const ceiling = Math.min(reconnectMaxMs, reconnectBaseMs * 2 ** Math.min(this.failures, 30));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }

  private clearTimer(name: 'handshakeTimer' | 'pingTimer' | 'reconnectTimer'): void {
    const timer = this[name];
    if (timer !== null) clearTimeout(timer);
    this[name] = null;
  }

  private resolveFlushWaiters(): void {
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of waiters) w();
  }

  stats(): PeerLinkStats {
    return {
      peer: this.peer.id,
      state: this.state,
      queuedFrames: this.queue.length,
      queuedBytes: this.queue.bytes,
      inflightBytes: this.inflight.bytes,
      connectAttempts: this.connectAttempts,
      reconnects: this.reconnects,
      droppedFrames: this.droppedFrames,
      shedFrames: this.shedFrames,
    };
  }

  /**
   * Stops redialling; if the link is up, waits up to `flushTimeoutMs` for the queue to be written,
   * then closes the connection (close frame, cut after CLOSE_HANDSHAKE_TIMEOUT_MS). What could not
   * be written is reported in the log.
   */
  async close(flushTimeoutMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.clearTimer('reconnectTimer');
    if (this.state === 'up' && this.queue.length + this.inflight.length > 0) {
      await this.waitFor((done) => this.flushWaiters.push(done), flushTimeoutMs);
    }
    const unsent = this.queue.length + this.inflight.length;
    if (unsent > 0) this.log.warn({ frames: unsent, state: this.state }, `closing with frames for replica ${this.peer.id} not written`);
    const ws = this.ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      ws.close(GOING_AWAY, 'replica shutting down');
      await this.waitFor((done) => ws.once('close', () => done()), CLOSE_HANDSHAKE_TIMEOUT_MS);
    }
    if (this.ws !== null) this.abandon('transport closed'); // still open after the grace, or never opened
    this.state = 'closed';
    this.queue.clear();
    this.inflight.clear();
    this.clearTimer('handshakeTimer');
    this.clearTimer('pingTimer');
  }

  /** Resolves true when `register`'s callback fires, false after `timeoutMs`; leaves no timer. */
  private waitFor(register: (done: () => void) => void, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      register(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
