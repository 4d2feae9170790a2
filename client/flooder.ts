/**
 * `pompe flood`: one flooding client process against a cluster, for scripts/bench-flood.sh (the
 * Isotaxis-style attack: one client trying to crowd honest ones out). It connects to every
 * replica's client port — from `localAddress`, so that replicas see it as a host of its own — and
 * sends phase-1 batches as fast as the sockets take them (it waits while a socket holds more than
 * SEND_HIGH_WATER_BYTES), never sequencing any. Kinds:
 *  - valid: one key, batches validly signed by it (each a fresh digest): the most work a replica
 *    does for a client that follows the protocol;
 *  - junk: one key, batches naming it but with garbage signatures (a replica hashes and checks each
 *    before refusing it), and some malformed ones;
 *  - fresh: many short-lived identities: each connection proves a new key, sends a few valid
 *    batches, closes, and comes back with another key (each new key costs replicas a key parse
 *    and a handshake check).
 * A connection the replica closes (shed, throttled, refused at the upgrade) is redialled at once,
 * as a determined attacker would: valid and junk with the same key, fresh with a new one.
 * It prints what it sent, what replicas answered and how they closed its connections.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { BatchMode, encodeBatch } from '../common/batch.js';
import { batchSigner } from '../common/batchAuth.js';
import { decodeMessage, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import { ED25519_SECRET_KEY_BYTES, type CryptoBackend, type Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import { MAX_FRAME_BYTES } from '../common/limits.js';
import { answerClientChallenge } from '../ordering/clientKeys.js';

export const FLOOD_KINDS = ['valid', 'junk', 'fresh'] as const;
export type FloodKind = (typeof FLOOD_KINDS)[number];

/** Bytes a socket may hold unsent before the flooder waits for it: keeps the flood at what the
 *  replica reads, not what this process can generate. */
const SEND_HIGH_WATER_BYTES = 1024 * 1024;
/** Batches a fresh identity sends before it leaves and comes back as another. */
const BATCHES_PER_FRESH_IDENTITY = 4;
/** One junk frame in this many is not a batch at all. */
const MALFORMED_EVERY = 10;
/** Payload of each flood command: 32 bytes, as the benchmark's. */
const COMMAND_BYTES = 32;
/** Pause before redialling a closed connection: enough not to spin on refused upgrades. */
const REDIAL_MS = 5;

export interface FloodOptions {
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly kind: FloodKind;
  readonly durationS: number;
  readonly batchSize: number;
  /** Connections to each replica at once (fresh: identities at once per replica). */
  readonly connections: number;
  /** Source address of the flooder's sockets (default: the system's choice). */
  readonly localAddress?: string;
  readonly out: (line: string) => void;
}

export interface FloodSummary {
  readonly kind: FloodKind;
  readonly seconds: number;
  readonly sent: number;
  readonly identities: number;
  readonly replies: Record<string, number>;
}

interface Socket {
  readonly ws: WebSocket;
  readonly replica: number;
  readonly signer: Signer;
  readonly sign: (body: Uint8Array) => Uint8Array;
  up: boolean;
  sent: number;
  nonce: number;
}

