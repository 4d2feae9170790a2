/**
 * The replica's network layer (DESIGN.md "Wire, limits and bad input"), independent of the
 * protocol cores: authenticated replica-to-replica links and client links over WebSockets (each
 * client link proves a client key first), with bounded queues and backpressure.
 *
 * - Replica i dials every other replica's peer port once (peerLinks.ts) and sends to it over that
 *   link; it receives from replica j on its own listener, over the link j dialled (listener.ts),
 *   once j has answered a signed challenge. So `from` in onPeerMessage is always authenticated.
 * - Clients connect to the client port; each connection gets a ClientConnId and a challenge, and
 *   is delivered (onClientAuthenticated, then its messages) once it answered with a valid
 *   clientHello: the key it proved is its identity.
 * - Every frame is decoded and validated before a handler sees it; bad input is answered with an
 *   `error` notice and counted, never thrown.
 * - Frames are never dropped silently: the only loss is a peer or client queue passing its limit,
 *   which is logged at error level and counted (limits.ts), plus, as on any TCP link, frames the
 *   kernel had accepted when a connection broke (the cores retry).
 *
 * With a certificate (TransportOptions.tls) both ports serve wss://, and when the cluster config
 * says TLS (config.tls) links to peers dial wss:// and verify the peer's certificate against the
 * cluster's CA: TLS adds confidentiality (commands are not seen on the path before they are
 * ordered); the signed handshake still decides who a peer is.
 *
 * Handlers are called from network events, never from inside a Transport method, so a core is
 * never re-entered. A handler that throws is a bug in the core: it propagates (crash loudly).
 */
import type { Logger } from 'pino';
import { assert } from '../../common/assert.js';
import { bytesEqual } from '../../common/bytes.js';
import { encodeMessage } from '../../common/codec.js';
import type { ClusterConfig } from '../../common/config.js';
import type { CryptoBackend, Signer } from '../../common/crypto/types.js';
import type { ReplicaId } from '../../common/ids.js';
import type { Message } from '../../common/messages.js';
import type { ClientIdentity } from '../../ordering/clientKeys.js';
import { chooseServerBackend, fallbackWarning, type ServerBackendChoice } from './backendChoice.js';
import { resolveLimits, type TransportLimits } from './limits.js';
import { Listener } from './listener.js';
import type { TransportMetrics } from './metrics.js';
import { PeerLink } from './peerLinks.js';
import type { ServerBackend, ServerTls } from './serverBackend.js';
import { TransportCounters, type TransportStats } from './stats.js';

export type { TransportLimits } from './limits.js';
export type { LinkKind, TransportMetrics } from './metrics.js';
export type { PeerLinkStats, TransportStats } from './stats.js';

/** A client connection on this replica's client port; ids are never reused within a Transport. */
export type ClientConnId = number;

/** What serves this replica's ports, for /status, metrics and the logs. */
export interface ServerInfo {
  readonly backend: ServerBackend['name'];
  readonly tls: boolean;
  /** Why `auto` fell back to `ws` (each uWS build's failure); null otherwise. */
  readonly fallbackReason: string | null;
}

export interface TransportHandlers {
  /** Decoded and validated, from an authenticated peer link; `from` is that peer. */
  onPeerMessage(from: ReplicaId, msg: Message): void;
  /** A client link proved it holds this key (before any of its messages; once per link). */
  onClientAuthenticated(conn: ClientConnId, identity: ClientIdentity, address: string): void;
  /** From an authenticated client link. Peer-only types never arrive here. */
  onClientMessage(conn: ClientConnId, msg: Message): void;
  /** A client link closed by the client, the network, or the transport (queue overflow); not after closeClient(). */
  onClientClosed(conn: ClientConnId): void;
  /** Our link to `peer` came up (handshake answered) or went down. */
  onPeerStatus?(peer: ReplicaId, up: boolean): void;
}

