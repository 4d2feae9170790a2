import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AssertionError } from '../common/assert.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import { MAX_SYNC_RESPONSE_BYTES } from '../common/limits.js';
import { RefusalReason, type Block, type CheckpointCert, type Message } from '../common/messages.js';
import type { StoredCheckpoint } from '../ordering/checkpointFormat.js';
import { emptyOutput } from '../ordering/context.js';
import type { ReplicaRecovery, ReplicaStorage } from '../ordering/storage.js';
import type { ClientIdentity } from '../ordering/clientKeys.js';
import type { ClientTriage, QueuedSubmissions, ReplicaInput, ReplicaOutput, ReplicaPersistOp } from '../ordering/types.js';
import { Driver, MAX_SERVES_IN_FLIGHT_PER_PEER, SERVE_BACKLOG_MAX_BYTES, type DrivenCore, type Sender } from './drive.js';
import { ReplicaMetrics } from './metrics.js';

const silent = pino({ level: 'silent' });

function output(parts: Partial<ReplicaOutput> = {}): ReplicaOutput {
  // persistSeq 0 and sendAfter −1: the driver numbers the persists and sends after all earlier ones.
  return { ...emptyOutput(), sendAfter: -1, ...parts };
}

const note = (text: string): Message => ({ type: 'error', code: 'NOTE', message: text });
const frontierOp = (slot: number): ReplicaPersistOp => ({ kind: 'frontier', slot: slot as never });

/** A core that returns scripted outputs, one per step, and records its inputs. */
class ScriptedCore implements DrivenCore {
  readonly inputs: ReplicaInput[] = [];
  readonly outputs: ReplicaOutput[] = [];
  wakeUs: number | null = null;
  view = 1;
  throwOnNext: Error | null = null;
  triage: ClientTriage = 'normal';

  onStep: (() => void) | null = null;

  step(input: ReplicaInput): ReplicaOutput {
    this.inputs.push(input);
    this.onStep?.();
    if (this.throwOnNext !== null) throw this.throwOnNext;
    return this.outputs.shift() ?? output();
  }
  readonly triageQueued: QueuedSubmissions[] = [];
  triageClient(_conn: number, _msg: Message, _nowUs: number, queued: QueuedSubmissions): ClientTriage {
    this.triageQueued.push(queued);
    return this.triage;
  }
  nextWakeUs(): number | null {
    return this.wakeUs;
  }
}

