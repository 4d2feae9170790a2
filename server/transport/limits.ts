/**
 * The transport's named limits (DESIGN.md "Wire, limits and bad input"), each with its reason.
 * TransportLimits gathers the ones a test or an operator may want to change; the rest are fixed.
 */
import { MAX_CONNECTIONS_PER_ADDRESS, MAX_FRAME_BYTES } from '../../common/limits.js';

const MiB = 1024 * 1024;

/**
 * Bytes queued for one peer (not yet written to its socket) before the link is declared stuck: the
 * backlog is dropped (logged at error level and counted: the transport's only loss) and the link is
 * reconnected. 256 MiB holds ten maximal proposals, or several seconds of peak traffic to one
 * peer, so a replica that restarts or stalls for a few seconds loses nothing. Beyond that the
 * backlog is mostly obsolete (the cores retry what still matters), and holding more would push a
 * replica past its memory budget. The worst case is (n − 1) × this limit, reached only when
 * several peers are down or stuck at once while we keep producing at full rate.
 */
export const PEER_QUEUE_MAX_BYTES = 256 * MiB;

/**
 * Bytes kept for a peer while it is unreachable (down, restarting, partitioned away). What it
 * misses meanwhile it fetches on demand when it is back (block sync, batch fetches, its peers'
 * checkpoints), so a backlog for it only has to cover a reconnect of a second or two; beyond this
 * the oldest frames are shed (counted, logged at info: expected while a replica restarts, not the
 * error an overflow on a live link is). Without it, every replica would queue hundreds of MB for a
 * restarting one and then flood it on reconnect (issue 13: ~257 MB each).
 */
export const PEER_DOWN_QUEUE_MAX_BYTES = 16 * MiB;

/**
 * ...and only frames queued within this long: a link back within a second (a dropped connection,
 * a peer that stalled) gets everything, while a peer down for longer has missed views it can no
 * longer vote in, and block sync brings it the chain at a fraction of the cost of replaying them.
 * Without it, a leader back after 9 s down (crash soak, peak load) received ~410 queued proposals,
 * validated each as it advanced view by view (~1 s of CPU) and fetched the batches of ~300 of them
 * to vote, and its execution did not move for 2–3 s: catch-up took 9–11 s instead of 5.
 */
export const PEER_DOWN_QUEUE_MAX_AGE_MS = 1_000;

/**
 * Bytes queued for one client before it is disconnected. A client that stops reading its replies
 * (timestamps, acks, Executed notices of up to 8 MiB) is broken or hostile; 32 MiB holds four
 * maximal Executed notices and hundreds of thousands of small replies. A disconnected client
 * reconnects and its collector retries, so nothing ordered is lost.
 */
export const CLIENT_QUEUE_MAX_BYTES = 32 * MiB;

/**
 * Bytes handed to one outgoing `ws` link but not yet written to the kernel. Enough to keep a fast
 * link busy (10 Gb/s × 5 ms round trip ≈ 6 MB in flight), small enough that the backlog stays in
 * our own queue, where it is counted, bounded and survives a reconnect. A single frame larger
 * than this is still sent when nothing else is in flight.
 */
export const PEER_INFLIGHT_MAX_BYTES = 8 * MiB;

/**
 * Bytes buffered inside the server library for one accepted connection before we hold further
 * frames in our own queue and wait for its drain event: keeps the socket busy while keeping the
 * backlog where we can count and bound it.
 */
export const SERVER_SEND_HIGH_WATER_BYTES = 4 * MiB;

/**
 * How far above MAX_FRAME_BYTES a frame may be and still be answered in-band with a
 * FRAME_TOO_LARGE error (the connection stays up). Beyond it the server library refuses the frame
 * before buffering it and drops the connection (close code 1006), which is also counted. A frame
 * just above the limit is most likely an honest sender with a mismatched limit, and a clear error
 * tells its operator why; the grace costs at most this much extra buffer per connection.
 */
export const OVERSIZE_REPLY_GRACE_BYTES = 1 * MiB;

/** Largest frame the server library accepts: the limit plus the grace above. */
export const SERVER_MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES + OVERSIZE_REPLY_GRACE_BYTES;

/**
 * Largest frame accepted on a connection (peer or client port) before it has authenticated. A hello
 * or clientHello is about 110–140 bytes; anything larger is not one, so it is refused without being
 * copied or decoded.
 */
export const PRE_AUTH_MAX_FRAME_BYTES = 1024;

/**
 * Largest frame an acceptor sends back on a link we dialled: it only sends its challenge and error
 * notices (each under 1.2 KB), so a larger frame there is refused by `ws` before it is buffered.
 */
