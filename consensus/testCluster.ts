/**
 * A hand-driven cluster of HotStuff cores for consensus tests: no simulator, no network model —
 * a FIFO message pump with zero latency, a virtual clock that jumps to the next wake-up, and a
 * routing hook through which a test drops, rewrites or injects messages. Every message goes
 * through the wire codec, and every output is applied the way a driver must: persist, then send,
 * then commit. Signatures are recorded at the moment they are made, so a test sees votes that
 * never leave the replica (a leader's vote for its own block).
 */
import { assert } from '../common/assert.js';
import { ByteReader, toHex, utf8 } from '../common/bytes.js';
import { decodeMessage, encodeMessage } from '../common/codec.js';
import { type ClusterConfig, generateCluster } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { CryptoBackend, KeyPair, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { ConsensusMsg } from '../common/messages.js';
import { DomainTag } from '../common/signing.js';
import { HotStuff } from './core.js';
import { MemoryConsensusStorage } from './storage.js';
import { TestApp, type TestAppOptions } from './testApp.js';
import type { CommitRule, ConsensusInput, ConsensusOutput, PeerFault } from './types.js';

export interface TestClusterOptions {
  readonly rule: CommitRule;
  readonly n?: number;
  /** View timeout (the first; it backs off to 8×). */
  readonly viewTimeoutMs?: number;
  readonly blockIntervalUs?: number;
  readonly fillerBytes?: number;
  /** Per-replica App options beyond the defaults (e.g. delayed validation). */
  readonly app?: (replica: ReplicaId) => Partial<TestAppOptions>;
}

export interface Envelope {
  readonly from: ReplicaId;
  readonly to: ReplicaId;
  readonly msg: ConsensusMsg;
}

/** A signature a replica made: a vote for `block` in `view`, or a timeout in `view`. */
export interface SignedStatement {
  readonly kind: 'vote' | 'timeout';
  readonly view: number;
  /** Hex digest of the voted block (votes only). */
  readonly block: string | null;
  readonly atUs: number;
  /** Which incarnation of the replica signed (0 before the first restart). */
  readonly incarnation: number;
}

export interface StepRecord {
  readonly replica: ReplicaId;
  readonly input: ConsensusInput['kind'] | 'start';
  readonly atUs: number;
  readonly out: ConsensusOutput;
}

export interface CommitRecord {
  readonly height: number;
  readonly digest: string;
}

export interface TestReplica {
  readonly id: ReplicaId;
  core: HotStuff | null;
  app: TestApp;
  readonly storage: MemoryConsensusStorage;
  /** Every block this replica committed, in order, across restarts. */
  readonly commits: CommitRecord[];
  readonly faults: PeerFault[];
  readonly signed: SignedStatement[];
  incarnation: number;
}

const VOTE_TAG = utf8(DomainTag.Vote);
const TIMEOUT_TAG = utf8(DomainTag.Timeout);
const CLUSTER_ID_BYTES = 32;
/** A pump that delivers this many messages without going quiet is in a loop. */
const MAX_MESSAGES_PER_PUMP = 1_000_000;

export class TestCluster {
  readonly config: ClusterConfig;
  readonly keyPairs: readonly KeyPair[];
  readonly crypto: CryptoBackend = nodeCrypto;
  readonly replicas: TestReplica[] = [];
  nowUs = 0;
  /** Every step's output, in order. */
  readonly steps: StepRecord[] = [];
  /** Messages sent by a replica before the safety state they depend on was durable. */
  readonly durabilityViolations: string[] = [];
  /** Decides what arrives for each message sent: [] drops it, other messages replace it. */
  route: (env: Envelope) => readonly ConsensusMsg[] = (env) => [env.msg];
  private readonly queue: { readonly from: ReplicaId; readonly to: ReplicaId; readonly bytes: Uint8Array }[] = [];

  constructor(private readonly opts: TestClusterOptions) {
    const n = opts.n ?? 4;
    const viewTimeoutMs = opts.viewTimeoutMs ?? 50;
    const generated = generateCluster(
      {
        n,
        keySeed: `test-cluster-${n}`,
        protocol: { commitRule: opts.rule, genesisUs: 0, viewTimeoutMs, maxViewTimeoutMs: 8 * viewTimeoutMs },
      },
      this.crypto,
    );
    this.config = generated.config;
    this.keyPairs = generated.keyPairs;
    for (let i = 0; i < n; i++) {
      const id = i as ReplicaId;
      this.replicas.push({
        id,
        core: null,
        app: this.newApp(id),
        storage: new MemoryConsensusStorage(),
        commits: [],
        faults: [],
        signed: [],
        incarnation: 0,
      });
    }
  }

  get n(): number {
    return this.config.n;
  }

  /** Starts every replica (or the given ones) from its storage. */
  start(ids: readonly number[] = this.replicas.map((r) => r.id)): void {
    for (const id of ids) this.boot(this.replicas[id]!);
  }

  /** Drops the core and everything in memory; storage survives, as after a killed process. */
  crash(id: number): void {
    this.replicas[id]!.core = null;
  }

  /** A new core from what the storage holds (storage.loadSync()), then `start`. */
  restart(id: number): void {
    const r = this.replicas[id]!;
    assert(r.core === null, `replica ${id} is running`);
    r.incarnation++;
    r.app = this.newApp(r.id);
    this.boot(r);
  }

  core(id: number): HotStuff {
    const core = this.replicas[id]!.core;
    assert(core !== null, `replica ${id} is down`);
    return core;
  }

  /** Feeds one input to a replica and applies the output as a driver does. */
  step(id: number, input: ConsensusInput | { readonly kind: 'start' }): ConsensusOutput {
    const r = this.replicas[id]!;
    const out = this.core(id).step(input, this.nowUs);
    this.steps.push({ replica: r.id, input: input.kind, atUs: this.nowUs, out });
    // 1. persist
    r.storage.applySync(out.persist);
    // 2. send
    for (const { to, msg } of out.send) {
      this.checkDurable(r, msg);
      const targets = to === 'all' ? this.replicas.filter((p) => p.id !== r.id).map((p) => p.id) : [to];
      for (const t of targets) this.send(r.id, t, msg);
    }
    for (const req of out.serveFromStorage) {
      const blocks = r.storage.readBlocksSync(req.digest, req.maxBlocks);
      if (blocks.length > 0) this.send(r.id, req.to, { type: 'blockResponse', blocks });
    }
    // 3. apply commits
    for (const c of out.commits) r.commits.push({ height: c.block.height, digest: toHex(c.digest) });
    r.faults.push(...out.faults);
    return out;
  }

  /** Queues a message as if `from` had sent it (through the routing hook). */
  send(from: ReplicaId, to: ReplicaId, msg: ConsensusMsg): void {
    for (const m of this.route({ from, to, msg })) this.queue.push({ from, to, bytes: encodeMessage(m) });
  }

  /** Queues a message that bypasses the routing hook. */
  inject(from: number, to: number, msg: ConsensusMsg): void {
    this.queue.push({ from: from as ReplicaId, to: to as ReplicaId, bytes: encodeMessage(msg) });
  }

  /** Delivers queued messages (and those they cause) until none is left; returns how many. */
  pump(): number {
    let delivered = 0;
    while (this.queue.length > 0) {
      assert(++delivered < MAX_MESSAGES_PER_PUMP, 'message pump does not go quiet');
      const { from, to, bytes } = this.queue.shift()!;
      if (this.replicas[to]!.core === null) continue;
      const decoded = decodeMessage(bytes, { replicaCount: this.n });
      assert(decoded.ok, 'a core sent a message the codec refuses');
      this.step(to, { kind: 'message', from, msg: decoded.value as ConsensusMsg });
    }
    return delivered;
  }

  /** Pumps messages and fires due wake-ups until virtual time `untilUs`. */
  runUntil(untilUs: number): void {
    for (;;) {
      this.pump();
      let next = Infinity;
      for (const r of this.replicas) {
        const wake = r.core?.nextWakeUs() ?? null;
        if (wake !== null && wake < next) next = wake;
      }
      if (next > untilUs) break;
      this.nowUs = Math.max(this.nowUs, next);
      for (const r of this.replicas) {
        const wake = r.core?.nextWakeUs() ?? null;
        if (wake !== null && wake <= this.nowUs) this.step(r.id, { kind: 'tick' });
      }
    }
    this.nowUs = Math.max(this.nowUs, untilUs);
  }

  runFor(us: number): void {
    this.runUntil(this.nowUs + us);
  }

  /** Committed height of a replica (from what it reported, across restarts). */
  height(id: number): number {
    const c = this.replicas[id]!.commits;
    return c.length === 0 ? 0 : c[c.length - 1]!.height;
  }

  /** Problems with agreement among the given replicas: a height committed with two digests, or
   *  a replica whose commits are not contiguous from height 1. Empty when all is well. */
  agreementProblems(ids: readonly number[] = this.replicas.map((r) => r.id)): string[] {
    const problems: string[] = [];
    const byHeight = new Map<number, string>();
    for (const id of ids) {
      const commits = this.replicas[id]!.commits;
      commits.forEach((c, i) => {
        if (c.height !== i + 1) problems.push(`replica ${id}: commit #${i + 1} is height ${c.height}`);
        const known = byHeight.get(c.height);
        if (known === undefined) byHeight.set(c.height, c.digest);
        else if (known !== c.digest) problems.push(`height ${c.height}: ${known.slice(0, 8)} vs ${c.digest.slice(0, 8)} at replica ${id}`);
      });
    }
    return problems;
  }

  /** Messages of one type sent (as the cores emitted them, before routing). */
  sent<T extends ConsensusMsg['type']>(type: T, by?: number): { from: ReplicaId; atUs: number; msg: Extract<ConsensusMsg, { type: T }> }[] {
    const found: { from: ReplicaId; atUs: number; msg: Extract<ConsensusMsg, { type: T }> }[] = [];
    for (const s of this.steps) {
      if (by !== undefined && s.replica !== by) continue;
      for (const o of s.out.send) {
        if (o.msg.type === type) found.push({ from: s.replica, atUs: s.atUs, msg: o.msg as Extract<ConsensusMsg, { type: T }> });
      }
    }
    return found;
  }

  private boot(r: TestReplica): void {
    r.core = new HotStuff({
      config: this.config,
      self: r.id,
      crypto: this.crypto,
      signer: this.recordingSigner(r),
      app: r.app,
      recovered: r.storage.loadSync(),
    });
    this.step(r.id, { kind: 'start' });
  }

  private newApp(id: ReplicaId): TestApp {
    return new TestApp({
      self: id,
      blockIntervalUs: this.opts.blockIntervalUs ?? 1_000,
      fillerBytes: this.opts.fillerBytes ?? 16,
      ...this.opts.app?.(id),
    });
  }

  private recordingSigner(r: TestReplica): Signer {
    const base = this.crypto.signer(this.keyPairs[r.id]!.secretKey);
    return {
      publicKey: base.publicKey,
      sign: (message) => {
        const statement = this.parseStatement(message, r.incarnation);
        if (statement !== null) r.signed.push(statement);
        return base.sign(message);
      },
    };
  }

  private parseStatement(message: Uint8Array, incarnation: number): SignedStatement | null {
    const is = (tag: Uint8Array): boolean => message[0] === tag.length && tag.every((b, i) => message[1 + i] === b);
    const kind = is(VOTE_TAG) ? 'vote' : is(TIMEOUT_TAG) ? 'timeout' : null;
    if (kind === null) return null;
    const reader = new ByteReader(message.subarray(1 + message[0]! + CLUSTER_ID_BYTES));
    const view = reader.u64();
    const block = kind === 'vote' ? toHex(reader.bytes(32)) : null;
    return { kind, view, block, atUs: this.nowUs, incarnation };
  }

  /** A vote or a first timeout must leave only once storage says this replica voted that view. */
  private checkDurable(r: TestReplica, msg: ConsensusMsg): void {
    if (msg.type !== 'vote' && msg.type !== 'timeout') return;
    const durable = r.storage.loadSync().safety?.lastVotedView ?? 0;
    if (durable < msg.view) {
      this.durabilityViolations.push(`replica ${r.id} sent a ${msg.type} for view ${msg.view} with lastVotedView ${durable} durable`);
    }
  }
}
