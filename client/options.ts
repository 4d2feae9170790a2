/**
 * PompeClient options: what a caller may set, the defaults, and their validation (a bad value is a
 * BAD_CONFIG error naming the option, never a crash later).
 */
import { bytesEqual, toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import { ED25519_SECRET_KEY_BYTES, type CryptoBackend, type KeyPair, type Signer } from '../common/crypto/types.js';
import { MAX_WIRE_INTEGER } from '../common/ids.js';
import { MAX_BATCH_LIFETIME_US, MAX_COMMANDS_PER_BATCH } from '../common/limits.js';
import { MAX_WINDOW_ADVANCE_PER_BATCH } from '../ordering/executor.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';
import { DEFAULT_RECONNECT_INITIAL_MS, DEFAULT_RECONNECT_MAX_MS } from './links.js';
import type { Availability } from './quorumWatch.js';
import type { SocketFactory } from './transport.js';

export type ClientMode = 'direct' | 'gateway';

export interface BatchOptions {
  /** A batch leaves as soon as it holds this many commands. */
  readonly maxCommands: number;
  /** ...or this long after its first command. 0: at the end of the current event-loop turn, so
   *  commands submitted together share a batch and a lone command waits for nothing. */
  readonly maxDelayMs: number;
}

export interface PompeClientOptions {
  /** The cluster (parsed cluster.json); or `confDir`, a directory holding cluster.json (Node only). */
  readonly config?: ClusterConfig;
  readonly confDir?: string;
  /** direct (default): this client forms batches and runs the ordering phase itself.
   *  gateway: it sends single commands to one replica, which does both for it. */
  readonly mode?: ClientMode;
  /** Gateway mode: the replica to use first (default: picked by the client's key). */
  readonly gateway?: number;
  /** Default (Node): node:crypto. In a browser pass nobleCrypto. */
  readonly crypto?: CryptoBackend;
  /** Default (Node): the `ws` package. In a browser pass browserWebSocketTransport(WebSocket). */
  readonly transport?: SocketFactory;
  /** Wall-clock µs; batch expiry is compared with replicas' clocks. Default: performance clock. */
  readonly clock?: () => number;
  /** Direct mode batching. Default: 1000 commands or the end of the event-loop turn. */
  readonly batch?: Partial<BatchOptions>;
  /** A command not executed within this long is rejected with TIMEOUT (outcome unknown). */
  readonly timeoutMs?: number;
  /** Gateway mode: a command not executed within this long is sent again through the next replica. */
  readonly gatewayFailoverMs?: number;
  /** connect() waits this long for enough replicas (q in direct mode, one in gateway mode). */
  readonly connectTimeoutMs?: number;
  /** Commands submitted but not yet settled; submit() waits while this many are. */
  readonly maxInFlight?: number;
  /** This client's Ed25519 key pair: its identity (its public key) and what signs its batches or
   *  commands. Default: a fresh one. Load a kept one with loadClientKey (client/keyFile.ts). Reuse
   *  a key only with a `firstSeq` above every sequence number it used in the last 10 minutes:
   *  replicas skip repeats. */
  readonly key?: KeyPair;
  readonly firstSeq?: number;
  /** Check replicas' ack and execution signatures (default true: trust no single replica). */
  readonly verifySignatures?: boolean;
  /** Collector re-send delay for replicas that have not answered, doubling up to maxRetryMs. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Below the replicas it needs (q direct, 1 gateway) for this long, the client fails what is in
   *  flight and refuses new commands with UNAVAILABLE until they are back (quorumWatch.ts). */
  readonly quorumLossGraceMs?: number;
  /** Called when the client becomes unavailable or available again. */
  readonly onAvailabilityChange?: (availability: Availability) => void;
}

export interface ResolvedOptions {
  readonly mode: ClientMode;
  readonly gateway: number;
  readonly clock: () => number;
  readonly batch: BatchOptions;
  readonly timeoutMs: number;
  readonly gatewayFailoverMs: number;
  readonly connectTimeoutMs: number;
  readonly maxInFlight: number;
  /** Signs this client's batches (direct) or commands (gateway); its public key is the client. */
  readonly signer: Signer;
  /** Lowercase hex of the public key. */
  readonly clientKeyHex: string;
  readonly firstSeq: number;
  readonly verifySignatures: boolean;
  readonly retryMs: number;
  readonly maxRetryMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  readonly quorumLossGraceMs: number;
  readonly onAvailabilityChange: ((availability: Availability) => void) | null;
}

/** Long enough for a batch through a view change (1 s view timeout, doubled a few times) and a
 *  restart of the ordering phase, short enough that a dead cluster is noticed. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Longest timeout: a batch cannot outlive MAX_BATCH_LIFETIME_US at the replicas anyway. */
export const MAX_TIMEOUT_MS = MAX_BATCH_LIFETIME_US / 1000;
/** A healthy gateway answers in tens of ms; 2 s rides out a view change before failing over. */
export const DEFAULT_GATEWAY_FAILOVER_MS = 2_000;
/** ~10 batches of 1000 32-byte commands: enough to keep a pipeline full, little memory. */
export const DEFAULT_MAX_IN_FLIGHT = 10_000;
/** Bounds the memory of promises and batch copies one client holds, and keeps the span of sequence
 *  numbers in flight within what one batch may move the client's window at the replicas
 *  (ordering/executor.ts), so no command of a client that keeps up is refused as too far ahead. */
export const MAX_IN_FLIGHT_LIMIT = MAX_WINDOW_ADVANCE_PER_BATCH / 2;
export const DEFAULT_BATCH: BatchOptions = { maxCommands: 1_000, maxDelayMs: 0 };
/** A batch that waits longer than this for company adds more latency than any batching saves. */
export const MAX_BATCH_DELAY_MS = 10_000;
/** On loopback or a LAN a reply takes ~1 ms; a replica silent for 500 ms lost the message (or is
 *  down, and the other q answer). Longer than a loaded cluster's ack latency, so a busy cluster is
 *  not flooded with re-sends. */
export const DEFAULT_RETRY_MS = 500;
export const DEFAULT_MAX_RETRY_MS = 5_000;
/** Longer than a replica restart on the same machine or a reconnect after a network blip (the
 *  first reconnect comes after ~100 ms), far shorter than the 30 s a command would otherwise wait. */
export const DEFAULT_QUORUM_LOSS_GRACE_MS = 1_000;

/** Wall-clock µs from the platform's high-resolution clock (Node and browsers): monotone, µs. */
export function portableClockUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** The client's signer: from the key pair given (checked), or a fresh key pair. */
function clientSigner(key: KeyPair | undefined, crypto: CryptoBackend): Signer {
  if (key === undefined) return crypto.signer(crypto.generateKeyPair().secretKey);
  if (!(key.secretKey instanceof Uint8Array) || key.secretKey.length !== ED25519_SECRET_KEY_BYTES) bad(`key.secretKey must be ${ED25519_SECRET_KEY_BYTES} bytes`);
  const signer = crypto.signer(key.secretKey);
  if (!(key.publicKey instanceof Uint8Array) || !bytesEqual(signer.publicKey, key.publicKey)) bad('key.publicKey does not match key.secretKey');
  return signer;
}

function bad(message: string): never {
  throw new PompeClientError(PompeClientErrorCode.BadConfig, message);
}

function integer(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max) bad(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return v;
}

/** Applies defaults and checks ranges; throws BAD_CONFIG. */
export function resolveOptions(o: PompeClientOptions, config: ClusterConfig, crypto: CryptoBackend): ResolvedOptions {
  const mode = o.mode ?? 'direct';
  if (mode !== 'direct' && mode !== 'gateway') bad(`mode must be 'direct' or 'gateway', got ${String(mode)}`);
  const signer = clientSigner(o.key, crypto);
  const timeoutMs = integer('timeoutMs', o.timeoutMs, DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
  const retryMs = integer('retryMs', o.retryMs, DEFAULT_RETRY_MS, 1, MAX_TIMEOUT_MS);
  const reconnectInitialMs = integer('reconnect.initialMs', o.reconnect?.initialMs, DEFAULT_RECONNECT_INITIAL_MS, 1, MAX_TIMEOUT_MS);
  return {
    mode,
    // Thin clients spread over the replicas by their keys.
    gateway: integer('gateway', o.gateway, signer.publicKey[0]! % config.n, 0, config.n - 1),
    clock: o.clock ?? portableClockUs,
    batch: {
      maxCommands: integer('batch.maxCommands', o.batch?.maxCommands, DEFAULT_BATCH.maxCommands, 1, MAX_COMMANDS_PER_BATCH),
      maxDelayMs: integer('batch.maxDelayMs', o.batch?.maxDelayMs, DEFAULT_BATCH.maxDelayMs, 0, MAX_BATCH_DELAY_MS),
    },
    timeoutMs,
    gatewayFailoverMs: integer('gatewayFailoverMs', o.gatewayFailoverMs, Math.min(DEFAULT_GATEWAY_FAILOVER_MS, timeoutMs), 1, MAX_TIMEOUT_MS),
    connectTimeoutMs: integer('connectTimeoutMs', o.connectTimeoutMs, timeoutMs, 1, MAX_TIMEOUT_MS),
    maxInFlight: integer('maxInFlight', o.maxInFlight, DEFAULT_MAX_IN_FLIGHT, 1, MAX_IN_FLIGHT_LIMIT),
    signer,
    clientKeyHex: toHex(signer.publicKey),
    firstSeq: integer('firstSeq', o.firstSeq, 1, 1, MAX_WIRE_INTEGER),
    verifySignatures: o.verifySignatures ?? true,
    retryMs,
    maxRetryMs: integer('maxRetryMs', o.maxRetryMs, Math.max(DEFAULT_MAX_RETRY_MS, retryMs), retryMs, MAX_TIMEOUT_MS),
    reconnectInitialMs,
    reconnectMaxMs: integer('reconnect.maxMs', o.reconnect?.maxMs, Math.max(DEFAULT_RECONNECT_MAX_MS, reconnectInitialMs), reconnectInitialMs, MAX_TIMEOUT_MS),
    quorumLossGraceMs: integer('quorumLossGraceMs', o.quorumLossGraceMs, DEFAULT_QUORUM_LOSS_GRACE_MS, 0, MAX_TIMEOUT_MS),
    onAvailabilityChange: o.onAvailabilityChange ?? null,
  };
}
