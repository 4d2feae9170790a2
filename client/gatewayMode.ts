/**
 * Gateway mode: the client sends each command on its own (`command` with its (client id, seq) tag)
 * to one replica, which batches thin clients' commands and runs the ordering phase for them, then
 * answers `commandOrdered` and `commandExecuted` (once f+1 replicas agree on the result). A command
 * the gateway has not answered within `gatewayFailoverMs` is sent again, same tag, through the next
 * replica whose link is up, which becomes the gateway for later commands too; the tag makes the
 * command execute once however many gateways carried it (a late copy reports status 'duplicate').
 *
 * The client trusts its gateway's reports (they are not signed by f+1 replicas); a client that
 * cannot trust one replica uses direct mode.
 */
import { encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';
import type { ReplicaLinks } from './links.js';
import type { ResolvedOptions } from './options.js';
import { markExecuted, markFailed, markOrdered, type EngineHost, type PendingCommand } from './pending.js';
import { parseCommandResult } from './results.js';
import { Sweeper, sweepIntervalFor } from './sweeper.js';

interface ThinCommand {
  readonly cmd: PendingCommand;
  readonly frame: Uint8Array;
  gateway: number;
  attempts: number;
  failoverAtUs: number;
  readonly deadlineUs: number;
}

export interface GatewayStats {
  sent: number;
  failovers: number;
  /** Replies for commands no longer pending (answered by another gateway first, or late). */
  lateReplies: number;
}

export class GatewayEngine {
  private readonly pending = new Map<number, ThinCommand>();
  private current: number;
  private readonly sweeper: Sweeper;
  private closed = false;
  readonly stats: GatewayStats = { sent: 0, failovers: 0, lateReplies: 0 };

  constructor(
    private readonly config: ClusterConfig,
    private readonly links: ReplicaLinks,
    private readonly opts: ResolvedOptions,
    private readonly host: EngineHost,
  ) {
    this.current = opts.gateway;
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
    const frame = encodeMessage({ type: 'command', clientId: this.opts.clientId, seq: cmd.seq, payload: cmd.payload });
    const thin: ThinCommand = {
      cmd,
      frame,
      gateway: this.pickGateway(this.current),
      attempts: 1,
      failoverAtUs: nowUs + this.opts.gatewayFailoverMs * 1000,
      deadlineUs: nowUs + this.opts.timeoutMs * 1000,
    };
    this.current = thin.gateway;
    this.pending.set(cmd.seq, thin);
    this.send(thin);
    this.sweeper.poke();
  }

  onMessage(_from: ReplicaId, msg: Message): void {
    if (msg.type !== 'commandOrdered' && msg.type !== 'commandExecuted') return;
    if (msg.clientId !== this.opts.clientId) return;
    const thin = this.pending.get(msg.seq);
    if (thin === undefined) {
      this.stats.lateReplies++;
      return;
    }
    const nowUs = this.opts.clock();
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
        const next = this.pickGateway((thin.gateway + 1) % this.config.n);
        thin.gateway = next;
        thin.attempts++;
        thin.failoverAtUs = nowUs + this.opts.gatewayFailoverMs * 1000;
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
