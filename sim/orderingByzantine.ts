/**
 * Byzantine replica behaviours against the ordering phase (THREATS.md "Against the ordering
 * phase" and the leader attacks of "Against the consensus phase"). Each runs the honest core and
 * lies on top of it with its own key only.
 */
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { OrderingChecker } from './orderingChecker.js';
import type { ReplicaBehaviour } from './replicaNode.js';
import type { Rng } from './rng.js';

export const ORDERING_BYZANTINE_KINDS = ['silent'] as const;
export type OrderingByzantineKind = (typeof ORDERING_BYZANTINE_KINDS)[number];

export interface BehaviourContext {
  readonly rng: Rng;
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly signer: Signer;
  readonly checker: OrderingChecker;
}

export function orderingBehaviour(kind: OrderingByzantineKind, _ctx: BehaviourContext): ReplicaBehaviour {
  switch (kind) {
    case 'silent':
      return { name: kind, outgoing: () => {} };
  }
}
