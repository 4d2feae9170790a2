/**
 * The replica's accepting side: the peer port (replicas that dialled us, each authenticated by a
 * signed challenge before anything it sends is delivered) and the client port (each connection
 * proves a client key the same way — a challenge, answered by clientHello — before anything it
 * sends is delivered; the key is its identity, passed to the core with onClientAuthenticated).
 *
 * Every frame, on either port: binary only; at most MAX_FRAME_BYTES (the library cuts anything
 * beyond a small grace before buffering it); copied out of the library's buffer before decoding,
 * because decoded byte fields are views into the frame and uWS reuses its buffer; decoded with the
 * cluster size. A frame that fails any of this gets an `error` reply with the typed code (rate
 * limited per connection) and a counter; it never throws and never stalls other connections.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { bytesEqual } from '../../common/bytes.js';
import { decodeMessage, encodeMessage, HELLO_NONCE_BYTES, type DecodeContext } from '../../common/codec.js';
import type { ClusterConfig } from '../../common/config.js';
import type { CryptoBackend } from '../../common/crypto/types.js';
import { ErrorCode } from '../../common/errors.js';
import type { ReplicaId } from '../../common/ids.js';
import { MAX_FRAME_BYTES } from '../../common/limits.js';
import type { ClientHelloMsg, HelloMsg, Message, MessageType } from '../../common/messages.js';
import { helloMessage } from '../../common/signing.js';
import { TokenBucket } from '../../common/tokenBucket.js';
import { checkClientHello, ClientKeyCache, type ClientIdentity } from '../../ordering/clientKeys.js';
import { FrameQueue } from './frameQueue.js';
import {
  BAD_INPUT_LOG_INTERVAL_MS,
  CLIENT_IDLE_TIMEOUT_S,
  CLOSE_HANDSHAKE_TIMEOUT_MS,
  ERROR_REPLIES_PER_SECOND,
  MAX_HANDSHAKE_BUDGET_ADDRESSES,
  PEER_IDLE_TIMEOUT_S,
  PRE_AUTH_MAX_FRAME_BYTES,
  SERVER_MAX_PAYLOAD_BYTES,
  SERVER_SEND_HIGH_WATER_BYTES,
  type TransportLimits,
} from './limits.js';
import { LogThrottle } from './logThrottle.js';
import type { LinkKind } from './metrics.js';
import type { AcceptedSocket, ListeningServer, ServerBackend, ServerHandlers, ServerTls } from './serverBackend.js';
import type { TransportCounters } from './stats.js';

/** Types only replicas send each other; on a client link they are refused. */
export const PEER_ONLY_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'proposal',
  'vote',
  'timeout',
  'blockRequest',
  'blockResponse',
  'batchRequest',
  'batchResponse',
  'checkpoint',
  'checkpointRequest',
  'checkpointCert',
  'chunkRequest',
  'chunkResponse',
  'helloChallenge',
  'hello',
]);

/** WebSocket close codes we send (4000–4999 is the application range). */
export const CloseCode = {
  GoingAway: 1001,
  Replaced: 4000,
  HandshakeFailed: 4001,
  HandshakeTimeout: 4002,
  QueueOverflow: 4003,
  ClosedByReplica: 4004,
  /** A client hello past its address's handshake budget (CLIENT_HANDSHAKES_PER_ADDRESS_PER_SECOND,
   *  or, for a key not parsed lately, FRESH_CLIENT_KEYS_PER_ADDRESS_PER_SECOND or
   *  FRESH_CLIENT_KEYS_PER_SECOND). */
  HandshakeThrottled: 4005,
  /** The replica judged the client faulty (Transport.shedClient) and closed it. */
  Shed: 4006,
} as const;

