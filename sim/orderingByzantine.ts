/**
 * Byzantine replica behaviours against the ordering phase (THREATS.md "Against the ordering
 * phase") and, through sim/leaderAttacks.ts and sim/voterAttacks.ts, against consensus. Each runs
 * the honest core underneath and lies on top of it, signing with its own key only — a Byzantine
 * replica cannot forge another replica's signature, so neither does the simulation.
 */
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import { RefusalReason, type Message, type RefusalReason as Reason, type TsReplyMsg } from '../common/messages.js';
import { timestampMessage } from '../common/signing.js';
import { SlotClock } from '../ordering/slots.js';
import { LEADER_ATTACK_KINDS, leaderAttack, type LeaderAttackKind } from './leaderAttacks.js';
import type { OrderingChecker } from './orderingChecker.js';
import type { ReplicaBehaviour, ReplicaNode } from './replicaNode.js';
import type { Rng } from './rng.js';
import { impersonatingReplica } from './impersonatingReplica.js';
import { corruptChunks } from './checkpointAttacks.js';
import { fakeSeals } from './sealForgery.js';
import { conflictingVotes, sendGarbage } from './voterAttacks.js';

export const ORDERING_BYZANTINE_KINDS = [
  'silent',
  'extremeTimestamps',
  'staleTimestamps',
  'withhold',
  'alwaysLate',
  'alwaysBusy',
  'fakeSeal',
  ...LEADER_ATTACK_KINDS,
  'conflictingVote',
  'garbage',
  'impersonatingReplica',
  'corruptChunks',
] as const;
export type OrderingByzantineKind = (typeof ORDERING_BYZANTINE_KINDS)[number];

export interface BehaviourContext {
  readonly rng: Rng;
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  /** The Byzantine replica's own signer: the only key it holds. */
  readonly signer: Signer;
  readonly checker: OrderingChecker;
  /** Counts what the behaviour actually did ("fakeSeal:bogusOc", …), for the run summary and for
   *  tests that must know a threat was played, not merely configured. */
  readonly report: (action: string) => void;
  /** The public keys (hex) of the run's `impersonatingReplica`s, its own included: whom such a
   *  replica must not echo. */
  readonly impersonatorKeys: ReadonlySet<string>;
}

/** Far-future timestamps lie this far ahead of the liar's clock (minutes, as THREATS.md says). */
const FAR_FUTURE_US: readonly [number, number] = [60_000_000, 600_000_000];
/** Stale timestamps lie this many Δ in the past: a median made of them would be `late`. */
const STALE_DELTAS: readonly [number, number] = [1, 20];
/** Own earlier timestamps remembered, to reuse one for a rival batch (a tie on purpose). */
const RIVAL_MEMORY = 64;

export function orderingBehaviour(kind: OrderingByzantineKind, ctx: BehaviourContext): ReplicaBehaviour {
  switch (kind) {
    case 'silent':
      return { name: kind, outgoing: () => ctx.report('silent:dropped') };
    case 'extremeTimestamps':
      return timestampLiar(kind, ctx, extremeTimestamp(ctx));
    case 'staleTimestamps':
      return timestampLiar(kind, ctx, staleTimestamp(ctx));
    case 'withhold':
      return withhold(ctx);
    case 'alwaysLate':
      return refuseEverySequence(kind, ctx, RefusalReason.Late);
    case 'alwaysBusy':
      return refuseEverySequence(kind, ctx, RefusalReason.Busy);
    case 'fakeSeal':
      return fakeSeals(ctx);
    case 'conflictingVote':
      return conflictingVotes(ctx);
    case 'garbage':
      return sendGarbage(ctx);
    case 'impersonatingReplica':
      return impersonatingReplica(ctx);
    case 'corruptChunks':
      return corruptChunks(ctx);
    default:
      return leaderAttack(kind satisfies LeaderAttackKind, ctx);
  }
}

/** Picks a lie for the timestamp the honest core gave (`honest`), on this replica's clock (`nowUs`). */
type TimestampLie = (honest: number, nowUs: number) => { readonly ts: number; readonly label: string };

/** Replaces every timestamp reply with a lie, re-signed with its own key (the signature is valid:
 *  only the value is wrong, which no one can detect alone). */
