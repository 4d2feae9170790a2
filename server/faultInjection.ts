/**
 * Fault injection for experiments and tests: a replica process that misbehaves on purpose, so a
 * real cluster can be measured under attack (`pompe replica --byzantine <kind>`). It wraps the
 * honest core the driver steps and lies on top of it, signing with its own key only, as a
 * Byzantine replica can.
 *
 *  - withhold: the replica half of issue 11's stall attack (sim/coalitions.ts plays it in the
 *    simulator): it serves no batch bytes to anyone, claims in every seal a frontier far beyond its
 *    clock (so leaders that prefer the furthest seals take its seal), and leaves every view it
 *    enters at once (so its timeout, with its seal, is the first any next leader holds). With a
 *    client that sequences a batch at this replica only (scripts/attack-hostage.ts), the batch's
 *    bytes exist nowhere else.
 */
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import { decodeSealAttachment, encodeSealAttachment } from '../common/codec.js';
import type { ReplicaId, Slot } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { signSeal } from '../ordering/seal.js';
import type { ReplicaInput, ReplicaOutput } from '../ordering/types.js';
import type { DrivenCore } from './drive.js';

export const BYZANTINE_KINDS = ['withhold'] as const;
export type ByzantineKind = (typeof BYZANTINE_KINDS)[number];

/** How far beyond its real frontier a withholding replica claims to have sealed. */
const INFLATE_SLOTS = 1_000_000;

export interface FaultContext {
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  readonly crypto: CryptoBackend;
  readonly signer: Signer;
  /** Feeds an input to the driver later (never from inside a step). */
  readonly inputSoon: (input: ReplicaInput) => void;
}

/** What the lies did, for the log and /status. */
export interface FaultCounters {
  bytesWithheld: number;
  sealsInflated: number;
  earlyTimeouts: number;
}

export function injectFaults(kind: ByzantineKind, core: DrivenCore, ctx: FaultContext): { core: DrivenCore; counters: FaultCounters } {
  const counters: FaultCounters = { bytesWithheld: 0, sealsInflated: 0, earlyTimeouts: 0 };
  let timedOutView = -1;
  const rewrite = (msg: Message): Message | null => {
    if (msg.type === 'batchResponse') {
      counters.bytesWithheld += msg.batches.length;
      return null;
    }
    if ((msg.type === 'vote' || msg.type === 'timeout') && msg.attachment.length > 0) {
      const decoded = decodeSealAttachment(msg.attachment, { replicaCount: ctx.config.n });
      if (!decoded.ok || decoded.value === null) return msg;
      const { seal, ocs } = decoded.value;
      const inflated = signSeal(ctx.config, ctx.crypto, ctx.signer, ctx.self, seal.fromSlot, (seal.toSlot + INFLATE_SLOTS) as Slot, seal.entries);
      counters.sealsInflated++;
      return { ...msg, attachment: encodeSealAttachment({ seal: inflated, ocs }) };
    }
    return msg;
  };
  const wrapped: DrivenCore = {
    step(input: ReplicaInput, nowUs: number): ReplicaOutput {
      const out = core.step(input, nowUs);
      const toPeers = out.toPeers.flatMap(({ to, msg }) => {
        const m = rewrite(msg);
        return m === null ? [] : [{ to, msg: m }];
      });
      out.toPeers.length = 0;
      out.toPeers.push(...toPeers);
      counters.bytesWithheld += out.serveBatches.reduce((s, r) => s + r.digests.length, 0);
      out.serveBatches.length = 0;
      if (core.view > timedOutView) {
        timedOutView = core.view;
        counters.earlyTimeouts++;
        ctx.inputSoon({ kind: 'timeoutNow' });
      }
      return out;
    },
    triageClient: (conn, msg, nowUs, queued) => core.triageClient(conn, msg, nowUs, queued),
    nextWakeUs: () => core.nextWakeUs(),
    get view() {
      return core.view;
    },
  };
  return { core: wrapped, counters };
}

export function parseByzantineKind(text: string): ByzantineKind | null {
  return (BYZANTINE_KINDS as readonly string[]).includes(text) ? (text as ByzantineKind) : null;
}
