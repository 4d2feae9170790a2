/**
 * What the transport reports to a metrics system, and its prom-client implementation. The
 * transport calls these on its hot path, so the implementation resolves every labelled child once
 * and each call is a few additions.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReplicaId } from '../../common/ids.js';

/** Which port a connection belongs to: replica-to-replica or client. */
export type LinkKind = 'peer' | 'client';

export interface TransportMetrics {
  frameReceived(link: LinkKind, bytes: number): void;
  frameSent(link: LinkKind, bytes: number): void;
  /** A received frame that was answered with an error (or cut off) instead of being delivered. */
  frameRejected(link: LinkKind, code: string): void;
  /** Frames discarded because a send queue overflowed (the transport's only loss). */
  framesDropped(link: LinkKind, frames: number): void;
  /** Frames for an unreachable peer shed beyond its down backlog (it catches up from stores). */
  framesShed(peer: ReplicaId, frames: number): void;
  /** A connection refused before it was accepted (per-address cap). */
  connectionRefused(link: LinkKind): void;
  /** A dialled link to `peer` came back up after having been up before. */
  reconnected(peer: ReplicaId): void;
  /** Bytes waiting for `peer` (queued plus handed to the socket but not yet written). */
  peerQueueBytes(peer: ReplicaId, bytes: number): void;
  /** Bytes queued for all clients together. */
  clientQueueBytes(bytes: number): void;
  peerUp(peer: ReplicaId, up: boolean): void;
  /** Once at start: the server library serving the ports, and whether they speak TLS. */
  server(backend: 'uws' | 'ws', tls: boolean): void;
}

/** Metrics into a prom-client registry. Names carry their unit (`_bytes`, `_total`). */
export class PromTransportMetrics implements TransportMetrics {
  private readonly framesIn: Counter<'link'>;
  private readonly bytesIn: Counter<'link'>;
  private readonly framesOut: Counter<'link'>;
  private readonly bytesOut: Counter<'link'>;
  private readonly rejected: Counter<'link' | 'code'>;
  private readonly dropped: Counter<'link'>;
  private readonly shed: Counter<'peer'>;
  private readonly refused: Counter<'link'>;
  private readonly reconnects: Counter<'peer'>;
  private readonly peerQueue: Gauge<'peer'>;
  private readonly clientQueue: Gauge;
  private readonly up: Gauge<'peer'>;
  private readonly serverInfo: Gauge<'backend' | 'tls'>;
  /** Labelled children, resolved once each (a label lookup hashes the label values). */
  private readonly peerQueueChildren: Gauge.Internal<'peer'>[] = [];
  private readonly rejectedChildren = new Map<string, Counter.Internal>();
  /** By link kind. */
  private readonly byLink: Record<LinkKind, { framesIn: Counter.Internal; bytesIn: Counter.Internal; framesOut: Counter.Internal; bytesOut: Counter.Internal }>;

  constructor(registry: Registry) {
    const registers = [registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[]): Counter<L> => new Counter({ name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> => new Gauge({ name, help, labelNames, registers });
    this.framesIn = counter('pompe_transport_frames_received_total', 'WebSocket frames received', ['link']);
    this.bytesIn = counter('pompe_transport_bytes_received_total', 'Payload bytes of the frames received', ['link']);
    this.framesOut = counter('pompe_transport_frames_sent_total', 'WebSocket frames written to a socket', ['link']);
    this.bytesOut = counter('pompe_transport_bytes_sent_total', 'Payload bytes of the frames written to a socket', ['link']);
    this.rejected = counter('pompe_transport_frames_rejected_total', 'Received frames refused (bad input), by error code', ['link', 'code']);
    this.dropped = counter('pompe_transport_frames_dropped_total', 'Outgoing frames discarded because a send queue overflowed', ['link']);
    this.shed = counter('pompe_transport_frames_shed_total', 'Frames for an unreachable peer discarded beyond its down backlog (it catches up from its peers on return)', ['peer']);
    this.refused = counter('pompe_transport_connections_refused_total', 'Connections refused by the per-address cap', ['link']);
    this.reconnects = counter('pompe_transport_reconnects_total', 'Times a link to a peer came back up', ['peer']);
    this.peerQueue = gauge('pompe_transport_peer_queue_bytes', 'Bytes waiting to be written to a peer', ['peer']);
    this.clientQueue = new Gauge({ name: 'pompe_transport_client_queue_bytes', help: 'Bytes waiting to be written to clients', registers });
    this.up = gauge('pompe_transport_peer_up', '1 when the link to the peer is up (handshake answered)', ['peer']);
    this.serverInfo = gauge('pompe_transport_server_info', 'Always 1, labelled with the server library serving the ports (uws or ws) and whether they speak TLS', [
      'backend',
      'tls',
    ]);
    const children = (link: LinkKind) => ({
      framesIn: this.framesIn.labels(link),
      bytesIn: this.bytesIn.labels(link),
      framesOut: this.framesOut.labels(link),
      bytesOut: this.bytesOut.labels(link),
    });
    this.byLink = { peer: children('peer'), client: children('client') };
  }

  frameReceived(link: LinkKind, bytes: number): void {
    const c = this.byLink[link];
    c.framesIn.inc();
    c.bytesIn.inc(bytes);
  }

  frameSent(link: LinkKind, bytes: number): void {
    const c = this.byLink[link];
    c.framesOut.inc();
    c.bytesOut.inc(bytes);
  }

  frameRejected(link: LinkKind, code: string): void {
    const key = `${link}/${code}`;
    let child = this.rejectedChildren.get(key);
    if (child === undefined) {
      child = this.rejected.labels(link, code);
      this.rejectedChildren.set(key, child);
    }
    child.inc();
  }

  framesDropped(link: LinkKind, frames: number): void {
    this.dropped.labels(link).inc(frames);
  }

  framesShed(peer: ReplicaId, frames: number): void {
    this.shed.labels(String(peer)).inc(frames);
  }

  connectionRefused(link: LinkKind): void {
    this.refused.labels(link).inc();
  }

  reconnected(peer: ReplicaId): void {
    this.reconnects.labels(String(peer)).inc();
  }

  peerQueueBytes(peer: ReplicaId, bytes: number): void {
    (this.peerQueueChildren[peer] ??= this.peerQueue.labels(String(peer))).set(bytes); // called per frame
  }

  clientQueueBytes(bytes: number): void {
    this.clientQueue.set(bytes);
  }

  peerUp(peer: ReplicaId, up: boolean): void {
    this.up.labels(String(peer)).set(up ? 1 : 0);
  }

  server(backend: 'uws' | 'ws', tls: boolean): void {
    this.serverInfo.labels(backend, String(tls)).set(1);
  }
}