export interface ListenerEvents {
  onPeerMessage(from: ReplicaId, msg: Message): void;
  /** A replica dialled us and proved its key: it is up (perhaps just restarted). */
  onPeerAuthenticated(peer: ReplicaId): void;
  /** Before any message of the connection: the key it proved it holds. */
  onClientAuthenticated(conn: number, identity: ClientIdentity, address: string): void;
  onClientMessage(conn: number, msg: Message): void;
  onClientClosed(conn: number): void;
}

export interface ListenerOptions {
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  readonly crypto: CryptoBackend;
  readonly logger: Logger;
  readonly limits: TransportLimits;
  readonly counters: TransportCounters;
  readonly backend: ServerBackend;
  readonly bindHost: string;
  /** Serve wss:// on both ports with this certificate; null: ws://. */
  readonly tls: ServerTls | null;
}

/** One source address's client handshake budgets (server/transport/limits.ts). */
interface AddressHandshakeBudget {
  /** Every client hello. */
  readonly handshakes: TokenBucket;
  /** Hellos with a key not in the key cache (the ~1 ms parse). */
  readonly freshKeys: TokenBucket;
}

/** Who closed a connection, which decides whether the embedder hears of it. */
type Closer = 'remote' | 'transport' | 'caller' | 'shutdown';

/** State of one accepted connection. */
class Conn {
  socket: AcceptedSocket | null = null;
  open = false;
  closer: Closer = 'remote';
  readonly queue = new FrameQueue();
  readonly badInputLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  errorWindowStartMs = 0;
  errorsInWindow = 0;
  /** The challenge we sent, until the connection authenticates. */
  nonce: Uint8Array | null = null;
  /** Peer port only: the replica this connection authenticated as. */
  peer: ReplicaId | null = null;
  /** Client port only: the client key this connection proved. */
  client: ClientIdentity | null = null;
  handshakeTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly id: number,
    readonly kind: LinkKind,
    readonly address: string,
  ) {}
}

export class Listener {
  private readonly decodeContext: DecodeContext;
  private readonly servers: ListeningServer[] = [];
  private readonly conns = new Set<Conn>();
  private readonly clients = new Map<number, Conn>();
  /** The current authenticated connection of each replica that dialled us. */
  private readonly inbound = new Map<ReplicaId, Conn>();
  private readonly perAddress: Record<LinkKind, Map<string, number>> = { peer: new Map(), client: new Map() };
  private readonly refusedLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  private readonly handshakeLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  private readonly shedLog = new LogThrottle(BAD_INPUT_LOG_INTERVAL_MS);
  /** Client keys parsed at handshakes (a key costs ~1 ms to parse; a client reconnects with it). */
  private readonly clientKeys: ClientKeyCache;
  /** Per source address that sent a client hello lately: its handshake budgets (oldest first). */
  private readonly handshakeBudgets = new Map<string, AddressHandshakeBudget>();
  /** Hellos with a new key from all addresses together (FRESH_CLIENT_KEYS_PER_SECOND). */
  private readonly freshKeysAll: TokenBucket;
  /** Source addresses whose new client connections are refused at the upgrade, until when
   *  (performance.now ms): shed lately, or out of handshakes (oldest first, at most
   *  MAX_HANDSHAKE_BUDGET_ADDRESSES). */
  private readonly refusedUntilMs = new Map<string, number>();
  private nextConnId = 1;
  private clientQueuedBytes = 0;
  private closed = false;

  constructor(
    private readonly opts: ListenerOptions,
    private readonly events: ListenerEvents,
  ) {
    this.decodeContext = { replicaCount: opts.config.n };
    this.clientKeys = new ClientKeyCache(opts.crypto);
    const { freshClientKeysPerSecond: rate, freshClientKeysTotalBurst: burst } = opts.limits;
    this.freshKeysAll = new TokenBucket(rate, Math.max(rate, burst), performance.now() * 1000);
  }