export async function runFlood(o: FloodOptions): Promise<FloodSummary> {
  // A random seed is a key: signer() derives its public half. (generateKeyPair would derive it
  // twice, and on one machine the flooder's CPU is the replicas' and the honest clients' loss.)
  const newKey = (): Signer => o.crypto.signer(randomBytes(ED25519_SECRET_KEY_BYTES));
  const replies: Record<string, number> = {};
  /** Connections closed by the other side (or never opened: 1006), by close code. */
  const closes: Record<number, number> = {};
  let sent = 0;
  let identities = 0;
  const sockets = new Set<Socket>();
  const startedMs = Date.now();
  const cpuAtStart = process.cpuUsage();
  const endMs = startedMs + o.durationS * 1000;
  let stopping = false;
  const payload = new Uint8Array(COMMAND_BYTES);

  const open = (replica: number, signer: Signer): void => {
    const r = o.config.replicas[replica]!;
    const ws = new WebSocket(`ws://${r.host}:${r.clientPort}/`, {
      perMessageDeflate: false,
      maxPayload: MAX_FRAME_BYTES,
      ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
    });
    const s: Socket = { ws, replica, signer, sign: batchSigner(o.config.clusterId, o.crypto, signer), up: false, sent: 0, nonce: 0 };
    sockets.add(s);
    identities++;
    ws.on('message', (data: Buffer) => {
      const decoded = decodeMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), { replicaCount: o.config.n });
      if (!decoded.ok) return;
      const msg = decoded.value;
      if (msg.type === 'helloChallenge' && !s.up) {
        ws.send(encodeMessage(answerClientChallenge(o.config.clusterId, signer, replica as ReplicaId, msg.nonce)));
        s.up = true;
        return;
      }
      const what = msg.type === 'refused' ? `refused ${msg.reason}` : msg.type === 'error' ? `error ${msg.code}` : msg.type;
      replies[what] = (replies[what] ?? 0) + 1;
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      sockets.delete(s);
      // A fresh identity leaves after its batches (or was cut off): another takes its place; the
      // others come back with their key.
      if (o.kind !== 'fresh' || s.sent < BATCHES_PER_FRESH_IDENTITY) closes[code] = (closes[code] ?? 0) + 1;
      if (stopping) return;
      setTimeout(() => {
        if (!stopping) open(replica, o.kind === 'fresh' ? newKey() : signer);
      }, REDIAL_MS);
    });
  };

  const frame = (s: Socket): Uint8Array => {
    const nowUs = Date.now() * 1000;
    new DataView(payload.buffer).setUint32(0, s.nonce);
    const commands = Array.from({ length: o.batchSize }, (_, i) => ({ seq: s.nonce * o.batchSize + i + 1, payload }));
    const input = { mode: BatchMode.Direct, collectorKey: s.signer.publicKey, nonce: s.nonce++, expiresAtUs: nowUs + 30_000_000, commands } as const;
    if (o.kind !== 'junk') return encodeMessage({ type: 'submit', batch: encodeBatch(input, s.sign) });
    if (s.nonce % MALFORMED_EVERY === 0) return encodeMessage({ type: 'submit', batch: payload.slice() });
    const garbage = new Uint8Array(64).fill(s.nonce & 0xff);
    return encodeMessage({ type: 'submit', batch: encodeBatch(input, () => garbage) });
  };

  const oneKey = o.kind === 'fresh' ? null : newKey();
  for (let r = 0; r < o.config.n; r++) {
    for (let c = 0; c < o.connections; c++) open(r, oneKey ?? newKey());
  }

  await new Promise<void>((resolve) => {
    const pump = (): void => {
      if (Date.now() >= endMs) {
        resolve();
        return;
      }
      let progressed = false;
      for (const s of [...sockets]) {
        if (!s.up || s.ws.readyState !== WebSocket.OPEN || s.ws.bufferedAmount > SEND_HIGH_WATER_BYTES) continue;
        if (o.kind === 'fresh' && s.sent >= BATCHES_PER_FRESH_IDENTITY) {
          s.ws.close();
          continue;
        }
        s.ws.send(frame(s));
        s.sent++;
        sent++;
        progressed = true;
      }
      // Nothing could be sent: the sockets are full; wait a little instead of spinning.
      if (progressed) setImmediate(pump);
      else setTimeout(pump, 1);
    };
    pump();
  });
  stopping = true;
  for (const s of sockets) s.ws.terminate();
  const seconds = (Date.now() - startedMs) / 1000;
  // On one machine the flooder's CPU comes out of the replicas' cores: say how much it took.
  const cpu = process.cpuUsage(cpuAtStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const summary: FloodSummary = { kind: o.kind, seconds, sent, identities, replies };
  o.out(
    `flood ${o.kind}: sent ${sent} batches of ${o.batchSize} (${(sent / seconds).toFixed(0)}/s) over ${seconds.toFixed(1)} s from ${identities} identities, flooder cpu ${cpuSeconds.toFixed(1)} s; ` +
      `replies: ${Object.entries(replies).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; ` +
      `connections closed by code: ${Object.entries(closes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
  );
  return summary;
}
