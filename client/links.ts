/**
 * One socket to every replica's client port, kept up: reconnects with capped exponential backoff
 * and jitter, and on every (re)connect proves the client's key: the replica sends a challenge
 * (helloChallenge with a fresh nonce) and the client answers with its key and a signature over
 * (cluster id, replica, nonce) (clientHello). A link is up once that answer is sent; the replica
 * then sends this connection the Executed notices of this key's batches, and of no one else's.
 * Frames are decoded and validated here (common/codec) and handed on as typed messages with the
 * sending replica. Sending never throws: a frame for a replica that is down is dropped and
 * counted, and the protocol above re-sends (the collector retries replicas that have not
 * answered; a thin client fails over).
 */
import { decodeMessage, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { Signer } from '../common/crypto/types.js';
import { ErrorCode } from '../common/errors.js';
import type { ReplicaId } from '../common/ids.js';
import type { HelloChallengeMsg, Message } from '../common/messages.js';
import { answerClientChallenge } from '../ordering/clientKeys.js';
import { replicaUrl, type ClientSocket, type SocketFactory } from './transport.js';

/** First reconnect delay: a replica restarting on the same machine is back within ~100 ms. */
export const DEFAULT_RECONNECT_INITIAL_MS = 100;
/** Backoff cap: a replica that is down for long costs each client one refused connect every
 *  0.5–1 s, and one back from a restart has its clients again within a second. Until they are
 *  back it must fetch every batch it is asked to vote on instead of receiving it, which slowed its
 *  catch-up: with 5 s, clients came back 2–5 s after the replica did (crash soak, peak load). */
export const DEFAULT_RECONNECT_MAX_MS = 1_000;

/** Messages a replica may send on a client link; anything else is counted and ignored. */
const CLIENT_BOUND_TYPES: ReadonlySet<Message['type']> = new Set<Message['type']>([
  'tsReply',
  'ack',
  'refused',
  'executed',
  'commandOrdered',
  'commandExecuted',
  'error',
]);
/** What a replica may send before the link is authenticated. */
const PRE_AUTH_TYPES: ReadonlySet<Message['type']> = new Set<Message['type']>(['helloChallenge', 'error']);

export interface ReplicaLinksOptions {
  readonly config: ClusterConfig;
  readonly transport: SocketFactory;
  /** The client's key: it answers every replica's challenge with it. */
  readonly signer: Signer;
  /** A valid message from a replica. */
  readonly onMessage: (from: ReplicaId, msg: Message) => void;
  /** A link came up or went down. */
  readonly onLinkChange?: (replica: ReplicaId, up: boolean) => void;
  readonly reconnectInitialMs?: number;
  readonly reconnectMaxMs?: number;
  /** Jitter source in [0, 1); injectable for tests. */
  readonly random?: () => number;
}

export interface LinkStats {
  connects: number;
  disconnects: number;
  /** Frames not sent because the replica's link was down. */
  droppedFrames: number;
  /** Frames from a replica that did not decode, or were not meant for a client. */
  badFrames: number;
  /** `error` notices replicas sent us, by code. */
  serverErrors: Record<string, number>;
  lastServerError: string;
}

/** Why a link is not up: `notAllowed` once the replica refused this client's key. */
export type LinkRefusal = 'notAllowed';

interface Link {
  readonly replica: ReplicaId;
  readonly url: string;
  socket: ClientSocket | null;
  /** The socket is open and this client answered the replica's challenge. */
  up: boolean;
  /** The replica refused the key (NOT_ALLOWED), most recently. */
  refused: boolean;
  /** The first connection attempt has ended (open or failed). */
  tried: boolean;
  backoffMs: number;
  timer: ReturnType<typeof setTimeout> | null;
}

export class ReplicaLinks {
  private readonly links: Link[];
  private closed = false;
  private upCount = 0;
  private readonly waiters: { ready: () => boolean; resolve: () => void }[] = [];
  readonly stats: LinkStats = { connects: 0, disconnects: 0, droppedFrames: 0, badFrames: 0, serverErrors: {}, lastServerError: '' };

  constructor(private readonly opts: ReplicaLinksOptions) {
    this.links = opts.config.replicas.map((r) => ({
      replica: r.id,
      url: replicaUrl(r.host, r.clientPort, opts.config.tls !== undefined),
      socket: null,
      up: false,
      refused: false,
      tried: false,
      backoffMs: opts.reconnectInitialMs ?? DEFAULT_RECONNECT_INITIAL_MS,
      timer: null,
    }));
    for (const link of this.links) this.open(link);
  }

  get connected(): number {
    return this.upCount;
  }

  isUp(replica: number): boolean {
    return this.links[replica]?.up === true;
  }

  /** Resolves once at least `count` links are up (at once if they are). */
  whenConnected(count: number): Promise<void> {
    return this.when(() => this.upCount >= count);
  }

  /** Replicas that refused this client's key. */
  get refusedBy(): number {
    return this.links.filter((l) => l.refused).length;
  }

  /** Resolves once at least `count` replicas refused this client's key. */
  whenRefused(count: number): Promise<void> {
    return this.when(() => this.refusedBy >= count);
  }

  /** Resolves once `replica`'s link is up, or its first attempt failed while another link is up. */
  whenPreferredOrAny(replica: number): Promise<void> {
    return this.when(() => this.links[replica]?.up === true || (this.links[replica]?.tried !== false && this.upCount > 0));
  }

  private when(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ ready, resolve }));
  }

  private wakeWaiters(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.ready()) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Sends one encoded frame to one replica; false (and counted) if its link is down. */
  send(replica: number, frame: Uint8Array): boolean {
    const link = this.links[replica];
    if (link === undefined || !link.up) {
      this.stats.droppedFrames++;
      return false;
    }
    link.socket!.send(frame);
    return true;
  }

  /** Sends one encoded frame to every replica (encoded once by the caller). */
  sendAll(frame: Uint8Array): void {
    for (const link of this.links) this.send(link.replica, frame);
  }

  /** The largest send queue among the links, for backpressure. */
  maxBufferedBytes(): number {
    let max = 0;
    for (const link of this.links) if (link.up) max = Math.max(max, link.socket!.bufferedAmount);
    return max;
  }

  /** Closes every socket and cancels every reconnect; nothing is left running. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.links) {
      if (link.timer !== null) clearTimeout(link.timer);
      link.timer = null;
      link.socket?.close();
      link.socket = null;
      link.up = false;
    }
    this.upCount = 0;
  }

  private open(link: Link): void {
    if (this.closed) return;
    link.socket = this.opts.transport(
      link.url,
      {
        onOpen: () => this.onOpen(link),
        onMessage: (frame) => this.onFrame(link, frame),
        onClose: () => this.onClose(link),
      },
      this.opts.config.tls,
    );
  }

  /** The socket is open: the replica's challenge comes next. */
  private onOpen(link: Link): void {
    if (this.closed) return;
    link.tried = true;
    link.backoffMs = this.opts.reconnectInitialMs ?? DEFAULT_RECONNECT_INITIAL_MS;
  }

  /** Answers the replica's challenge with this client's key; the link is up from then on (the
   *  replica reads our frames in order, so it has the answer before anything we send next). */
  private onChallenge(link: Link, challenge: HelloChallengeMsg): void {
    if (link.up || challenge.replica !== link.replica) {
      this.stats.badFrames++;
      return;
    }
    link.socket!.send(encodeMessage(answerClientChallenge(this.opts.config.clusterId, this.opts.signer, link.replica, challenge.nonce)));
    link.up = true;
    link.refused = false;
    this.upCount++;
    this.stats.connects++;
    this.opts.onLinkChange?.(link.replica, true);
    this.wakeWaiters();
  }

  private onFrame(link: Link, frame: Uint8Array): void {
    if (this.closed) return;
    const decoded = decodeMessage(frame, { replicaCount: this.opts.config.n });
    if (!decoded.ok || !(link.up ? CLIENT_BOUND_TYPES : PRE_AUTH_TYPES).has(decoded.value.type)) {
      this.stats.badFrames++;
      return;
    }
    const msg = decoded.value;
    if (msg.type === 'helloChallenge') return this.onChallenge(link, msg);
    if (msg.type === 'error') {
      this.stats.serverErrors[msg.code] = (this.stats.serverErrors[msg.code] ?? 0) + 1;
      this.stats.lastServerError = `replica ${link.replica}: ${msg.code}: ${msg.message}`;
      if (msg.code === ErrorCode.NotAllowed && !link.refused) {
        link.refused = true;
        this.wakeWaiters();
      }
    }
    this.opts.onMessage(link.replica, msg);
  }

  private onClose(link: Link): void {
    if (this.closed) return;
    if (link.up) {
      link.up = false;
      this.upCount--;
      this.stats.disconnects++;
      this.opts.onLinkChange?.(link.replica, false);
    }
    link.socket = null;
    if (!link.tried) {
      link.tried = true;
      this.wakeWaiters();
    }
    const maxMs = this.opts.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS;
    // Full jitter on the upper half: clients that lost a replica together do not redial in step.
    const delay = link.backoffMs * (0.5 + 0.5 * (this.opts.random ?? Math.random)());
    link.backoffMs = Math.min(link.backoffMs * 2, maxMs);
    link.timer = setTimeout(() => {
      link.timer = null;
      this.open(link);
    }, delay);
  }
}
