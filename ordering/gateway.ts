/**
 * Gateway mode: thin clients send single signed commands to one replica, which batches them (by
 * size or after a delay, whichever comes first), signs the batch with its own key and orders it
 * with its own collector, as a direct-mode client would. Thin clients then hear from this replica,
 * on the connection the command came on, when their command is ordered and executed; the gateway
 * reports execution only once f+1 replicas agree on the result. The gateway cannot alter or invent
 * a command (each carries its client's signature, checked by every replica before stamping); a
 * thin client that distrusts it resubmits through another one after a timeout, and its (key,
 * sequence number) makes the command execute once.
 */
import { BatchMode, commandBytes, decodeResults, encodeBatch, BATCH_HEADER_BYTES, BATCH_TRAILER_BYTES, type SignedCommand } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest } from '../common/ids.js';
import type { GatewayMsg } from '../common/messages.js';
import type { CollectorEvent } from './collector.js';

export interface GatewayOptions {
  /** This replica's public key: the batches' collector key. */
  readonly collectorKey: Uint8Array;
  /** Signs a batch body with this replica's key (common/batchAuth.ts batchSigner). */
  readonly sign: (body: Uint8Array) => Uint8Array;
  readonly crypto: CryptoBackend;
  readonly maxBatchCommands: number;
  readonly maxBatchBytes: number;
  /** A partial batch leaves after this long. */
  readonly maxDelayUs: number;
  readonly batchLifetimeUs: number;
}

interface Waiting {
  readonly conn: number;
  readonly seq: number;
}

export interface GatewayBatch {
  readonly bytes: Uint8Array;
  readonly digest: Digest;
  readonly expiresAtUs: number;
}

export class Gateway {
  private open: { conn: number; command: SignedCommand }[] = [];
  private openBytes = BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES;
  private openSinceUs = 0;
  private nonce = 0;
  private readonly batches = new Map<string, Waiting[]>();

  constructor(private readonly opts: GatewayOptions) {}

  get openCommands(): number {
    return this.open.length;
  }

  /** Adds a command (its signature checked by the caller); returns a batch when this one filled
   *  it, or when it would not fit the open one (then it opens the next). */
  add(conn: number, command: SignedCommand, nowUs: number): GatewayBatch | null {
    const size = commandBytes(BatchMode.Gateway, command.payload.length);
    const full = this.open.length > 0 && this.openBytes + size > this.opts.maxBatchBytes ? this.cut(nowUs) : null;
    if (this.open.length === 0) this.openSinceUs = nowUs;
    this.open.push({ conn, command });
    this.openBytes += size;
    if (full !== null) return full;
    if (this.open.length >= this.opts.maxBatchCommands || this.openBytes >= this.opts.maxBatchBytes) return this.cut(nowUs);
    return null;
  }

  /** Cuts the open batch if it has waited long enough. */
  tick(nowUs: number): GatewayBatch | null {
    return this.open.length > 0 && nowUs >= this.openSinceUs + this.opts.maxDelayUs ? this.cut(nowUs) : null;
  }

  nextWakeUs(): number | null {
    return this.open.length > 0 ? this.openSinceUs + this.opts.maxDelayUs : null;
  }

  /** Replies for the thin clients of a batch, from its collector's event. */
  onCollectorEvent(event: CollectorEvent): { conn: number; msg: GatewayMsg }[] {
    const key = toHex(event.digest);
    const waiting = this.batches.get(key);
    if (waiting === undefined) return [];
    switch (event.kind) {
      case 'ordered':
        return waiting.map((w) => ({ conn: w.conn, msg: { type: 'commandOrdered', seq: w.seq, digest: event.digest, ts: event.ts } }));
      case 'executed': {
        this.batches.delete(key);
        const decoded = decodeResults(event.results);
        const results = decoded.ok ? decoded.value : [];
        return waiting.map((w, i) => ({
          conn: w.conn,
          msg: { type: 'commandExecuted', seq: w.seq, position: event.position, result: results[results.length === 1 ? 0 : i] ?? new Uint8Array(0) },
        }));
      }
      case 'failed':
        // The thin clients time out and resubmit; their tags keep a later success exactly-once.
        this.batches.delete(key);
        return [];
    }
  }

  private cut(nowUs: number): GatewayBatch {
    const expiresAtUs = nowUs + this.opts.batchLifetimeUs;
    const commands = this.open.map((o) => o.command);
    const bytes = encodeBatch({ mode: BatchMode.Gateway, collectorKey: this.opts.collectorKey, nonce: this.nonce++, expiresAtUs, commands }, this.opts.sign);
    const digest = this.opts.crypto.sha256(bytes);
    this.batches.set(
      toHex(digest),
      this.open.map((o) => ({ conn: o.conn, seq: o.command.seq })),
    );
    this.open = [];
    this.openBytes = BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES;
    return { bytes, digest, expiresAtUs };
  }
}
