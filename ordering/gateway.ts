/**
 * Gateway mode: thin clients send single commands to one replica, which batches them (by size or
 * after a delay, whichever comes first) and orders each batch with its own collector, as a
 * direct-mode client would. Thin clients then hear from this replica when their command is ordered
 * and executed; the gateway reports execution only once f+1 replicas agree on the result.
 * A thin client that distrusts its gateway resubmits through another one after a timeout; the
 * (client id, sequence number) tag makes the command execute once.
 */
import { decodeResults, encodeBatch, type Command } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest } from '../common/ids.js';
import type { CommandMsg, GatewayMsg } from '../common/messages.js';
import type { CollectorEvent } from './collector.js';

export interface GatewayOptions {
  readonly collectorId: number;
  readonly crypto: CryptoBackend;
  readonly maxBatchCommands: number;
  readonly maxBatchBytes: number;
  /** A partial batch leaves after this long. */
  readonly maxDelayUs: number;
  readonly batchLifetimeUs: number;
}

interface Waiting {
  readonly conn: number;
  readonly clientId: number;
  readonly seq: number;
}

export interface GatewayBatch {
  readonly bytes: Uint8Array;
  readonly digest: Digest;
  readonly expiresAtUs: number;
}

export class Gateway {
  private open: { conn: number; command: Command }[] = [];
  private openBytes = 0;
  private openSinceUs = 0;
  private nonce = 0;
  private readonly batches = new Map<string, Waiting[]>();

  constructor(private readonly opts: GatewayOptions) {}

  get openCommands(): number {
    return this.open.length;
  }

  /** Adds a command; returns a batch when this one filled it. */
  add(conn: number, msg: CommandMsg, nowUs: number): GatewayBatch | null {
    if (this.open.length === 0) this.openSinceUs = nowUs;
    this.open.push({ conn, command: { clientId: msg.clientId, seq: msg.seq, payload: msg.payload } });
    this.openBytes += msg.payload.length + 20;
    if (this.open.length >= this.opts.maxBatchCommands || this.openBytes >= this.opts.maxBatchBytes - 64) return this.cut(nowUs);
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
        return waiting.map((w) => ({ conn: w.conn, msg: { type: 'commandOrdered', clientId: w.clientId, seq: w.seq, digest: event.digest, ts: event.ts } }));
      case 'executed': {
        this.batches.delete(key);
        const decoded = decodeResults(event.results);
        const results = decoded.ok ? decoded.value : [];
        return waiting.map((w, i) => ({
          conn: w.conn,
          msg: { type: 'commandExecuted', clientId: w.clientId, seq: w.seq, position: event.position, result: results[results.length === 1 ? 0 : i] ?? new Uint8Array(0) },
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
    const bytes = encodeBatch({ collectorId: this.opts.collectorId, nonce: this.nonce++, expiresAtUs, commands: this.open.map((o) => o.command) });
    const digest = this.opts.crypto.sha256(bytes);
    this.batches.set(
      toHex(digest),
      this.open.map((o) => ({ conn: o.conn, clientId: o.command.clientId, seq: o.command.seq })),
    );
    this.open = [];
    this.openBytes = 0;
    return { bytes, digest, expiresAtUs };
  }
}