function timestampLiar(kind: string, ctx: BehaviourContext, lie: TimestampLie): ReplicaBehaviour {
  return {
    name: kind,
    outgoing: (node, to, msg) => {
      if (msg.type !== 'tsReply' || msg.stamp.replica !== node.id) return node.send(to, msg);
      const { ts, label } = lie(msg.stamp.ts, node.localNowUs());
      ctx.report(`${kind}:${label}`);
      node.send(to, resign(ctx, node.id, msg, ts));
    },
  };
}

function resign(ctx: BehaviourContext, self: ReplicaId, msg: TsReplyMsg, ts: number): TsReplyMsg {
  const sig = ctx.signer.sign(timestampMessage(ctx.config.clusterId, msg.digest, ts, self));
  return { ...msg, stamp: { replica: self, ts, sig } };
}

/** Far past (just above the first slot), far future (minutes ahead), or a rival batch's timestamp. */
function extremeTimestamp(ctx: BehaviourContext): TimestampLie {
  const slots = new SlotClock(ctx.config.protocol);
  const given: number[] = [];
  return (honest, nowUs) => {
    const rival = given.length > 0 ? ctx.rng.pick(given) : null;
    given.push(honest);
    if (given.length > RIVAL_MEMORY) given.shift();
    switch (ctx.rng.int(0, 2)) {
      case 0:
        return { ts: slots.firstTimestampUs + ctx.rng.int(0, ctx.config.protocol.slotUs - 1), label: 'farPast' };
      case 1:
        return { ts: nowUs + ctx.rng.int(...FAR_FUTURE_US), label: 'farFuture' };
      default:
        return rival === null ? { ts: honest, label: 'honest' } : { ts: rival, label: 'rival' };
    }
  };
}

/** Timestamps Δ to 20Δ in the past, never below the first slot. */
function staleTimestamp(ctx: BehaviourContext): TimestampLie {
  const slots = new SlotClock(ctx.config.protocol);
  const { deltaUs } = ctx.config.protocol;
  return (_honest, nowUs) => ({
    ts: Math.max(slots.firstTimestampUs, nowUs - ctx.rng.int(STALE_DELTAS[0] * deltaUs, STALE_DELTAS[1] * deltaUs)),
    label: 'stale',
  });
}

/**
 * Withholds some of: timestamp replies, acks, seals (a vote's or timeout's attachment emptied, or
 * the vote dropped altogether) — always, or at random with a per-replica probability.
 */
function withhold(ctx: BehaviourContext): ReplicaBehaviour {
  const { rng } = ctx;
  const what = { ts: rng.chance(0.6), ack: rng.chance(0.6), seal: rng.chance(0.6) };
  if (!what.ts && !what.ack && !what.seal) what[rng.pick(['ts', 'ack', 'seal'] as const)] = true;
  const probability = rng.chance(0.5) ? 1 : 0.3 + rng.float() * 0.5;
  const dropVotes = rng.chance(0.3);
  const name = `withhold(${Object.entries(what).filter(([, on]) => on).map(([k]) => k).join('+')}, p=${probability.toFixed(2)}${dropVotes ? ', drops votes' : ''})`;
  return {
    name,
    outgoing: (node, to, msg) => {
      const hit = (): boolean => probability >= 1 || rng.chance(probability);
      if (msg.type === 'tsReply' && what.ts && hit()) return ctx.report('withhold:ts');
      if (msg.type === 'ack' && what.ack && hit()) return ctx.report('withhold:ack');
      if ((msg.type === 'vote' || msg.type === 'timeout') && what.seal && msg.attachment.length > 0 && hit()) {
        if (msg.type === 'vote' && dropVotes) return ctx.report('withhold:vote');
        ctx.report('withhold:seal');
        return node.send(to, { ...msg, attachment: new Uint8Array(0) });
      }
      node.send(to, msg);
    },
  };
}

/** Answers every Sequence with `late` (its frontier as the reason) or `busy`, and never acks. */
function refuseEverySequence(kind: string, ctx: BehaviourContext, reason: Reason): ReplicaBehaviour {
  return {
    name: kind,
    incoming: (node: ReplicaNode, from: number, msg: Message) => {
      if (msg.type !== 'sequence' || node.core === null) return true;
      const frontier = reason === RefusalReason.Late ? node.core.status().frontier : 0;
      ctx.report(`${kind}:refused`);
      node.send(from, { type: 'refused', digest: msg.oc.digest, replica: node.id, reason, frontier });
      return false;
    },
  };
}