export interface TransportOptions {
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  /** Signs this replica's hello; its public key must be replica `self`'s key in the config. */
  readonly signer: Signer;
  /** Verifies peers' hellos; the backend the config's keys were parsed with. */
  readonly crypto: CryptoBackend;
  readonly logger: Logger;
  readonly metrics?: TransportMetrics;
  /** Which server library serves the ports (backendChoice.ts). Default: auto. */
  readonly serverBackend?: ServerBackendChoice;
  /** This replica's certificate: serve wss://. Required when the config says TLS. */
  readonly tls?: ServerTls;
  /** Address to listen on. Default: this replica's host from the config. */
  readonly bindHost?: string;
  /** Overrides of the named limits (tests, operators). */
  readonly limits?: Partial<TransportLimits>;
}

type Phase = 'new' | 'starting' | 'running' | 'closed';

export class Transport {
  private readonly limits: TransportLimits;
  private readonly counters: TransportCounters;
  /** links[i]: our link to replica i; null for ourselves. */
  private readonly links: (PeerLink | null)[];
  private readonly logger: Logger;
  private listener: Listener | null = null;
  private phase: Phase = 'new';
  private starting: Promise<void> | null = null;
  private server: ServerInfo | null = null;

  constructor(
    private readonly opts: TransportOptions,
    private readonly handlers: TransportHandlers,
  ) {
    const { config, self, signer } = opts;
    if (!(Number.isSafeInteger(self) && self >= 0 && self < config.n)) throw new RangeError(`self must be a replica id below ${config.n}, got ${self}`);
    if (!bytesEqual(signer.publicKey, config.replicas[self]!.publicKey)) {
      // Peers would refuse every hello we send: a wrong key file for this replica id.
      throw new Error(`the signing key does not match replica ${self}'s public key in the cluster config`);
    }
    // Peers would dial wss:// and fail every TLS handshake against a plain port.
    if (config.tls !== undefined && opts.tls === undefined) throw new Error('the cluster config says TLS but no certificate was given for this replica');
    this.limits = resolveLimits(opts.limits);
    this.counters = new TransportCounters(opts.metrics);
    this.logger = opts.logger.child({ component: 'transport' });
    const context = {
      self,
      clusterId: config.clusterId,
      replicaCount: config.n,
      signer,
      logger: this.logger,
      limits: this.limits,
      counters: this.counters,
      tls: config.tls ?? null,
      onStatus: (peer: ReplicaId, up: boolean) => this.handlers.onPeerStatus?.(peer, up),
    };
    this.links = config.replicas.map((r) => (r.id === self ? null : new PeerLink(context, r)));
  }

  /**
   * Chooses the server library (rejects with UwsUnavailableError if uWS was required and none
   * loads), listens on this replica's peer and client ports, and starts dialling the other
   * replicas. Rejects with ListenError if a port cannot be bound.
   */
  start(): Promise<void> {
    assert(this.phase === 'new', `Transport.start() called in phase ${this.phase}`);
    this.phase = 'starting';
    this.starting = this.startListening();
    return this.starting;
  }

  private async startListening(): Promise<void> {
    const { config, self } = this.opts;
    const { backend, fallbackReason } = chooseServerBackend(this.opts.serverBackend ?? 'auto');
    if (fallbackReason !== null) this.logger.warn({ server: backend.name, reason: fallbackReason }, fallbackWarning(fallbackReason));
    this.server = { backend: backend.name, tls: this.opts.tls !== undefined, fallbackReason };
    this.opts.metrics?.server(backend.name, this.server.tls);
    const me = config.replicas[self]!;
    const listener = new Listener(
      {
        config,
        self,
        crypto: this.opts.crypto,
        logger: this.logger,
        limits: this.limits,
        counters: this.counters,
        backend,
        bindHost: this.opts.bindHost ?? me.host,
        tls: this.opts.tls ?? null,
      },
      {
        onPeerMessage: (from, msg) => this.handlers.onPeerMessage(from, msg),
        // Its own link proves the peer is back: dial it now rather than when our backoff ends
        // (up to RECONNECT_MAX_MS later, during which it hears nothing from us and cannot catch up).
        onPeerAuthenticated: (peer) => this.links[peer]?.redialNow(),
        onClientAuthenticated: (conn, identity, address) => this.handlers.onClientAuthenticated(conn, identity, address),
        onClientMessage: (conn, msg) => this.handlers.onClientMessage(conn, msg),
        onClientClosed: (conn) => this.handlers.onClientClosed(conn),
      },
    );
    await listener.start();
    this.listener = listener; // if close() was called meanwhile, it closes the listener next
    if (this.phase !== 'starting') return;
    this.phase = 'running';
    this.logger.info({ replica: self, peerPort: me.peerPort, clientPort: me.clientPort, server: backend.name, tls: this.server.tls }, 'transport listening');
    for (const link of this.links) link?.start();
  }

