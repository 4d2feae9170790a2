/**
 * Gateway mode: the client signs each command (its key, seq, deadline and payload) and sends it on
 * its own to one replica, which batches thin clients' commands and runs the ordering phase for them, then
 * answers `commandOrdered` and `commandExecuted` (once f+1 replicas agree on the result). A command
 * the gateway has not answered within `gatewayFailoverMs` is sent again, same tag, through the next
 * replica whose link is up, which becomes the gateway for later commands too; its (key, seq) makes
 * the command execute once however many gateways carried it (a late copy reports status 'duplicate',
 * with the position where the copy was skipped, not where the command executed).
 *
 * A gateway that answered anything within the failover delay is alive, only slow (a loaded
 * cluster): failing over then doubles the load and makes it slower still (measured: thousands of
 * failovers in a 10 s run), so its commands get up to SLOW_GATEWAY_FACTOR times the delay before
 * they move, which still catches a gateway that answers some commands and drops others; so do
 * commands it reported ordered (they will execute; moving them early only makes duplicates). A
 * silent gateway, or one whose link is down, loses its other commands at the first deadline.
 *
 * The client trusts its gateway's reports (they are not signed by f+1 replicas); a client that
 * cannot trust one replica uses direct mode. A gateway cannot alter or invent a command: every
 * replica checks the client's signature before stamping it.
 */