/** A store whose applies resolve when the test says so. */
class ManualStorage implements ReplicaStorage {
  readonly applies: { ops: readonly ReplicaPersistOp[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  batches = new Map<string, Uint8Array>();
  readsStarted = 0;
  private readonly gates: (() => void)[] = [];
  gateReads = false;

  apply(ops: readonly ReplicaPersistOp[]): Promise<void> {
    return new Promise((resolve, reject) => this.applies.push({ ops, resolve, reject }));
  }
  async load(): Promise<ReplicaRecovery> {
    throw new Error('not used');
  }
  blockReadsStarted = 0;
  async readBlocks(): Promise<Block[]> {
    this.blockReadsStarted++;
    if (this.gateReads) await new Promise<void>((r) => this.gates.push(r));
    return [];
  }
  async readBatches(digests: readonly Digest[]): Promise<Uint8Array[]> {
    this.readsStarted++;
    if (this.gateReads) await new Promise<void>((r) => this.gates.push(r));
    return digests.flatMap((d) => this.batches.get(String(d[0])) ?? []);
  }
  openGates(): void {
    for (const g of this.gates.splice(0)) g();
  }
  writeCheckpoint(): Promise<StoredCheckpoint> {
    throw new Error('not used');
  }
  async readCheckpointPiece(): Promise<Uint8Array | undefined> {
    return undefined;
  }
  checkpointChunks(): AsyncIterable<Uint8Array> {
    throw new Error('not used');
  }
  stableCert: CheckpointCert | null = null;
  latestStableCert(): CheckpointCert | null {
    return this.stableCert;
  }
}

class RecordingSender implements Sender {
  readonly sent: string[] = [];
  backlog = 0;
  peerBacklogBytes(): number {
    return this.backlog;
  }
  readonly messages: { to: number | 'all'; msg: Message }[] = [];
  sendToPeer(to: ReplicaId, msg: Message): void {
    this.messages.push({ to, msg });
    this.sent.push(msg.type === 'error' ? msg.message : msg.type);
  }
  broadcastToPeers(msg: Message): void {
    this.messages.push({ to: 'all', msg });
    this.sent.push(msg.type === 'error' ? msg.message : msg.type);
  }
  sendToClient(_conn: number, msg: Message): boolean {
    this.sent.push(msg.type === 'error' ? msg.message : msg.type);
    return true;
  }
  readonly shed: number[] = [];
  shedClient(conn: number): void {
    this.shed.push(conn);
  }
}

let core: ScriptedCore;
let storage: ManualStorage;
let sender: RecordingSender;
let fatal: unknown[];
let nowUs: number;
let driver: Driver;

const flushMicrotasks = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

beforeEach(() => {
  core = new ScriptedCore();
  storage = new ManualStorage();
  sender = new RecordingSender();
  fatal = [];
  nowUs = 1_000_000;
  driver = new Driver({ core, storage, sender, metrics: new ReplicaMetrics(), logger: silent, clockUs: () => nowUs, onFatal: (e) => fatal.push(e) });
});

afterEach(() => {
  driver.stop();
  vi.useRealTimers();
});

const peerInput = (n: number): ReplicaInput => ({ kind: 'peer', from: 1 as ReplicaId, msg: note(`in${n}`) });

describe('Driver: persist before send', () => {
  it('sends an output without persist at once when nothing waits before it', () => {
    core.outputs.push(output(), output({ toPeers: [{ to: 'all', msg: note('a') }], toClients: [{ conn: 3, msg: note('b') }] }));
    driver.start();
    driver.input(peerInput(1));
    expect(sender.sent).toEqual(['a', 'b']);
  });

  it('holds an output until its persist is durable', async () => {
    core.outputs.push(output(), output({ persist: [frontierOp(1)], toPeers: [{ to: 2 as ReplicaId, msg: note('seal') }] }));
    driver.start();
    driver.input(peerInput(1));
    expect(storage.applies).toHaveLength(1);
    expect(sender.sent).toEqual([]);
    storage.applies[0]!.resolve();
    await flushMicrotasks();
    expect(sender.sent).toEqual(['seal']);
  });

  it('sends in step order: later outputs wait for every earlier persist, even ones without persist', async () => {
    core.outputs.push(
      output(),
      output({ persist: [frontierOp(1)], toPeers: [{ to: 'all', msg: note('first') }] }),
      output({ toClients: [{ conn: 1, msg: note('no-persist') }] }),
      output({ persist: [frontierOp(2)], toPeers: [{ to: 'all', msg: note('third') }] }),
    );
    driver.start();
    for (let i = 1; i <= 3; i++) driver.input(peerInput(i));
    expect(storage.applies).toHaveLength(2);
    // The later persist finishes first: nothing may leave before the earlier one.
    storage.applies[1]!.resolve();
    await flushMicrotasks();
    expect(sender.sent).toEqual([]);
    expect(driver.stats().sendBacklog).toBe(3);
    storage.applies[0]!.resolve();
    await flushMicrotasks();
    expect(sender.sent).toEqual(['first', 'no-persist', 'third']);
    expect(driver.stats().sendBacklog).toBe(0);
  });

  it('sends an output as soon as the persists it relies on are durable, not every earlier one', async () => {
    core.outputs.push(
      output(),
      output({ persist: [frontierOp(1)], persistSeq: 1, sendAfter: 1, toPeers: [{ to: 'all', msg: note('reservation') }] }),
      output({ persist: [frontierOp(2)], persistSeq: 2, sendAfter: 2, toPeers: [{ to: 'all', msg: note('ack') }] }),
      // Relies on persist 1 only (a timestamp under the reservation written by output 1).
      output({ toClients: [{ conn: 1, msg: note('tsReply') }], sendAfter: 1 }),
      // Relies on nothing in flight (a refusal).
      output({ toClients: [{ conn: 1, msg: note('refusal') }], sendAfter: 0 }),
    );
    driver.start();
    for (let i = 1; i <= 4; i++) driver.input(peerInput(i));
    expect(sender.sent).toEqual(['refusal']);
    storage.applies[0]!.resolve();
    await flushMicrotasks();
    expect(sender.sent).toEqual(['refusal', 'reservation', 'tsReply']);
    storage.applies[1]!.resolve();
    await flushMicrotasks();
    expect(sender.sent).toEqual(['refusal', 'reservation', 'tsReply', 'ack']);
  });

  it('refuses an output whose persist number disagrees with the order the driver saw', () => {
    core.outputs.push(output(), output({ persist: [frontierOp(1)], persistSeq: 2, sendAfter: 2 }));
    driver.start();
    driver.input(peerInput(1));
    expect(fatal).toHaveLength(1);
  });

  it('drains: stop() refuses input, drain() resolves once the started persists are sent', async () => {
    core.outputs.push(output(), output({ persist: [frontierOp(1)], toPeers: [{ to: 'all', msg: note('late') }] }));
    driver.start();
    driver.input(peerInput(1));
    driver.stop();
    driver.input(peerInput(2));
    expect(core.inputs.map((i) => i.kind)).toEqual(['start', 'peer']);
    let drained = false;
    void driver.drain().then(() => (drained = true));
    await flushMicrotasks();
    expect(drained).toBe(false);
    storage.applies[0]!.resolve();
    await flushMicrotasks();
    expect(drained).toBe(true);
    expect(sender.sent).toEqual(['late']);
  });
});

describe('Driver: failures are fatal', () => {
  it('stops for good when the core throws', () => {
    driver.start();
    core.throwOnNext = new AssertionError('broken');
    driver.input(peerInput(1));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toBeInstanceOf(AssertionError);
    core.throwOnNext = null;
    driver.input(peerInput(2));
    expect(core.inputs).toHaveLength(2); // start and the one that threw
    expect(driver.running).toBe(false);
  });

  it('stops for good when a write fails, and never sends what depended on it', async () => {
    core.outputs.push(output(), output({ persist: [frontierOp(1)], toPeers: [{ to: 'all', msg: note('never') }] }));
    driver.start();
    driver.input(peerInput(1));
    storage.applies[0]!.reject(new Error('disk on fire'));
    await flushMicrotasks();
    expect(fatal).toHaveLength(1);
    expect(sender.sent).toEqual([]);
    driver.input(peerInput(2));
    expect(core.inputs).toHaveLength(2);
  });
});

describe('Driver: the timer', () => {
  it('ticks at nextWakeUs, replacing the previous timer', () => {
    vi.useFakeTimers();
    core.wakeUs = nowUs + 50_000;
    driver.start();
    core.wakeUs = nowUs + 10_000; // an earlier deadline after the next step
    driver.input(peerInput(1));
    vi.advanceTimersByTime(9);
    expect(core.inputs.map((i) => i.kind)).toEqual(['start', 'peer']);
    nowUs += 10_000;
    core.wakeUs = null;
    vi.advanceTimersByTime(1);
    expect(core.inputs.map((i) => i.kind)).toEqual(['start', 'peer', 'tick']);
    vi.advanceTimersByTime(100);
    expect(core.inputs).toHaveLength(3); // the 50 ms timer was replaced, and no wake is due now
  });

  it('ticks at once for a deadline in the past', () => {
    vi.useFakeTimers();
    core.wakeUs = nowUs - 5_000;
    driver.start();
    core.wakeUs = null;
    vi.advanceTimersByTime(1);
    expect(core.inputs.map((i) => i.kind)).toEqual(['start', 'tick']);
  });
});

describe('Driver: serving reads', () => {
  it('splits a batch response at MAX_SYNC_RESPONSE_BYTES', async () => {
    const big = MAX_SYNC_RESPONSE_BYTES / 2 + 1;
    for (let i = 0; i < 3; i++) storage.batches.set(String(i), new Uint8Array(big));
    const digests = [0, 1, 2].map((i) => Uint8Array.of(i) as Digest);
    core.outputs.push(output(), output({ serveBatches: [{ to: 2 as ReplicaId, digests }] }));
    driver.start();
    driver.input(peerInput(1));
    await vi.waitFor(() => expect(sender.messages).toHaveLength(3));
    for (const m of sender.messages) {
      expect(m.to).toBe(2);
      expect(m.msg.type).toBe('batchResponse');
    }
  });

  it('refuses reads beyond MAX_SERVES_IN_FLIGHT_PER_PEER for one peer, and serves again after', async () => {
    storage.gateReads = true;
    storage.batches.set('7', new Uint8Array(10));
    const req = { to: 3 as ReplicaId, digests: [Uint8Array.of(7) as Digest] };
    core.outputs.push(output(), ...Array.from({ length: MAX_SERVES_IN_FLIGHT_PER_PEER + 1 }, () => output({ serveBatches: [req] })));
    driver.start();
    for (let i = 0; i <= MAX_SERVES_IN_FLIGHT_PER_PEER; i++) driver.input(peerInput(i));
    expect(storage.readsStarted).toBe(MAX_SERVES_IN_FLIGHT_PER_PEER);
    expect(driver.stats().servesRefused).toBe(1);
    storage.openGates();
    await vi.waitFor(() => expect(sender.messages).toHaveLength(MAX_SERVES_IN_FLIGHT_PER_PEER));
    core.outputs.push(output({ serveBatches: [req] }));
    storage.gateReads = false;
    driver.input(peerInput(99));
    await vi.waitFor(() => expect(sender.messages).toHaveLength(MAX_SERVES_IN_FLIGHT_PER_PEER + 1));
  });
  it("keeps a budget per kind of read: a peer's block reads in flight never refuse its batch reads", async () => {
    storage.gateReads = true;
    storage.batches.set('7', new Uint8Array(10));
    const blocks = { to: 3 as ReplicaId, digest: new Uint8Array(32) as Digest, maxBlocks: 64 };
    const batches = { to: 3 as ReplicaId, digests: [Uint8Array.of(7) as Digest] };
    core.outputs.push(
      output(),
      ...Array.from({ length: MAX_SERVES_IN_FLIGHT_PER_PEER + 1 }, () => output({ serveBlocks: [blocks] })),
      output({ serveBatches: [batches] }),
    );
    driver.start();
    for (let i = 0; i <= MAX_SERVES_IN_FLIGHT_PER_PEER + 1; i++) driver.input(peerInput(i));
    expect(storage.blockReadsStarted).toBe(MAX_SERVES_IN_FLIGHT_PER_PEER);
    expect(driver.stats().servesRefused).toBe(1);
    expect(storage.readsStarted).toBe(1);
    storage.openGates();
    await vi.waitFor(() => expect(sender.messages.filter((m) => m.msg.type === 'batchResponse')).toHaveLength(1));
  });
  it('defers reads for a peer whose send queue is full, and serves it once the queue drained', async () => {
    storage.batches.set('7', new Uint8Array(10));
    const req = { to: 3 as ReplicaId, digests: [Uint8Array.of(7) as Digest] };
    core.outputs.push(output(), output({ serveBatches: [req] }), output({ serveBatches: [req] }));
    driver.start();
    sender.backlog = SERVE_BACKLOG_MAX_BYTES;
    driver.input(peerInput(1));
    expect(storage.readsStarted).toBe(0);
    expect(driver.stats().servesRefused).toBe(1);
    sender.backlog = 0;
    driver.input(peerInput(2));
    await vi.waitFor(() => expect(sender.messages.map((m) => m.msg.type)).toEqual(['batchResponse']));
  });

  it('answers a request for blocks it no longer holds with its latest stable checkpoint', async () => {
    const cert = { height: 9, toSlot: 90, position: 40, block: Uint8Array.of(1), state: Uint8Array.of(2), signers: Uint8Array.of(7), sigs: [] } as unknown as CheckpointCert;
    storage.stableCert = cert;
    core.outputs.push(output(), output({ serveBlocks: [{ to: 2 as ReplicaId, digest: Uint8Array.of(5) as Digest, maxBlocks: 64 }] }));
    driver.start();
    driver.input(peerInput(1));
    await vi.waitFor(() => expect(sender.messages).toEqual([{ to: 2, msg: { type: 'checkpointCert', cert } }]));
  });
});

describe('Driver: reports', () => {
  it('counts executed commands and peer faults', () => {
    const record = { position: 0, commands: 5 } as unknown as ReplicaOutput['executed'][number];
    core.outputs.push(output(), output({ executed: [record, { ...record, position: 1 }], faults: [{ peer: 2 as ReplicaId, kind: 'badSignature', detail: 'x' }] }));
    driver.start();
    driver.input(peerInput(1));
    const s = driver.stats();
    expect(s.executedBatches).toBe(2);
    expect(s.executedCommands).toBe(10);
    expect(s.peerFaults).toEqual({ badSignature: 1 });
  });
});

describe('Driver: client input as the core triages it', () => {
  const submit: Message = { type: 'submit', batch: new Uint8Array(8) };
  const identity = { hex: 'ab', handle: {} } as unknown as ClientIdentity;

  it('refuses a submission over its key’s budget with an OVERLOADED notice, never stepping it', () => {
    driver.start();
    driver.clientAuthenticated(3, identity, '10.0.0.1');
    const stepped = core.inputs.length;
    core.triage = 'overBudget';
    driver.clientMessage(3, submit);
    expect(core.inputs).toHaveLength(stepped);
    expect(sender.sent.at(-1)).toMatch(/over its budget/);
    expect(driver.stats().clientInbox).toMatchObject({ overBudget: 1, refused: 1 });
    core.triage = 'normal';
    driver.clientMessage(3, submit);
    expect(core.inputs.at(-1)).toEqual({ kind: 'client', conn: 3, msg: submit });
  });

  it('sheds a client connection refused for a batch no correct client sends, after the refusal; not for a late one', () => {
    const refusal = (reason: RefusalReason): Message => ({ type: 'refused', digest: new Uint8Array(32) as Digest, replica: 0 as ReplicaId, reason, frontier: 0 });
    core.outputs.push(
      output(),
      output({ toClients: [{ conn: 4, msg: refusal(RefusalReason.Late) }] }),
      output({ toClients: [{ conn: 5, msg: refusal(RefusalReason.BadSignature) }] }),
      output({ toClients: [{ conn: 6, msg: refusal(RefusalReason.BadBatch) }] }),
    );
    driver.start();
    for (let i = 0; i < 3; i++) driver.input(peerInput(i));
    expect(sender.sent).toEqual(['refused', 'refused', 'refused']);
    expect(sender.shed).toEqual([5, 6]);
  });

  it('tells the triage what submissions of the connection wait unstepped (their budget not yet spent)', () => {
    driver.start();
    driver.clientAuthenticated(3, identity, '10.0.0.1');
    // A step that takes 10 ms of the slice: what follows waits for the next turn.
    let fakeMs = 0;
    const spy = vi.spyOn(performance, 'now').mockImplementation(() => fakeMs);
    core.onStep = () => void (fakeMs += 10);
    driver.clientMessage(3, submit);
    driver.clientMessage(3, submit);
    driver.clientMessage(3, { type: 'sequence', oc: { digest: new Uint8Array(32), stamps: [] } as never, batch: null });
    driver.clientMessage(3, submit);
    spy.mockRestore();
    // The first is stepped, the second waits (one submission), then a Sequence (not one).
    expect(core.triageQueued).toEqual([
      { batches: 0, bytes: 0 },
      { batches: 0, bytes: 0 },
      { batches: 1, bytes: 8 },
      { batches: 1, bytes: 8 },
    ]);
  });
});
