/**
 * Gateway mode at a replica (DESIGN.md "Ordering unit"): thin clients' signed commands checked,
 * batched by the Gateway (signed with this replica's key) and ordered by this replica's own
 * Collector, whose messages to this replica are handled in place and whose replies come back
 * through an inbox (the collector is not reentrant).
 *
 * A command is taken only from a connection authenticated as the command's key, signed by it, and
 * within its deadline: a bad one would make every replica refuse the whole batch it rides in.
 */
import { MIN_COMMAND_SEQ } from '../common/batch.js';
import { batchSigner, verifyCommandSignature } from '../common/batchAuth.js';
import { ErrorCode } from '../common/errors.js';
import { MAX_BATCH_LIFETIME_US } from '../common/limits.js';
import type { CommandMsg, Message } from '../common/messages.js';
import type { Admission } from './admission.js';
import type { ClientIdentity } from './clientKeys.js';
import { Collector, type CollectorEvent, type CollectorOutput } from './collector.js';
import type { CoreContext } from './context.js';
import { Gateway, type GatewayBatch } from './gateway.js';
import { toHex } from '../common/bytes.js';

/** Gateway defaults: a batch leaves at this many commands or after this delay. */
const DEFAULT_GATEWAY_BATCH_COMMANDS = 1_000;
const DEFAULT_GATEWAY_DELAY_US = 1_000;
/** Collector re-send timing for the gateway (replica-to-replica links are fast). */
const GATEWAY_RETRY_US = 100_000;
const GATEWAY_MAX_RETRY_US = 2_000_000;

export type CollectorInput = Parameters<Collector['step']>[0];

export interface GatewayHostOptions {
  readonly maxBatchCommands: number;
  readonly maxDelayUs: number;
}

export class GatewayHost {
  private readonly gateway: Gateway;
  private readonly collector: Collector;
  /** Inputs for the collector produced while it is stepping (its own replies to itself). */
  private readonly inbox: CollectorInput[] = [];
  private busy = false;

  constructor(
    private readonly ctx: CoreContext,
    /** Handles the collector's request to this very replica (phase 1 or 2). */
    private readonly onLocalRequest: (msg: Message) => void,
    private readonly admission: Admission,
    opts: GatewayHostOptions | undefined,
  ) {
    const { config, crypto, signer } = ctx;
    this.gateway = new Gateway({
      collectorKey: signer.publicKey,
      sign: batchSigner(config.clusterId, crypto, signer),
      crypto,
      maxBatchCommands: opts?.maxBatchCommands ?? DEFAULT_GATEWAY_BATCH_COMMANDS,
      maxBatchBytes: config.protocol.maxBatchBytes,
      maxDelayUs: opts?.maxDelayUs ?? DEFAULT_GATEWAY_DELAY_US,
      batchLifetimeUs: config.protocol.batchLifetimeUs,
    });
    this.collector = new Collector({ config, crypto, verifySignatures: true, retryUs: GATEWAY_RETRY_US, maxRetryUs: GATEWAY_MAX_RETRY_US });
  }

  nextWakeUs(): number | null {
    const a = this.gateway.nextWakeUs();
    const b = this.collector.nextWakeUs();
    return a === null ? b : b === null ? a : Math.min(a, b);
  }

  /** A thin client's command on connection `conn`, authenticated as `identity` (undefined: not). */
  onCommand(conn: number, msg: CommandMsg, identity: ClientIdentity | undefined): void {
    const problem = this.check(msg, identity);
    if (problem !== null) {
      this.ctx.out.toClients.push({ conn, msg: { type: 'error', code: problem.code, message: problem.message } });
      return;
    }
    const { clientKey, seq, expiresAtUs, payload, sig } = msg;
    const batch = this.gateway.add(conn, { clientKey, seq, expiresAtUs, payload, sig }, this.ctx.nowUs);
    if (batch !== null) this.submit(batch);
  }

  private check(msg: CommandMsg, identity: ClientIdentity | undefined): { code: ErrorCode; message: string } | null {
    const { config, crypto, nowUs } = this.ctx;
    if (identity === undefined || identity.hex !== toHex(msg.clientKey)) {
      return { code: ErrorCode.BadSignature, message: 'a command is taken only from a connection authenticated as its key' };
    }
    if (msg.seq < MIN_COMMAND_SEQ) return { code: ErrorCode.InvalidField, message: `command sequence numbers start at ${MIN_COMMAND_SEQ}` };
    if (!this.admission.admitCommand(identity.hex, nowUs)) return { code: ErrorCode.Overloaded, message: 'this client key is over its budget of thin commands per second: send more slowly' };
    if (msg.expiresAtUs <= nowUs || msg.expiresAtUs > nowUs + MAX_BATCH_LIFETIME_US) {
      return { code: ErrorCode.BadBatch, message: `command deadline ${msg.expiresAtUs} is past, or more than ${MAX_BATCH_LIFETIME_US} µs ahead of this replica's clock` };
    }
    if (!verifyCommandSignature(config.clusterId, crypto, identity.handle, msg)) return { code: ErrorCode.BadSignature, message: 'command signature does not verify with its key' };
    return null;
  }

  tick(): void {
    const batch = this.gateway.tick(this.ctx.nowUs);
    if (batch !== null) this.submit(batch);
    this.feed({ kind: 'tick' });
  }

  /** Steps the collector. Its messages to this replica are handled right away, and their replies
   *  come back through the inbox after the current step. */
  feed(input: CollectorInput): void {
    this.inbox.push(input);
    if (this.busy) return;
    this.busy = true;
    try {
      for (let next = this.inbox.shift(); next !== undefined; next = this.inbox.shift()) {
        const out: CollectorOutput = this.collector.step(next, this.ctx.nowUs);
        for (const { to, msg } of out.send) {
          if (to === 'all' || to !== this.ctx.self) this.ctx.out.toPeers.push({ to, msg });
          if (to === 'all' || to === this.ctx.self) this.onLocalRequest(msg);
        }
        for (const event of out.events) this.onEvent(event);
      }
    } finally {
      this.busy = false;
    }
  }

  private submit(batch: GatewayBatch): void {
    this.feed({ kind: 'submit', batch: batch.bytes, digest: batch.digest, expiresAtUs: batch.expiresAtUs });
  }

  private onEvent(event: CollectorEvent): void {
    for (const { conn, msg } of this.gateway.onCollectorEvent(event)) this.ctx.out.toClients.push({ conn, msg });
  }
}