export const PEER_REVERSE_MAX_FRAME_BYTES = 64 * 1024;

/**
 * Time a new peer-port connection has to authenticate, and a dialled link has to receive its
 * challenge. An honest replica needs one round trip and one signature (well under a millisecond);
 * 10 s tolerates a replica that is starting up or paused by GC, while bounding how long an
 * unauthenticated connection holds one of its address's connection slots.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** TCP connect plus the HTTP upgrade of a dialled link; a peer that takes longer is retried. */
export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Reconnect backoff for dialled links: the n-th consecutive failure waits a uniformly random time
 * in [d/2, d] with d = min(RECONNECT_MAX_MS, RECONNECT_BASE_MS × 2^n). The base lets a cluster that
 * starts in any order form its mesh within a few hundred milliseconds; the cap bounds how long
 * after a peer's return we wait (≤ 2 s) while keeping a down peer's cost at one connect attempt
 * every 1–2 s; the jitter keeps n − 1 replicas from redialling a restarted peer in lockstep.
 */
export const RECONNECT_BASE_MS = 50;
export const RECONNECT_MAX_MS = 2_000;

/**
 * Dialled links send a ping this often and are dropped when no pong has come back for
 * PEER_DEAD_AFTER_MS. The long deadline is deliberate: a pong queues behind all the data we sent,
 * and a receiver working through a large backlog must not look dead; a peer whose host vanished
 * (no FIN, no RST) is still detected within a minute, and its queue moves to a fresh connection.
 */
export const PEER_PING_INTERVAL_MS = 10_000;
export const PEER_DEAD_AFTER_MS = 60_000;

/**
 * Idle timeouts of accepted connections, in seconds (the server library pings idle sockets and
 * closes those that do not answer). Peers are dropped sooner than clients because they redial at
 * once; a client is given the library's usual two minutes.
 */
export const PEER_IDLE_TIMEOUT_S = 32;
export const CLIENT_IDLE_TIMEOUT_S = 120;

/**
 * Error replies sent to one connection per second; further bad frames are still counted, but not
 * answered. An error reply can be larger than the frame it answers (up to ~1.1 KB for a 1-byte
 * frame), so unbounded replies would let a sender amplify traffic against our uplink.
 */
export const ERROR_REPLIES_PER_SECOND = 100;

/**
 * Client handshakes one source address may have checked per second, and the burst it may save up.
 * A handshake with a key not seen before costs ~1 ms (the key's subgroup check and a signature
 * check), so a source that makes a fresh identity per connection gets ~6% of a core at most; the
 * burst is the per-address connection cap (maxConnectionsPerAddress), so that many clients behind
 * one address may connect at once. Beyond it the
 * hello is refused OVERLOADED before its key is looked at, and the connection closed; the client
 * library redials with its back-off.
 */
export const CLIENT_HANDSHAKES_PER_ADDRESS_PER_SECOND = 64;
/**
 * Of those, handshakes with a key this replica has not parsed lately (not in its key cache) one
 * source address may have per second, and the burst it may save up. An identity costs a replica
 * more than its key's parse (~1 ms, the subgroup check): a connection, two core steps, and the
 * batches it gets stamped under its own per-key budget. A source that makes a new identity for
 * every connection (the fresh-identity flood, bench-flood's `fresh`) is held to this rate; at 16 a
 * second (burst 256) such a flooder cut honest throughput to 68-73% of its baseline here, at 4 (burst
 * 64) to 79%, at 1 (no burst) to 82%, at 2 (burst 64) to 87-89% (`scripts/bench-flood.sh 20
 * fresh`; the rest is the flooder's own CPU on the same two cores). A correct client makes its key once and reconnects
 * with it (not counted here); the burst lets as many new clients connect at once behind one address
 * as a benchmark process gives sockets of their own by default (client/bench.ts AUTO_PER_CLIENT_MAX).
 */
export const FRESH_CLIENT_KEYS_PER_ADDRESS_PER_SECOND = 2;
export const FRESH_CLIENT_KEYS_BURST = 64;
/**
 * Handshakes with a new key from all source addresses together, per second, and the burst saved
 * up. The per-address budget above bounds one address; an attacker with many addresses (an IPv6
 * prefix, a botnet) would get a burst of 64 new identities from each, and nothing bounded the total.
 * At this rate new identities cost a replica at most ~3% of a core in key parses (plus the
 * identities' own per-key budgets, which stop growing with it). The burst lets four addresses'
 * worth of new clients (a benchmark's per-address burst each) connect at once. Past it a hello with
 * a new key is refused OVERLOADED before its key is parsed, whatever its address; clients that
 * reconnect with their key are not counted. The price: while such a flood lasts, new correct
 * clients share this rate with it and connect after some back-offs.
 */
