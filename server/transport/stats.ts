/**
 * The transport's own counters (what stats() returns), forwarding each event to the optional
 * TransportMetrics so that the two never disagree.
 */
import type { ReplicaId } from '../../common/ids.js';
import type { LinkKind, TransportMetrics } from './metrics.js';

export interface TrafficStats {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
}

export type PeerLinkState = 'idle' | 'connecting' | 'handshaking' | 'up' | 'closed';

/** One dialled link (our outgoing connection to a peer, over which we send to it). */
export interface PeerLinkStats {
  readonly peer: ReplicaId;
  readonly state: PeerLinkState;
  /** Frames and bytes waiting in our queue (not yet handed to the socket). */
  readonly queuedFrames: number;
  readonly queuedBytes: number;
  /** Bytes handed to the socket but not yet written to the kernel. */
  readonly inflightBytes: number;
  readonly connectAttempts: number;
  readonly reconnects: number;
  readonly droppedFrames: number;
  /** Frames shed while the peer was unreachable (limits.ts PEER_DOWN_QUEUE_MAX_BYTES). */
  readonly shedFrames: number;
}

export interface TransportStats {
  readonly peer: Readonly<TrafficStats>;
  readonly client: Readonly<TrafficStats>;
  /** Received frames refused with an error (or a cut connection), by ErrorCode. */
  readonly rejectedFrames: Readonly<Record<string, number>>;
  /** Error replies not sent because a connection exceeded ERROR_REPLIES_PER_SECOND. */
  readonly errorRepliesSuppressed: number;
  /** `error` notices received from the other side (a peer or client refusing our frames). */
  readonly errorNoticesReceived: number;
  /** Connections refused by the per-address cap. */
  readonly connectionsRefused: number;
  /** Peer-port connections that failed to authenticate (bad hello or no hello in time). */
  readonly handshakeFailures: number;
  /** Client hellos refused unchecked: over a handshake budget (their address's, or the new-key budget all addresses share). */
  readonly handshakesThrottled: number;
  /** Client connections shed as faulty (Transport.shedClient). */
  readonly clientsShed: number;
  /** Outgoing frames discarded by queue overflow (peer and client links). */
  readonly droppedFrames: number;
  /** Frames for unreachable peers shed beyond their down backlog. */
  readonly shedFrames: number;
  /** Dialled links that came back up after having been up. */
  readonly reconnects: number;
  readonly peers: readonly PeerLinkStats[];
  /** Replicas with an authenticated connection to our peer port. */
  readonly inboundPeers: readonly ReplicaId[];
  readonly clientConnections: number;
  readonly clientQueuedBytes: number;
}

const traffic = (): TrafficStats => ({ framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0 });

export class TransportCounters {
  readonly traffic: Record<LinkKind, TrafficStats> = { peer: traffic(), client: traffic() };
  readonly rejected: Record<string, number> = {};
  errorRepliesSuppressed = 0;
  errorNoticesReceived = 0;
  connectionsRefused = 0;
  handshakeFailures = 0;
  handshakesThrottled = 0;
  clientsShed = 0;
  droppedFrames = 0;
  shedFrames = 0;
  reconnects = 0;

  constructor(private readonly metrics: TransportMetrics | undefined) {}

  frameIn(link: LinkKind, bytes: number): void {
    const t = this.traffic[link];
    t.framesIn++;
    t.bytesIn += bytes;
    this.metrics?.frameReceived(link, bytes);
  }

  frameOut(link: LinkKind, bytes: number): void {
    const t = this.traffic[link];
    t.framesOut++;
    t.bytesOut += bytes;
    this.metrics?.frameSent(link, bytes);
  }

  reject(link: LinkKind, code: string): void {
    this.rejected[code] = (this.rejected[code] ?? 0) + 1;
    this.metrics?.frameRejected(link, code);
  }

  shed(peer: ReplicaId, frames: number): void {
    this.shedFrames += frames;
    this.metrics?.framesShed(peer, frames);
  }

  dropped(link: LinkKind, frames: number): void {
    this.droppedFrames += frames;
    this.metrics?.framesDropped(link, frames);
  }

  refused(link: LinkKind): void {
    this.connectionsRefused++;
    this.metrics?.connectionRefused(link);
  }

  reconnected(peer: ReplicaId): void {
    this.reconnects++;
    this.metrics?.reconnected(peer);
  }

  peerQueue(peer: ReplicaId, bytes: number): void {
    this.metrics?.peerQueueBytes(peer, bytes);
  }

  clientQueue(bytes: number): void {
    this.metrics?.clientQueueBytes(bytes);
  }

  peerUp(peer: ReplicaId, up: boolean): void {
    this.metrics?.peerUp(peer, up);
  }
}