import { signCommand } from '../common/batchAuth.js';
import { encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';
import type { ResolvedOptions } from './options.js';
import { markExecuted, markFailed, markOrdered, type EngineHost, type PendingCommand } from './pending.js';
import { parseCommandResult } from './results.js';
import { Sweeper, sweepIntervalFor } from './sweeper.js';

/** What the engine needs of the replica links (links.ts). */
export interface GatewayLinks {
  isUp(replica: number): boolean;
  send(replica: number, frame: Uint8Array): boolean;
}

/** How much longer than gatewayFailoverMs a command may wait at a gateway that is answering. */
export const SLOW_GATEWAY_FACTOR = 4;

interface ThinCommand {
  readonly cmd: PendingCommand;
  readonly frame: Uint8Array;
  gateway: number;
  attempts: number;
  /** When the current attempt was sent. */
  sentAtUs: number;
  failoverAtUs: number;
  readonly deadlineUs: number;
}

export interface GatewayStats {
  sent: number;
  failovers: number;
  /** Failover deadlines moved because the gateway was answering other commands. */
  postponed: number;
  /** Replies for commands no longer pending (answered by another gateway first, or late). */
  lateReplies: number;
}

export class GatewayEngine {
  private readonly pending = new Map<number, ThinCommand>();
  private current: number;
  private readonly sweeper: Sweeper;
  private closed = false;
  readonly stats: GatewayStats = { sent: 0, failovers: 0, postponed: 0, lateReplies: 0 };
  /** When each replica last answered any of this client's commands (µs), for failover. */
  private readonly lastReplyUs: number[];

  constructor(
    private readonly config: ClusterConfig,
    private readonly crypto: CryptoBackend,
    private readonly links: GatewayLinks,
    private readonly opts: ResolvedOptions,
    private readonly host: EngineHost,
  ) {
    this.current = opts.gateway;
    this.lastReplyUs = new Array<number>(config.n).fill(Number.NEGATIVE_INFINITY);
    this.sweeper = new Sweeper(sweepIntervalFor(Math.min(opts.gatewayFailoverMs, opts.timeoutMs)), () => this.sweep());
  }

  /** The replica new commands go to. */
  get gateway(): number {
    return this.current;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  start(cmd: PendingCommand): void {
    const nowUs = this.opts.clock();
    // The command's own deadline: after it, no gateway can get it executed (its signature covers it).
    const lifetimeUs = Math.min(this.opts.timeoutMs * 1000, this.config.protocol.batchLifetimeUs);
    const signed = signCommand(this.config.clusterId, this.crypto, this.opts.signer, { seq: cmd.seq, expiresAtUs: nowUs + lifetimeUs, payload: cmd.payload });
    const frame = encodeMessage({ type: 'command', ...signed });
    const thin: ThinCommand = {
      cmd,
      frame,
      gateway: this.pickGateway(this.current),
      attempts: 1,
      sentAtUs: nowUs,
      failoverAtUs: nowUs + this.opts.gatewayFailoverMs * 1000,
      deadlineUs: nowUs + this.opts.timeoutMs * 1000,
    };
    this.current = thin.gateway;
    this.pending.set(cmd.seq, thin);
    this.send(thin);
    this.sweeper.poke();
  }

  onMessage(from: ReplicaId, msg: Message): void {
    if (msg.type !== 'commandOrdered' && msg.type !== 'commandExecuted') return;
    const nowUs = this.opts.clock();
    this.lastReplyUs[from] = nowUs;
    const thin = this.pending.get(msg.seq);
    if (thin === undefined) {
      this.stats.lateReplies++;
      return;
    }
    if (msg.type === 'commandOrdered') {
      markOrdered(thin.cmd, nowUs, msg.ts, msg.digest);
      return;
    }
    this.pending.delete(msg.seq);
    const r = parseCommandResult(msg.result);
    markExecuted(thin.cmd, nowUs, { status: r.status, result: r.result, position: msg.position, index: null });
    this.host.released(thin.cmd);
  }

  /** Stops the failover timer and rejects what is pending with `error` (null: drops it silently,
   *  for a benchmark that stops without counting its last commands as failures). */
  close(error: PompeClientError | null): void {
    if (this.closed) return;
    this.closed = true;
    this.sweeper.stop();
    if (error !== null) for (const thin of this.pending.values()) this.fail(thin, error);
    this.pending.clear();
  }

  /** Fails every pending command with `error` and keeps running. */
  failInFlight(error: PompeClientError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const thin of pending) this.fail(thin, error);
  }

  /** `preferred` if its link is up, else the next replica (in id order) whose link is. */
  private pickGateway(preferred: number): number {
    const { n } = this.config;
    for (let i = 0; i < n; i++) {
      const r = (preferred + i) % n;
      if (this.links.isUp(r)) return r;
    }
    return preferred; // none up: the frame is dropped and the failover timer tries again
  }

  private send(thin: ThinCommand): void {
    this.stats.sent++;
    this.links.send(thin.gateway, thin.frame);
  }

  private sweep(): boolean {
    const nowUs = this.opts.clock();
    for (const [seq, thin] of this.pending) {
      if (nowUs >= thin.deadlineUs) {
        this.pending.delete(seq);
        this.fail(
          thin,
          new PompeClientError(
            PompeClientErrorCode.Timeout,
            `command ${seq} not executed within ${this.opts.timeoutMs} ms through ${thin.attempts} gateway attempt(s) (it may still execute, once)`,
          ),
        );
      } else if (nowUs >= thin.failoverAtUs) {
        const failoverUs = this.opts.gatewayFailoverMs * 1000;
        // Ordered means sequenced, so it will execute (no loss); moving it now only makes a
        // duplicate. Its gateway is given the same extra time as one that is answering.
        const answering =
          this.links.isUp(thin.gateway) && (this.lastReplyUs[thin.gateway]! >= nowUs - failoverUs || thin.cmd.orderedUs >= 0);
        if (answering && nowUs < thin.sentAtUs + SLOW_GATEWAY_FACTOR * failoverUs) {
          this.stats.postponed++;
          thin.failoverAtUs = Math.min(nowUs + failoverUs, thin.sentAtUs + SLOW_GATEWAY_FACTOR * failoverUs);
          continue;
        }
        const next = this.pickGateway((thin.gateway + 1) % this.config.n);
        thin.gateway = next;
        thin.attempts++;
        thin.sentAtUs = nowUs;
        thin.failoverAtUs = nowUs + failoverUs;
        this.stats.failovers++;
        // Later commands go straight to the replica that is now trusted to answer.
        this.current = next;
        this.send(thin);
      }
    }
    return this.pending.size > 0;
  }

  private fail(thin: ThinCommand, error: PompeClientError): void {
    if (thin.cmd.outcome !== null) return;
    markFailed(thin.cmd, error);
    this.host.released(thin.cmd);
  }
}
