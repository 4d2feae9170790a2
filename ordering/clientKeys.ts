/**
 * Client keys as the cores use them: a key's lowercase hex (its identity, the key of every
 * per-client record) and its parsed handle, ready to verify. Parsing a key checks that it is a
 * point of the prime-order subgroup (common/crypto/strict.ts), ~1 ms of curve arithmetic here, so
 * parsed keys are cached, and the parses one source may cause are budgeted: otherwise a gateway
 * batch of fresh keys would cost every replica a millisecond per command.
 */
import { bytesEqual, toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, PublicKeyHandle, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { ClientHelloMsg } from '../common/messages.js';
import { clientHelloMessage } from '../common/signing.js';
import { TokenBucket } from '../common/tokenBucket.js';

/** Parsed client keys kept: a handle is a few hundred bytes, and a replica serving this many
 *  active clients parses each once; beyond it the least recently used is parsed again if needed. */
export const CLIENT_KEY_CACHE_ENTRIES = 16_384;

/** Fresh key parses one source (a connection, or a peer's gateway batches) may cause per second,
 *  with a burst of the same size: ~0.2 s of a core at most. Beyond it the batch is refused
 *  `overloaded` (the keys parsed so far stay cached, so a retry goes further). */
export const KEY_PARSES_PER_SOURCE_PER_SECOND = 200;

/** A client's authenticated identity. */
export interface ClientIdentity {
  /** Lowercase hex of the key: the client's name in every per-client table. */
  readonly hex: string;
  readonly handle: PublicKeyHandle;
}

export class ClientKeyCache {
  private readonly cache = new Map<string, PublicKeyHandle | null>();
  /** Per source that parsed recently: its parse budget. */
  private readonly budgets = new Map<string, TokenBucket>();

  constructor(
    private readonly crypto: CryptoBackend,
    private readonly capacity = CLIENT_KEY_CACHE_ENTRIES,
  ) {}

  /** Remembers a handle parsed elsewhere (the transport parses a key when a client authenticates). */
  remember(identity: ClientIdentity): void {
    this.put(identity.hex, identity.handle);
  }

  /**
   * The parsed key, from the cache or parsed now if `source` has budget left: null if the bytes
   * are not a valid key, 'overBudget' if parsing it would exceed the source's budget.
   */
  lookup(raw: Uint8Array, hex: string, source: string, nowUs: number): PublicKeyHandle | null | 'overBudget' {
    const cached = this.cache.get(hex);
    if (cached !== undefined) {
      // Most recently used at the end.
      this.cache.delete(hex);
      this.cache.set(hex, cached);
      return cached;
    }
    if (!this.spend(source, nowUs)) return 'overBudget';
    const handle = this.crypto.parsePublicKey(raw);
    this.put(hex, handle);
    return handle;
  }

  /** Whether raw key bytes are cached (parsed lately): looking them up costs no parse. */
  has(raw: Uint8Array): boolean {
    return this.cache.has(toHex(raw));
  }

  /** The identity of raw key bytes (parsed or cached, not budgeted: for keys the caller must know). */
  identity(raw: Uint8Array): ClientIdentity | null {
    const hex = toHex(raw);
    let handle = this.cache.get(hex);
    if (handle === undefined) {
      handle = this.crypto.parsePublicKey(raw);
      this.put(hex, handle);
    }
    return handle === null ? null : { hex, handle };
  }

  private put(hex: string, handle: PublicKeyHandle | null): void {
    this.cache.delete(hex);
    this.cache.set(hex, handle);
    if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as string);
  }

  private spend(source: string, nowUs: number): boolean {
    let b = this.budgets.get(source);
    if (b === undefined) {
      // Sources are connections and peers, both bounded by the transport; clearing the table when
      // it is full hands out at most one extra burst, to sources that are parsing right now.
      if (this.budgets.size >= this.capacity) this.budgets.clear();
      b = new TokenBucket(KEY_PARSES_PER_SOURCE_PER_SECOND, KEY_PARSES_PER_SOURCE_PER_SECOND, nowUs);
      this.budgets.set(source, b);
    }
    return b.take(1, nowUs);
  }
}

/** A client's answer to replica `replica`'s challenge `nonce`: its key, proven by signing. */
export function answerClientChallenge(clusterId: Uint8Array, signer: Signer, replica: ReplicaId, nonce: Uint8Array): ClientHelloMsg {
  return { type: 'clientHello', key: signer.publicKey, nonce, sig: signer.sign(clientHelloMessage(clusterId, replica, nonce)) };
}

/**
 * Checks a client's answer to replica `self`'s challenge `nonce` (the transport's handshake; the
 * simulator's stand-in for it): the identity it proves, or what is wrong with it.
 */
export function checkClientHello(
  config: ClusterConfig,
  keys: ClientKeyCache,
  self: ReplicaId,
  nonce: Uint8Array,
  hello: ClientHelloMsg,
  crypto: CryptoBackend,
): ClientIdentity | string {
  if (!bytesEqual(hello.nonce, nonce)) return 'clientHello answers a different nonce than the challenge sent';
  const identity = keys.identity(hello.key);
  if (identity === null) return 'clientHello key is not a valid Ed25519 public key';
  if (!crypto.verify(identity.handle, clientHelloMessage(config.clusterId, self, nonce), hello.sig)) return 'clientHello signature does not verify with its key';
  return identity;
}
