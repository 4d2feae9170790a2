/**
 * Byzantine collectors (THREATS.md "Against the ordering phase"). Any number of clients may be
 * Byzantine; none of them is owed liveness, but none may break what correct clients are owed.
 *  - medianPicker: waits for all n timestamp replies (or a deadline) and hands its collector the q
 *    that move the median furthest from the honest first-q median; the run reports the shift, and
 *    the checkers demand the timestamp stays within the correct replicas' range.
 *  - partialSequence: after forming the OC, sends phase 2 to only some replicas, or to none.
 *  - flooder: floods phase 1 with batches it never sequences; replicas' pending stores must stay
 *    within their bounds while honest batches keep being ordered.
 *  - duplicateSubmitter: an honest-looking client that submits commands twice (a ClientNode with
 *    `duplicates`); each must execute once.
 *  - slotHog: a direct-mode client from one connection keeping many batches in flight, far more per
 *    slot than the slot's ack capacity (a small one in such runs); other clients keep their share.
 *  - impersonatingClient: acts in a correct client's name (THREATS.md "Coordinated attacks"): batches
 *    naming the victim's key as collector, with the victim's sequence numbers and numbers far
 *    ahead, signed by itself (it holds no other key), and thin commands under the victim's key
 *    through the gateways. Every correct replica must refuse them; the victim's commands still
 *    execute, each once, as the victim wrote them.
 *  - registrationFlooder: proves fresh keys on ever new connections and drops the older ones
 *    (finding 4 of issue 11, as it stands once a connection proves one key: churn, not takeover).
 *    Every correct replica must hold exactly the connections that are open — nothing leaks — and
 *    correct clients keep their notices.
 * The first two are direct-mode ClientNodes with a CollectorTap; the flooder and the impersonator
 * are nodes of their own.
 */