  /** Queues `msg` for replica `to` (never ourselves). Sent once the link is up; see limits.ts for the bound. */
  sendToPeer(to: ReplicaId, msg: Message): void {
    this.link(to).send(encodeMessage(msg));
  }

  /** Encodes `msg` once and queues the same frame for every other replica. */
  broadcastToPeers(msg: Message): void {
    const frame = encodeMessage(msg);
    for (const link of this.links) link?.send(frame);
  }

  /** Sends (or queues) `msg` on a client link; false if that connection is gone. */
  sendToClient(conn: ClientConnId, msg: Message): boolean {
    const listener = this.listener;
    if (listener === null || !listener.hasClient(conn)) return false;
    return listener.sendToClient(conn, encodeMessage(msg));
  }

  /** Closes a client link judged faulty and refuses its address for a moment (Listener.shedClient);
   *  onClientClosed follows. */
  shedClient(conn: ClientConnId, reason: string): void {
    this.listener?.shedClient(conn, reason);
  }

  /** Closes a client link; onClientClosed is not called for it. */
  closeClient(conn: ClientConnId): void {
    this.listener?.closeClient(conn);
  }

  /** Bytes waiting for replica `to` (queued, or handed to the socket and not yet written). */
  peerBacklogBytes(to: ReplicaId): number {
    return this.link(to).backlogBytes;
  }

  /** Replicas whose link from us is up (their handshake answered), in id order. */
  peersUp(): ReplicaId[] {
    const up: ReplicaId[] = [];
    for (const link of this.links) if (link?.up === true) up.push(link.peer.id);
    return up;
  }

  /** What serves the ports; null before start() has chosen. */
  serverInfo(): ServerInfo | null {
    return this.server;
  }

  stats(): TransportStats {
    const c = this.counters;
    return {
      peer: { ...c.traffic.peer },
      client: { ...c.traffic.client },
      rejectedFrames: { ...c.rejected },
      errorRepliesSuppressed: c.errorRepliesSuppressed,
      errorNoticesReceived: c.errorNoticesReceived,
      connectionsRefused: c.connectionsRefused,
      handshakeFailures: c.handshakeFailures,
      handshakesThrottled: c.handshakesThrottled,
      clientsShed: c.clientsShed,
      droppedFrames: c.droppedFrames,
      shedFrames: c.shedFrames,
      reconnects: c.reconnects,
      peers: this.links.filter((l): l is PeerLink => l !== null).map((l) => l.stats()),
      inboundPeers: this.listener?.inboundPeers() ?? [],
      clientConnections: this.listener?.clientCount() ?? 0,
      clientQueuedBytes: this.listener?.queuedClientBytes() ?? 0,
    };
  }

  /**
   * Stops listening and closes every client and inbound link, then gives our links to peers up to
   * limits.closeFlushTimeoutMs to write what they hold, and closes them. Resolves when every socket
   * is closed and every timer cleared. Idempotent.
   */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    await this.starting?.catch(() => undefined); // a failed start has already released its ports
    await this.listener?.close();
    await Promise.all(this.links.map((l) => l?.close(this.limits.closeFlushTimeoutMs)));
  }

  private link(to: ReplicaId): PeerLink {
    const link = this.links[to];
    assert(link !== undefined && link !== null, `no peer link to ${to} (replica ids are 0..${this.opts.config.n - 1}, self is ${this.opts.self})`);
    return link;
  }
}