export const FRESH_CLIENT_KEYS_PER_SECOND = 32;
export const FRESH_CLIENT_KEYS_TOTAL_BURST = 256;
/**
 * An address past either handshake budget above is refused at the upgrade (HTTP 429, before any
 * WebSocket handshake, challenge or hello to decode) until that budget has a handshake for it
 * again: a flooder that redials at once then costs a refused upgrade a time, not a handshake. The
 * correct client library redials with its back-off.
 *
 * After the replica sheds a client connection as faulty (server/drive.ts: a batch no correct
 * client sends; server/fairInbox.ts: input far past its refusals), new client connections from its source
 * address are refused at the upgrade for this long: a flooder that redials at once costs a refused
 * upgrade instead of a handshake and another burst of frames to decode. Connections already open
 * from that address are left alone; a correct client behind the same address that connects in
 * this window is refused and redials with its back-off.
 */
export const SHED_ADDRESS_COOLDOWN_MS = 1_000;
/** Source addresses whose handshake budget is remembered; beyond it the least recently seen is
 *  forgotten (it comes back with a full burst, as after an idle second or four). */
export const MAX_HANDSHAKE_BUDGET_ADDRESSES = 4_096;

/** At most one log line per source of bad input per interval (with the count suppressed since). */
export const BAD_INPUT_LOG_INTERVAL_MS = 10_000;

/** On close(), how long to wait for queued frames to reach connected peers before closing anyway. */
export const CLOSE_FLUSH_TIMEOUT_MS = 2_000;

/** On close(), how long a dialled link may take to finish its closing handshake before it is cut. */
export const CLOSE_HANDSHAKE_TIMEOUT_MS = 1_000;

/** The limits a test or an operator may override (TransportOptions.limits). */
export interface TransportLimits {
  readonly peerQueueMaxBytes: number;
  readonly peerDownQueueMaxBytes: number;
  readonly peerDownQueueMaxAgeMs: number;
  readonly clientQueueMaxBytes: number;
  readonly maxConnectionsPerAddress: number;
  readonly clientHandshakesPerAddressPerSecond: number;
  readonly freshClientKeysPerAddressPerSecond: number;
  readonly freshClientKeysBurst: number;
  readonly freshClientKeysPerSecond: number;
  readonly freshClientKeysTotalBurst: number;
  readonly shedCooldownMs: number;
  readonly handshakeTimeoutMs: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  readonly closeFlushTimeoutMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  peerQueueMaxBytes: PEER_QUEUE_MAX_BYTES,
  peerDownQueueMaxBytes: PEER_DOWN_QUEUE_MAX_BYTES,
  peerDownQueueMaxAgeMs: PEER_DOWN_QUEUE_MAX_AGE_MS,
  clientQueueMaxBytes: CLIENT_QUEUE_MAX_BYTES,
  maxConnectionsPerAddress: MAX_CONNECTIONS_PER_ADDRESS,
  clientHandshakesPerAddressPerSecond: CLIENT_HANDSHAKES_PER_ADDRESS_PER_SECOND,
  freshClientKeysPerAddressPerSecond: FRESH_CLIENT_KEYS_PER_ADDRESS_PER_SECOND,
  freshClientKeysBurst: FRESH_CLIENT_KEYS_BURST,
  freshClientKeysPerSecond: FRESH_CLIENT_KEYS_PER_SECOND,
  freshClientKeysTotalBurst: FRESH_CLIENT_KEYS_TOTAL_BURST,
  shedCooldownMs: SHED_ADDRESS_COOLDOWN_MS,
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  reconnectBaseMs: RECONNECT_BASE_MS,
  reconnectMaxMs: RECONNECT_MAX_MS,
  closeFlushTimeoutMs: CLOSE_FLUSH_TIMEOUT_MS,
};

/** Custom limits, checked. (A queue always accepts one frame when empty, whatever its limit.) */
export function resolveLimits(overrides: Partial<TransportLimits> | undefined): TransportLimits {
  const limits = { ...DEFAULT_TRANSPORT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!(Number.isSafeInteger(value) && value > 0)) throw new RangeError(`transport limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.reconnectMaxMs < limits.reconnectBaseMs) throw new RangeError('transport limit reconnectMaxMs must be at least reconnectBaseMs');
  return limits;
}