  /** Binds the peer port and the client port of this replica; rejects (ListenError) if either fails. */
  async start(): Promise<void> {
    const me = this.opts.config.replicas[this.opts.self]!;
    try {
      this.servers.push(await this.listen('peer', me.peerPort, PEER_IDLE_TIMEOUT_S));
      this.servers.push(await this.listen('client', me.clientPort, CLIENT_IDLE_TIMEOUT_S));
    } catch (e) {
      for (const s of this.servers) s.close();
      this.servers.length = 0;
      throw e;
    }
  }

  private listen(kind: LinkKind, port: number, idleTimeoutS: number): Promise<ListeningServer> {
    const handlers: ServerHandlers<Conn> = {
      accept: (address) => this.accept(kind, address),
      open: (conn, socket) => this.onOpen(conn, socket),
      message: (conn, data, isBinary, borrowed) => this.onMessage(conn, data, isBinary, borrowed),
      drain: (conn) => this.pump(conn),
      close: (conn, code, reason, tooLarge) => this.onClose(conn, code, reason, tooLarge),
    };
    return this.opts.backend.listen(
      { host: this.opts.bindHost, port, maxPayloadBytes: SERVER_MAX_PAYLOAD_BYTES, highWaterBytes: SERVER_SEND_HIGH_WATER_BYTES, idleTimeoutS, tls: this.opts.tls },
      handlers,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Connections

  private accept(kind: LinkKind, address: string): Conn | null {
    if (this.closed) return null;
    if (kind === 'client' && this.refusedForNow(address)) {
      this.opts.counters.refused(kind);
      return null;
    }
    const counts = this.perAddress[kind];
    const count = counts.get(address) ?? 0;
    if (count >= this.opts.limits.maxConnectionsPerAddress) {
      this.opts.counters.refused(kind);
      this.refusedLog.run((suppressed) =>
        this.opts.logger.warn({ link: kind, address, limit: this.opts.limits.maxConnectionsPerAddress, suppressed }, 'refused a connection: per-address cap reached'),
      );
      return null;
    }
    counts.set(address, count + 1);
    return new Conn(this.nextConnId++, kind, address);
  }

  private onOpen(c: Conn, socket: AcceptedSocket): void {
    c.socket = socket;
    c.open = true;
    this.conns.add(c);
    if (c.kind === 'client') this.clients.set(c.id, c);
    c.nonce = new Uint8Array(randomBytes(HELLO_NONCE_BYTES));
    this.send(c, encodeMessage({ type: 'helloChallenge', replica: this.opts.self, nonce: c.nonce }));
    c.handshakeTimer = setTimeout(() => {
      c.handshakeTimer = null;
      this.opts.counters.handshakeFailures++;
      this.handshakeLog.run((suppressed) =>
        this.opts.logger.warn({ link: c.kind, address: c.address, conn: c.id, suppressed }, 'connection did not authenticate in time: closing it'),
      );
      this.closeConn(c, 'transport', CloseCode.HandshakeTimeout, 'handshake timeout');
    }, this.opts.limits.handshakeTimeoutMs);
    c.handshakeTimer.unref();
  }

  private onClose(c: Conn, code: number, reason: string, tooLarge: boolean): void {
    const wasOpen = c.open;
    c.open = false;
    if (c.handshakeTimer !== null) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = null;
    const counts = this.perAddress[c.kind];
    const count = (counts.get(c.address) ?? 1) - 1;
    if (count <= 0) counts.delete(c.address);
    else counts.set(c.address, count);
    this.conns.delete(c);
    if (tooLarge) {
      this.opts.counters.reject(c.kind, ErrorCode.FrameTooLarge);
      this.logBadInput(c, ErrorCode.FrameTooLarge, `connection cut: a frame exceeded ${SERVER_MAX_PAYLOAD_BYTES} bytes`);
    }
    if (c.kind === 'client') {
      this.clients.delete(c.id);
      this.clientQueuedBytes -= c.queue.bytes;
      this.opts.counters.clientQueue(this.clientQueuedBytes);
      c.queue.clear();
      if (!wasOpen) return;
      // A close the embedder caused itself (closeClient, close()) is not reported back to it. One the
      // transport caused inside an embedder's call (a queue overflow in sendToClient) is reported
      // after that call returns, so the embedder is never re-entered.
      if (c.closer === 'remote') this.events.onClientClosed(c.id);
      else if (c.closer === 'transport') queueMicrotask(() => this.events.onClientClosed(c.id));
      return;
    }
    c.queue.clear();
    if (c.peer !== null && this.inbound.get(c.peer) === c) {
      this.inbound.delete(c.peer);
      this.opts.logger.info({ peer: c.peer, code, reason }, 'inbound link from peer closed');
    }
  }

  private closeConn(c: Conn, closer: Closer, code: number, reason: string): void {
    if (!c.open || c.socket === null) return;
    c.closer = closer;
    c.socket.end(code, reason);
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  private onMessage(c: Conn, data: Uint8Array, isBinary: boolean, borrowed: boolean): void {
    if (!c.open || this.closed) return;
    const size = data.length;
    this.opts.counters.frameIn(c.kind, size);
    if (!isBinary) return this.refuse(c, ErrorCode.MalformedFrame, 'text frame: frames are binary msgpack');
    if (size > MAX_FRAME_BYTES) return this.refuse(c, ErrorCode.FrameTooLarge, `frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}`);
    if (c.nonce !== null && size > PRE_AUTH_MAX_FRAME_BYTES) {
      return this.refuse(c, ErrorCode.HandshakeFailed, `frame of ${size} bytes before the handshake: answer the helloChallenge first`);
    }
    // The library's buffer is reused after this call, and decoded byte fields are views into the
    // frame, so copy before decoding (one memcpy of the frame).
    const frame = borrowed ? data.slice() : data;
    const decoded = decodeMessage(frame, this.decodeContext);
    if (!decoded.ok) return this.refuse(c, decoded.error.code, decoded.error.message);
    const msg = decoded.value;
    if (msg.type === 'error') return this.onErrorNotice(c, msg.code, msg.message);
    if (c.kind === 'client') {
      if (c.client === null) {
        if (msg.type === 'clientHello') return this.onClientHello(c, msg);
        return this.refuse(c, ErrorCode.HandshakeFailed, `${msg.type} before the handshake: answer the helloChallenge with a clientHello first`);
      }
      if (PEER_ONLY_TYPES.has(msg.type) || msg.type === 'clientHello') {
        return this.refuse(c, ErrorCode.HandshakeFailed, `${msg.type} is not accepted on an authenticated client link`);
      }
      this.events.onClientMessage(c.id, msg);
      return;
    }
    if (c.peer === null) {
      if (msg.type === 'hello') return this.onHello(c, msg);
      return this.refuse(c, ErrorCode.HandshakeFailed, `${msg.type} before the handshake: answer the helloChallenge with a hello first`);
    }
    if (msg.type === 'hello' || msg.type === 'helloChallenge') return this.refuse(c, ErrorCode.HandshakeFailed, `${msg.type} after the handshake`);
    this.events.onPeerMessage(c.peer, msg);
  }

  private onHello(c: Conn, hello: HelloMsg): void {
    const { config, self, crypto } = this.opts;
    let problem: string | null = null;
    if (hello.replica === self) problem = `hello claims to be this replica (${self})`;
    else if (c.nonce === null || !bytesEqual(hello.nonce, c.nonce)) problem = 'hello answers a different nonce than the challenge sent';
    else if (!crypto.verify(config.replicas[hello.replica]!.key, helloMessage(config.clusterId, hello.replica, self, hello.nonce), hello.sig)) {
      problem = `hello signature does not verify with replica ${hello.replica}'s configured key`;
    }
    if (problem !== null) {
      this.opts.counters.handshakeFailures++;
      this.opts.counters.reject('peer', ErrorCode.HandshakeFailed);
      this.handshakeLog.run((suppressed) =>
        this.opts.logger.warn({ address: c.address, conn: c.id, claimed: hello.replica, problem, suppressed }, 'peer handshake failed: closing the connection'),
      );
      this.replyError(c, ErrorCode.HandshakeFailed, problem);
      this.closeConn(c, 'transport', CloseCode.HandshakeFailed, 'handshake failed');
      return;
    }
    if (c.handshakeTimer !== null) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = null;
    c.nonce = null;
    c.peer = hello.replica;
    const previous = this.inbound.get(hello.replica);
    this.inbound.set(hello.replica, c);
    this.opts.logger.info({ peer: hello.replica, address: c.address, replacing: previous !== undefined }, 'inbound link from peer authenticated');
    // The newer connection wins: the peer redialled (it restarted, or judged the old link dead).
    if (previous !== undefined) this.closeConn(previous, 'transport', CloseCode.Replaced, 'replaced by a newer connection from the same replica');
    this.events.onPeerAuthenticated(hello.replica);
  }

  private onClientHello(c: Conn, hello: ClientHelloMsg): void {
    const { config, self, crypto } = this.opts;
    // Budgets are spent before the key is parsed or the signature checked: that is the work they bound.
    const nowUs = performance.now() * 1000;
    const budget = this.handshakeBudget(c.address, nowUs);
    if (!budget.handshakes.take(1, nowUs)) return this.throttleHandshake(c, budget.handshakes, nowUs, 'handshakes from this address');
    if (!this.clientKeys.has(hello.key)) {
      // The shared budget is looked at first, so that an address refused for others' keys keeps its own.
      if (this.freshKeysAll.available(nowUs) < 1) return this.throttleHandshake(c, this.freshKeysAll, nowUs, 'new client keys from all addresses');
      if (!budget.freshKeys.take(1, nowUs)) return this.throttleHandshake(c, budget.freshKeys, nowUs, 'new client keys from this address');
      this.freshKeysAll.take(1, nowUs);
    }
    const identity = checkClientHello(config, this.clientKeys, self, c.nonce!, hello, crypto);
    if (typeof identity === 'string') {
      this.opts.counters.handshakeFailures++;
      this.opts.counters.reject('client', ErrorCode.HandshakeFailed);
      this.handshakeLog.run((suppressed) =>
        this.opts.logger.warn({ address: c.address, conn: c.id, problem: identity, suppressed }, 'client handshake failed: closing the connection'),
      );
      this.replyError(c, ErrorCode.HandshakeFailed, identity);
      this.closeConn(c, 'transport', CloseCode.HandshakeFailed, 'handshake failed');
      return;
    }
    if (c.handshakeTimer !== null) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = null;
    c.nonce = null;
    c.client = identity;
    this.events.onClientAuthenticated(c.id, identity, c.address);
  }

  /** `address`'s handshake budgets, made full if it has none (or was forgotten). */
  private handshakeBudget(address: string, nowUs: number): AddressHandshakeBudget {
    let budget = this.handshakeBudgets.get(address);
    if (budget === undefined) {
      const { clientHandshakesPerAddressPerSecond: rate, maxConnectionsPerAddress: burst, freshClientKeysPerAddressPerSecond: freshRate, freshClientKeysBurst: freshBurst } = this.opts.limits;
      budget = { handshakes: new TokenBucket(rate, Math.max(rate, burst), nowUs), freshKeys: new TokenBucket(freshRate, Math.max(freshRate, freshBurst), nowUs) };
      if (this.handshakeBudgets.size >= MAX_HANDSHAKE_BUDGET_ADDRESSES) this.handshakeBudgets.delete(this.handshakeBudgets.keys().next().value as string);
    } else {
      this.handshakeBudgets.delete(address); // most recently seen last
    }
    this.handshakeBudgets.set(address, budget);
    return budget;
  }

  /** A hello past `spent`, one of the handshake budgets (its address's, or the one all addresses
   *  share for new keys): refused OVERLOADED unchecked, the connection closed, and the address
   *  refused at the upgrade until that budget has one again. */
  private throttleHandshake(c: Conn, spent: TokenBucket, nowUs: number, what: string): void {
    this.opts.counters.handshakesThrottled++;
    this.opts.counters.reject('client', ErrorCode.Overloaded);
    this.handshakeLog.run((suppressed) =>
      this.opts.logger.warn({ address: c.address, conn: c.id, suppressed }, `client handshake refused: over the budget of ${what} per second`),
    );
    this.replyError(c, ErrorCode.Overloaded, `too many ${what} in the last seconds: reconnect later`);
    this.closeConn(c, 'transport', CloseCode.HandshakeThrottled, 'handshakes throttled');
    this.refuseAddressFor(c.address, spent.usUntil(1, nowUs) / 1000);
  }

  private onErrorNotice(c: Conn, code: string, message: string): void {
    // Never answered (two sides answering each other's errors would loop), never delivered.
    this.opts.counters.errorNoticesReceived++;
    c.badInputLog.run((suppressed) =>
      this.opts.logger.warn({ link: c.kind, conn: c.id, peer: c.peer, address: c.address, code, message, suppressed }, 'received an error notice'),
    );
  }

  /** A frame we will not deliver: count it, log it (throttled), answer it (rate limited). */
  private refuse(c: Conn, code: ErrorCode, message: string): void {
    this.opts.counters.reject(c.kind, code);
    this.logBadInput(c, code, message);
    this.replyError(c, code, message);
  }

  private logBadInput(c: Conn, code: ErrorCode, message: string): void {
    c.badInputLog.run((suppressed) =>
      this.opts.logger.warn({ link: c.kind, conn: c.id, peer: c.peer, address: c.address, code, reason: message, suppressed }, 'refused a frame'),
    );
  }

  private replyError(c: Conn, code: ErrorCode, message: string): void {
    const now = Date.now();
    if (now - c.errorWindowStartMs >= 1000) {
      c.errorWindowStartMs = now;
      c.errorsInWindow = 0;
    }
    if (++c.errorsInWindow > ERROR_REPLIES_PER_SECOND) {
      this.opts.counters.errorRepliesSuppressed++;
      return;
    }
    this.send(c, encodeMessage({ type: 'error', code, message }));
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /** Sends or queues one frame; false if the connection is gone (or was just closed for overflow). */
  private send(c: Conn, frame: Uint8Array): boolean {
    const socket = c.socket;
    if (!c.open || socket === null) return false;
    if (c.queue.length === 0 && socket.bufferedBytes() < SERVER_SEND_HIGH_WATER_BYTES && socket.send(frame)) {
      this.opts.counters.frameOut(c.kind, frame.length);
      return true;
    }
    // Peer-port connections share the client bound: on them we only send our challenge and error replies.
    if (c.queue.length > 0 && c.queue.bytes + frame.length > this.opts.limits.clientQueueMaxBytes) {
      const dropped = c.queue.length + 1;
      this.opts.counters.dropped(c.kind, dropped);
      this.opts.logger.error(
        { link: c.kind, conn: c.id, address: c.address, droppedFrames: dropped, queuedBytes: c.queue.bytes, limit: this.opts.limits.clientQueueMaxBytes },
        'send queue overflow: the other side is not reading; dropped its queue and closed the connection',
      );
      this.closeConn(c, 'transport', CloseCode.QueueOverflow, 'send queue overflow');
      return false;
    }
    c.queue.push(frame);
    if (c.kind === 'client') this.clientQueueChanged(frame.length);
    return true;
  }

  /** Moves queued frames into the library while it is below its mark (on drain). */
  private pump(c: Conn): void {
    const socket = c.socket;
    if (!c.open || socket === null) return;
    let moved = 0;
    while (c.queue.length > 0 && socket.bufferedBytes() < SERVER_SEND_HIGH_WATER_BYTES) {
      const frame = c.queue.peek()!;
      if (!socket.send(frame)) break;
      c.queue.shift();
      moved += frame.length;
      this.opts.counters.frameOut(c.kind, frame.length);
    }
    if (moved > 0 && c.kind === 'client') this.clientQueueChanged(-moved);
  }

  private clientQueueChanged(delta: number): void {
    this.clientQueuedBytes += delta;
    this.opts.counters.clientQueue(this.clientQueuedBytes);
  }

  hasClient(conn: number): boolean {
    return this.clients.get(conn)?.open === true;
  }

  sendToClient(conn: number, frame: Uint8Array): boolean {
    const c = this.clients.get(conn);
    return c !== undefined && this.send(c, frame);
  }

  /** Closes a client link the embedder judged faulty, and refuses new client connections from its
   *  address for a moment (limits.shedCooldownMs, SHED_ADDRESS_COOLDOWN_MS by default).
   *  onClientClosed follows (from a microtask), as for a link the transport closed. Once per link:
   *  a link already closing is left alone. */
  shedClient(conn: number, reason: string): void {
    const c = this.clients.get(conn);
    if (c === undefined || !c.open || c.closer !== 'remote') return;
    this.opts.counters.clientsShed++;
    this.refuseAddressFor(c.address, this.opts.limits.shedCooldownMs);
    this.shedLog.run((suppressed) => this.opts.logger.warn({ conn, address: c.address, reason, suppressed }, 'shed a faulty client connection'));
    this.replyError(c, ErrorCode.Overloaded, `connection shed: ${reason}`);
    this.closeConn(c, 'transport', CloseCode.Shed, 'shed');
  }

  /** Refuses new client connections from `address` at the upgrade for `ms` (or longer if it
   *  already was). */
  private refuseAddressFor(address: string, ms: number): void {
    const until = Math.max(performance.now() + ms, this.refusedUntilMs.get(address) ?? 0);
    this.refusedUntilMs.delete(address);
    if (this.refusedUntilMs.size >= MAX_HANDSHAKE_BUDGET_ADDRESSES) this.refusedUntilMs.delete(this.refusedUntilMs.keys().next().value as string);
    this.refusedUntilMs.set(address, until);
  }

  private refusedForNow(address: string): boolean {
    const until = this.refusedUntilMs.get(address);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    this.refusedUntilMs.delete(address);
    return false;
  }

  /** Closes a client link at the embedder's request; onClientClosed is not called for it. */
  closeClient(conn: number): void {
    const c = this.clients.get(conn);
    if (c === undefined) return;
    if (c.queue.length > 0) this.opts.logger.debug({ conn, frames: c.queue.length }, 'closing a client link with frames still queued');
    this.closeConn(c, 'caller', CloseCode.ClosedByReplica, 'closed by the replica');
  }

  // ---------------------------------------------------------------------------------------------
  // Status and shutdown

  inboundPeers(): ReplicaId[] {
    return [...this.inbound.keys()].sort((a, b) => a - b);
  }

  clientCount(): number {
    return this.clients.size;
  }

  queuedClientBytes(): number {
    return this.clientQueuedBytes;
  }

  /** Stops listening and closes every accepted connection (close frames first, then cut). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.servers) s.close();
    this.servers.length = 0;
    for (const c of [...this.conns]) this.closeConn(c, 'shutdown', CloseCode.GoingAway, 'replica shutting down');
    if (this.conns.size === 0) return;
    // uWS closes at once; `ws` waits for the other side's close frame. Give it a moment, then cut.
    await new Promise<void>((resolve) => {
      const deadline = Date.now() + CLOSE_HANDSHAKE_TIMEOUT_MS;
      const poll = setInterval(() => {
        if (this.conns.size > 0 && Date.now() < deadline) return;
        clearInterval(poll);
        for (const c of [...this.conns]) c.socket?.destroy();
        resolve();
      }, 10);
    });
  }
}