import { BatchMode, encodeBatch } from '../common/batch.js';
import { batchSigner, signCommand } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import { encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { TsReplyMsg } from '../common/messages.js';
import { encodeKvCommand, KvOp } from '../ordering/kvStore.js';
import type { CollectorEvent } from '../ordering/collector.js';
import { medianTimestamp } from '../ordering/oc.js';
import { simClientSigner, type CollectorTap, type ReplyIn, type SendOut } from './clientNode.js';
import type { Rng } from './rng.js';
import type { SimNode, World } from './world.js';

export const BYZANTINE_CLIENT_KINDS = ['medianPicker', 'partialSequence', 'flooder', 'duplicateSubmitter', 'slotHog', 'impersonatingClient', 'registrationFlooder'] as const;
export type ByzantineClientKind = (typeof BYZANTINE_CLIENT_KINDS)[number];

interface Gathering {
  readonly replies: ReplyIn[];
  readonly deadlineUs: number;
  picked: boolean;
}

/**
 * A collector that holds back the timestamp replies of each attempt until all n arrive (or a
 * deadline, once it has q), then hands its collector the q that `pick` chooses: the collector forms
 * its OC from exactly those.
 */
export abstract class GatheringTap implements CollectorTap {
  private readonly gathering = new Map<string, Gathering>();

  constructor(
    protected readonly config: ClusterConfig,
    protected readonly crypto: CryptoBackend,
    private readonly gatherUs: number,
  ) {}

  /** The q replies to release, from those gathered (at least q). */
  protected abstract pick(replies: readonly ReplyIn[]): ReplyIn[];

  send(out: SendOut, nowUs: number): SendOut[] {
    // A submit to all starts an attempt (the first, or a restart with fresh timestamps).
    if (out.msg.type === 'submit' && out.to === 'all') {
      this.gathering.set(toHex(this.crypto.sha256(out.msg.batch)), { replies: [], deadlineUs: nowUs + this.gatherUs, picked: false });
    }
    return [out];
  }

  reply(reply: ReplyIn, nowUs: number): ReplyIn[] {
    if (reply.msg.type !== 'tsReply') return [reply];
    const g = this.gathering.get(toHex(reply.msg.digest));
    if (g === undefined || g.picked) return [reply];
    if (!g.replies.some((r) => r.from === reply.from)) g.replies.push(reply);
    return g.replies.length >= this.config.n || (nowUs >= g.deadlineUs && g.replies.length >= this.config.q) ? this.release(g) : [];
  }

  tick(nowUs: number): ReplyIn[] {
    const out: ReplyIn[] = [];
    for (const g of this.gathering.values()) if (!g.picked && nowUs >= g.deadlineUs && g.replies.length >= this.config.q) out.push(...this.release(g));
    return out;
  }

  /** Only a gathering that already holds q replies waits for its deadline; one with fewer picks
   *  when its q-th reply arrives (a wake for it now would spin at one instant). */
  nextWakeUs(): number | null {
    let next: number | null = null;
    for (const g of this.gathering.values()) {
      if (!g.picked && g.replies.length >= this.config.q && (next === null || g.deadlineUs < next)) next = g.deadlineUs;
    }
    return next;
  }

  event(event: CollectorEvent): void {
    if (event.kind !== 'ordered') this.gathering.delete(toHex(event.digest));
  }

  private release(g: Gathering): ReplyIn[] {
    g.picked = true;
    return this.pick(g.replies);
  }
}

/** How long a median picker waits for all n replies before choosing among those it has (≥ q). */
const GATHER_US = 300_000;

/**
 * Releases the q timestamp replies that push the median lowest or highest, whichever moves it
 * further from the honest median (the median of the first q to arrive).
 */
export class MedianPickerTap extends GatheringTap {
  /** Per digest: the median picked and how far it moved the honest one. */
  private readonly picks = new Map<string, { ts: number; shiftUs: number }>();
  maxShiftUs = 0;
  picksMade = 0;

  constructor(
    config: ClusterConfig,
    crypto: CryptoBackend,
    private readonly onShift: (shiftUs: number) => void,
  ) {
    super(config, crypto, GATHER_US);
  }

  override event(event: CollectorEvent): void {
    const key = toHex(event.digest);
    if (event.kind === 'ordered') {
      // The shift counts once the OC it came from actually sequenced the batch.
      const pick = this.picks.get(key);
      if (pick !== undefined && pick.ts === event.ts && pick.shiftUs > this.maxShiftUs) {
        this.maxShiftUs = pick.shiftUs;
        this.onShift(pick.shiftUs);
      }
    } else {
      this.picks.delete(key);
    }
    super.event(event);
  }

  protected pick(replies: readonly ReplyIn[]): ReplyIn[] {
    const { q, f } = this.config;
    const stamp = (r: ReplyIn): number => (r.msg as TsReplyMsg).stamp.ts;
    const honest = medianTimestamp(replies.slice(0, q).map((r) => (r.msg as TsReplyMsg).stamp), f);
    const sorted = [...replies].sort((a, b) => stamp(a) - stamp(b));
    const low = sorted.slice(0, q);
    const high = sorted.slice(sorted.length - q);
    const lowShift = Math.abs(stamp(low[f]!) - honest);
    const highShift = Math.abs(stamp(high[f]!) - honest);
    const chosen = lowShift >= highShift ? low : high;
    const digest = toHex((chosen[0]!.msg as TsReplyMsg).digest);
    this.picks.set(digest, { ts: stamp(chosen[f]!), shiftUs: Math.max(lowShift, highShift) });
    this.picksMade++;
    return chosen;
  }
}

/** Sends each batch's Sequence to a fixed random subset of the replicas (possibly none, possibly
 *  a quorum): the OC exists, but phase 2 reaches whom the client pleases. */
export class PartialSequenceTap implements CollectorTap {
  private readonly targets = new Map<string, readonly ReplicaId[]>();
  withheld = 0;

  constructor(
    private readonly config: ClusterConfig,
    private readonly rng: Rng,
  ) {}

  send(out: SendOut): SendOut[] {
    if (out.msg.type !== 'sequence') return [out];
    const key = toHex(out.msg.oc.digest);
    let targets = this.targets.get(key);
    if (targets === undefined) {
      const all = [...Array(this.config.n).keys()] as ReplicaId[];
      targets = this.rng.chance(0.25) ? [] : this.rng.shuffle(all).slice(0, this.rng.int(1, this.config.n - 1));
      this.targets.set(key, targets);
    }
    const wanted = out.to === 'all' ? targets : targets.filter((r) => r === out.to);
    this.withheld += (out.to === 'all' ? this.config.n : 1) - wanted.length;
    return wanted.map((to) => ({ to, msg: out.msg }));
  }

  reply(reply: ReplyIn): ReplyIn[] {
    return [reply];
  }

  tick(): ReplyIn[] {
    return [];
  }

  nextWakeUs(): null {
    return null;
  }

  event(event: CollectorEvent): void {
    if (event.kind !== 'ordered') this.targets.delete(toHex(event.digest));
  }
}

export interface FloodOptions extends SendingClientOptions {
  readonly rng: Rng;
  readonly stopAtUs: number;
  /** Batches to send in all, spread evenly over [startAtUs, stopAtUs). */
  readonly total: number;
  readonly burstIntervalUs: number;
  /** Far beyond the run, so no flood batch expires (and is pruned) before the run ends. */
  readonly lifetimeUs: number;
}

export interface SendingClientOptions {
  readonly id: number;
  readonly world: World;
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly startAtUs: number;
  /** Proves the node's own key at every replica. */
  readonly register: (node: number, publicKey: Uint8Array) => void;
}

/** What a Byzantine client node that only sends has: its own key (registered when it starts), a
 *  batch signer for it, a nonce, and a first wake-up. Replies are of no interest to it. */
abstract class SendingClient implements SimNode {
  readonly id: number;
  protected readonly signer: Signer;
  protected readonly sign: (body: Uint8Array) => Uint8Array;
  protected nonce = 0;

  constructor(private readonly base: SendingClientOptions) {
    this.id = base.id;
    this.signer = simClientSigner(base.crypto, base.id);
    this.sign = batchSigner(base.config.clusterId, base.crypto, this.signer);
  }

  start(): void {
    this.base.register(this.id, this.signer.publicKey);
    this.base.world.setWake(this.id, this.base.startAtUs);
  }

  onDeliver(): void {
    // It never sequences anything: refusals and timestamps alike are ignored.
  }

  abstract onWake(): void;
}

/** Floods phase 1: tiny batches to every replica, validly signed with its own key, never
 *  sequenced; it ignores every reply. */
export class FloodClient extends SendingClient {
  sent = 0;

  constructor(private readonly opts: FloodOptions) {
    super(opts);
  }

  onWake(): void {
    const { world, config, stopAtUs, startAtUs, total, burstIntervalUs, lifetimeUs, rng } = this.opts;
    const now = world.nowUs;
    if (now >= stopAtUs) return;
    const bursts = Math.max(1, Math.floor((stopAtUs - startAtUs) / burstIntervalUs));
    const perBurst = Math.ceil(total / bursts);
    for (let i = 0; i < perBurst && this.sent < total; i++) {
      const command = { seq: this.nonce + 1, payload: rng.bytes(8) };
      const bytes = encodeBatch(
        { mode: BatchMode.Direct, collectorKey: this.signer.publicKey, nonce: this.nonce++, expiresAtUs: now + lifetimeUs, commands: [command] },
        this.sign,
      );
      const frame = encodeMessage({ type: 'submit', batch: bytes });
      for (let r = 0; r < config.n; r++) world.send(this.id, r, frame);
      this.sent++;
    }
    if (this.sent < total) world.setWake(this.id, now + burstIntervalUs);
  }
}

export interface ImpersonatorOptions extends SendingClientOptions {
  readonly rng: Rng;
  /** Public keys of the clients it acts against (correct clients of the run). */
  readonly victims: readonly Uint8Array[];
  readonly stopAtUs: number;
  readonly intervalUs: number;
  readonly batchLifetimeUs: number;
  readonly report: (action: string) => void;
}

/** Sequence numbers it tries under a victim's key: the victim's own first ones (to pre-empt
 *  them), and ones far ahead (to move the victim's window past its real commands). */
const IMPERSONATED_SEQS: readonly number[] = [1, 2, 3, 4, 5, 2 ** 50, 2 ** 50 + 1];

/** Acts in correct clients' names with the only key it has, its own (see the module comment). */
export class ImpersonatorClient extends SendingClient {
  constructor(private readonly opts: ImpersonatorOptions) {
    super(opts);
  }

  onWake(): void {
    const { world, config, crypto, rng, victims, stopAtUs, intervalUs, batchLifetimeUs, report } = this.opts;
    const now = world.nowUs;
    if (now >= stopAtUs || victims.length === 0) return;
    const victim = rng.pick(victims);
    const seq = rng.pick(IMPERSONATED_SEQS);
    const payload = encodeKvCommand(KvOp.Put, Uint8Array.of(0, 0, 0, 0, 0, 0, 0, rng.int(0, 255)), Uint8Array.of(0x66));
    const expiresAtUs = now + batchLifetimeUs;
    // A direct batch naming the victim as collector, signed by the impersonator.
    const batch = encodeBatch({ mode: BatchMode.Direct, collectorKey: victim, nonce: this.nonce++, expiresAtUs, commands: [{ seq, payload }] }, this.sign);
    const submit = encodeMessage({ type: 'submit', batch });
    for (let r = 0; r < config.n; r++) world.send(this.id, r, submit);
    report('impersonatingClient:batches');
    // A thin command under the victim's key, with its own signature, through one gateway.
    const own = signCommand(config.clusterId, crypto, this.signer, { seq, expiresAtUs, payload });
    world.send(this.id, rng.int(0, config.n - 1), encodeMessage({ type: 'command', ...own, clientKey: victim }));
    report('impersonatingClient:commands');
    world.setWake(this.id, now + intervalUs);
  }
}

export interface RegistrationFloodOptions extends SendingClientOptions {
  readonly stopAtUs: number;
  readonly intervalUs: number;
  /** Fresh connections (each with a fresh key) it opens per wake-up. */
  readonly perWake: number;
  /** Connections it keeps open; older ones are closed as new ones come. */
  readonly keep: number;
  /** Where its connection numbers start: apart from every node's id. */
  readonly firstConn: number;
  readonly unregister: (conn: number) => void;
  readonly report: (action: string) => void;
}

/** Opens connection after connection, each proving a fresh key, and closes the older ones. */
export class RegistrationFlooder extends SendingClient {
  private readonly open: number[] = [];
  private nextConn: number;

  constructor(private readonly opts: RegistrationFloodOptions) {
    super(opts);
    this.nextConn = opts.firstConn;
  }

  onWake(): void {
    const { world, crypto, stopAtUs, intervalUs, perWake, keep, register, unregister, report } = this.opts;
    const now = world.nowUs;
    if (now >= stopAtUs) return;
    for (let i = 0; i < perWake; i++) {
      const conn = this.nextConn++;
      register(conn, simClientSigner(crypto, conn).publicKey);
      this.open.push(conn);
      report('registrationFlooder:registered');
    }
    while (this.open.length > keep) {
      unregister(this.open.shift()!);
      report('registrationFlooder:closed');
    }
    world.setWake(this.id, now + intervalUs);
  }
}
