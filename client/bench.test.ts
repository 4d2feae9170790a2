import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { formatClusterConfig } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { runProcess, type ProcessIo } from '../experiments/process.js';
import { KvStore } from '../ordering/kvStore.js';
import { runBench, type BenchOptions } from './bench.js';
import { registerBenchCommand } from './benchCommand.js';
import type { BenchSummary } from './benchStats.js';
import { KvWorkload } from './benchWorkload.js';
import { wallClockUs } from './clock.js';
import { DETAIL_LOG_HEADER } from './latencyLog.js';
import { ReplicaHarness } from './testReplicaHarness.js';
import { wsTransport } from './wsTransport.js';

const LATENCY_LINE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6} \[pompe info\] \d+\.\d{6}$/;
const DETAIL_LINE = /^([0-9a-f]{64}) (\d+) ([0-9a-f]{64}|-) (\d+) (\d+|-) (\d+|-) (\d+|-) (\d+|-) (\d+|-) ([a-z_]+) (warmup|measured)$/;

let harness: ReplicaHarness | null = null;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pompe-bench-'));
});
afterEach(async () => {
  await harness?.close();
  harness = null;
  await rm(dir, { recursive: true, force: true });
});

function options(overrides: Partial<BenchOptions>): BenchOptions {
  return {
    config: harness!.config!,
    crypto: nodeCrypto,
    transport: wsTransport,
    clients: 2,
    durationS: 2,
    warmupS: 0,
    batchSize: 20,
    outstanding: 2,
    adaptiveWindow: true,
    rate: null,
    batchDelayMs: 5,
    commandBytes: 32,
    keySpace: 1000,
    mode: 'direct',
    logDir: dir,
    clientIndexBase: 0,
    sockets: 'shared',
    verifySignatures: true,
    timeoutMs: 20_000,
    failoverMs: 2_000,
    drainMs: 5_000,
    connectTimeoutMs: 5_000,
    retryMs: 500,
    out: () => {},
    progress: null,
    handleSignals: false,
    ...overrides,
  };
}

async function lines(name: string): Promise<string[]> {
  const text = await readFile(join(dir, name), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.split('\n').slice(0, -1);
}

/** A detail line's fields; `-` is null. */
interface Detail {
  readonly client: string;
  readonly seq: number;
  readonly digest: string | null;
  readonly submit: number;
  readonly ordered: number | null;
  readonly executed: number | null;
  readonly ts: number | null;
  readonly position: number | null;
  readonly index: number | null;
  readonly outcome: string;
  readonly measured: boolean;
}

interface LogCheck {
  readonly order: string[];
  readonly exec: string[];
  readonly details: Detail[];
}

const orNull = (text: string): number | null => (text === '-' ? null : Number(text));
const EXECUTED_OUTCOMES = new Set(['executed', 'executed_unordered', 'duplicate', 'malformed', 'result_too_large']);

/** Reads client i's three logs and checks their formats and that their counts match the summary. */
async function checkLogs(summary: BenchSummary, index: number): Promise<LogCheck> {
  const order = await lines(`client${index}.order.log`);
  const exec = await lines(`client${index}.exec.log`);
  const detail = await lines(`client${index}.detail.log`);
  for (const line of [...order, ...exec]) expect(line).toMatch(LATENCY_LINE);
  expect(detail[0]).toBe(DETAIL_LOG_HEADER);
  const details = detail.slice(1).map((line): Detail => {
    const m = DETAIL_LINE.exec(line);
    expect(m, line).not.toBeNull();
    const f = m!.slice(1);
    return {
      client: f[0]!,
      seq: Number(f[1]),
      digest: f[2] === '-' ? null : f[2]!,
      submit: Number(f[3]),
      ordered: orNull(f[4]!),
      executed: orNull(f[5]!),
      ts: orNull(f[6]!),
      position: orNull(f[7]!),
      index: orNull(f[8]!),
      outcome: f[9]!,
      measured: f[10] === 'measured',
    };
  });
  const counts = summary.logs.find((l) => l.index === index)!;
  expect(counts).toEqual({ index, orderLines: order.length, execLines: exec.length, detailLines: details.length });
  // Every command offered has a detail line: one client (its key), each sequence number once.
  // Clients that share sockets share a key, and number their commands from one counter.
  expect(new Set(details.map((d) => d.client)).size).toBeLessThanOrEqual(1);
  expect(new Set(details.map((d) => d.seq)).size).toBe(details.length);
  // Every measured command that executed has an exec line; each was ordered first (if seen).
  expect(details.filter((d) => d.measured && EXECUTED_OUTCOMES.has(d.outcome))).toHaveLength(exec.length);
  if (summary.orderUnobserved === 0) expect(order.length).toBeGreaterThanOrEqual(exec.length);
  for (const d of details) {
    if (d.ordered !== null) expect(d.submit).toBeLessThanOrEqual(d.ordered);
    if (d.ordered !== null && d.executed !== null) expect(d.ordered).toBeLessThanOrEqual(d.executed);
    expect(d.executed !== null).toBe(EXECUTED_OUTCOMES.has(d.outcome));
  }
  return { order, exec, details };
}

async function processScript(kind: string): Promise<string> {
  let out = '';
  let err = '';
  const io: ProcessIo = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await runProcess([kind, dir], io);
  expect({ code, err }).toEqual({ code: 0, err: '' });
  return out;
}

describe('bench', () => {
  it('leaves no timer or socket running once it returns', async () => {
    const until = Date.now() + 10_000;
    while (process.getActiveResourcesInfo().includes('Timeout') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const before = process.getActiveResourcesInfo();
    harness = await ReplicaHarness.start();
    // A long connect timeout: its timer must not outlive the connection.
    await runBench(options({ durationS: 0.5, connectTimeoutMs: 60_000 }));
    await harness.close();
    harness = null;
    await new Promise((r) => setTimeout(r, 100));
    const counts = (list: string[]): Record<string, number> => list.reduce<Record<string, number>>((m, r) => ((m[r] = (m[r] ?? 0) + 1), m), {});
    const [b, a] = [counts(before), counts(process.getActiveResourcesInfo())];
    for (const [kind, n] of Object.entries(a)) expect(`${kind}: ${n}`).toBe(`${kind}: ${Math.min(n, b[kind] ?? 0)}`);
  });

  it('direct mode: three logs per client in the right formats and counts; the process script finds no violation', async () => {
    harness = await ReplicaHarness.start();
    let printed = '';
    const summary = await runBench(options({ out: (t) => void (printed += t) }));
    expect(summary.stoppedBy).toBe('duration');
    expect(summary.executed).toBeGreaterThan(0);
    expect(summary.ordered).toBeGreaterThanOrEqual(summary.executed);
    // Closed loop: every measured command was submitted, and every one is accounted for.
    expect(summary.offered).toBe(summary.executed + summary.drainedExecuted + summary.failedCommands + summary.unfinished);
    expect(summary.failedCommands).toBe(0);
    expect(summary.unfinished).toBe(0);
    expect(summary.malformedResults + summary.duplicateResults).toBe(0);
    expect(summary.orderLatency.p50Ms).toBeLessThanOrEqual(summary.execLatency.p50Ms);
    expect(summary.executedPerSecond).toBeCloseTo(summary.executed / summary.measuredSeconds, 6);
    expect((await readdir(dir)).sort()).toEqual(
      ['client0.bench.json', 'client0.detail.log', 'client0.exec.log', 'client0.order.log', 'client1.detail.log', 'client1.exec.log', 'client1.order.log'],
    );
    // What run.json is made of: the options, when it ran, what it measured.
    const record = JSON.parse(await readFile(join(dir, 'client0.bench.json'), 'utf8')) as { options: Record<string, unknown>; startedAt: string; endedAt: string; summary: BenchSummary };
    expect(record.options).toMatchObject({ clients: 2, batchSize: 20, outstanding: 2, mode: 'direct', durationS: 2 });
    expect(Date.parse(record.endedAt) - Date.parse(record.startedAt)).toBeGreaterThanOrEqual(2000);
    expect(record.summary.executed).toBe(summary.executed);
    let total = 0;
    for (const index of [0, 1]) {
      const { exec, details } = await checkLogs(summary, index);
      total += exec.length;
      // All commands of a batch complete together: they share digest, position and times, indexes 0..19.
      expect(exec.length % 20).toBe(0);
      expect(details.length % 20).toBe(0);
      for (let i = 0; i < details.length; i += 20) {
        const batch = details.slice(i, i + 20);
        expect(batch.map((d) => d.index)).toEqual([...Array(20).keys()]);
        expect(new Set(batch.map((d) => `${d.digest} ${d.ordered} ${d.executed} ${d.ts} ${d.position}`)).size).toBe(1);
        expect(batch[0]!.digest).not.toBeNull();
      }
      expect(details.every((d) => d.outcome === 'executed' || d.outcome === 'executed_unordered')).toBe(true);
      expect(details.filter((d) => d.outcome === 'executed_unordered')).toHaveLength(0);
    }
    // Measured commands: executed inside the interval plus those drained after it.
    expect(total).toBe(summary.executed + summary.drainedExecuted);
    expect(printed).toMatch(/^pompe bench: 2 client\(s\), direct mode, batch 20/);
    expect(printed).toMatch(/client1: \d+ order entries, \d+ exec entries, \d+ detail entries/);

    const exec = await processScript('exec');
    expect(exec).toContain(`Total: ${total}  transactions`);
    expect(exec).toMatch(/Linearizability violations: 0 {2}\(commands checked: \d+\)/);
    expect(exec).toMatch(/Lost after ordering: 0 {2}Executed twice: 0 {2}Position collisions: 0\nMissing lines: 0 {2}Duplicate lines: 0 {2}Batch mismatches: 0/);
    expect(await processScript('order')).toMatch(/^Total: \d+ {2}transactions/);
  });

  it('warmup: work submitted before the measured interval is not counted, and has warm-up detail lines only', async () => {
    harness = await ReplicaHarness.start();
    const beforeUs = wallClockUs();
    const summary = await runBench(options({ clients: 1, warmupS: 1, durationS: 1 }));
    const { details, exec } = await checkLogs(summary, 0);
    const measured = details.filter((d) => d.measured);
    expect(measured.length).toBeGreaterThan(0);
    const firstMeasuredUs = Math.min(...measured.map((d) => d.submit));
    const lastMeasuredUs = Math.max(...measured.map((d) => d.submit));
    const unmeasured = details.filter((d) => !d.measured);
    expect(unmeasured.filter((d) => d.submit < firstMeasuredUs).length).toBeGreaterThan(0);
    // An unmeasured command was submitted before the interval (warm-up) or after its end (a stop
    // timer late on a busy machine lets the clients submit a little longer; those are drained).
    for (const d of unmeasured) expect(d.submit < firstMeasuredUs || d.submit > lastMeasuredUs).toBe(true);
    // The measured interval starts a second after the clock started (after connecting).
    for (const d of measured) expect(d.submit).toBeGreaterThanOrEqual(beforeUs + 1_000_000);
    expect(exec.length).toBe(summary.executed + summary.drainedExecuted);
    expect(summary.measuredSeconds).toBeCloseTo(1, 1);
  });

  it('open loop (--rate): offers the rate, spaces submit times inside a batch, cuts partial batches by delay', async () => {
    harness = await ReplicaHarness.start();
    // 400 commands/s over 2 clients: one command every 5 ms per client; batches of up to 10, or
    // whatever 20 ms gathered (about 4).
    const summary = await runBench(options({ rate: 400, batchSize: 10, batchDelayMs: 20, outstanding: 64, durationS: 2 }));
    // The schedule offers the rate whatever the cluster does (the cluster here shares one busy
    // thread, so what it achieves is not asserted beyond progress).
    // A batch counts as measured by its first command, so the last batch of each client may carry
    // up to batchSize − 1 commands due after the end.
    expect(summary.offered).toBeGreaterThanOrEqual(400 * 2 - 10);
    expect(summary.offered).toBeLessThanOrEqual(400 * 2 + 2 * 9 + 2);
    const measured = summary.executed + summary.drainedExecuted;
    expect(measured).toBeGreaterThan(0);
    expect(measured).toBeLessThanOrEqual(summary.offered);
    const { details } = await checkLogs(summary, 1);
    const byBatch = new Map<string, number[]>();
    for (const d of details) byBatch.set(d.digest!, [...(byBatch.get(d.digest!) ?? []), d.submit]);
    const sizes = [...byBatch.values()].map((b) => b.length);
    // Size bound always; the delay bound cuts partial batches (unless a stalled event loop let a
    // whole batch accumulate between two ticks).
    expect(Math.max(...sizes)).toBeLessThanOrEqual(10);
    expect(sizes.some((size) => size < 10)).toBe(true);
    for (const submits of byBatch.values()) {
      for (let i = 1; i < submits.length; i++) expect(Math.abs(submits[i]! - submits[i - 1]! - 5000)).toBeLessThanOrEqual(1);
    }
    expect(summary.loop).toBe('open loop, 400 commands/s');
  });

  it('gateway mode: single commands through replicas, logged per command', async () => {
    harness = await ReplicaHarness.start({ gateway: { maxBatchCommands: 100, maxDelayUs: 2_000 } });
    const summary = await runBench(options({ mode: 'gateway', outstanding: 1, batchSize: 10 }));
    expect(summary.executed).toBeGreaterThan(0);
    expect(summary.failedCommands).toBe(0);
    for (const index of [0, 1]) {
      const { details } = await checkLogs(summary, index);
      // The gateway does not say where in its batch a command went.
      for (const d of details) expect(d.index).toBeNull();
    }
    expect(await processScript('exec')).toMatch(/Linearizability violations: 0 /);
  });

  it('per-client sockets work the same', async () => {
    harness = await ReplicaHarness.start();
    const summary = await runBench(options({ sockets: 'per-client', clients: 3, durationS: 1 }));
    expect(summary.executed + summary.drainedExecuted).toBeGreaterThan(0);
    for (const index of [0, 1, 2]) await checkLogs(summary, index);
  });

  it('SIGINT stops at once: the logs are complete on disk, the summary says so, and the exit code is 130', async () => {
    harness = await ReplicaHarness.start();
    const exits: number[] = [];
    let printed = '';
    const run = runBench(options({ durationS: 60, clientIndexBase: 5, handleSignals: true, exitOnSignal: (code) => exits.push(code), out: (t) => void (printed += t) }));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    process.emit('SIGINT', 'SIGINT');
    const summary = await run;
    expect(summary.stoppedBy).toBe('signal');
    await vi.waitFor(() => expect(exits).toEqual([130]));
    expect(printed).toContain('stopped by signal');
    expect(summary.measuredSeconds).toBeLessThan(5);
    for (const index of [5, 6]) await checkLogs(summary, index);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});

describe('pompe bench command', () => {
  function program(): Command {
    const p = new Command('pompe').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerBenchCommand(p);
    p.commands[0]!.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    return p;
  }

  it('rejects bad arguments', async () => {
    await expect(program().parseAsync(['bench', '--conf', 'x', '--clients', '0', '--duration', '1'], { from: 'user' })).rejects.toThrow(CommanderError);
    await expect(program().parseAsync(['bench', '--conf', 'x', '--clients', '1', '--duration', '1', '--mode', 'sideways'], { from: 'user' })).rejects.toThrow(
      CommanderError,
    );
    await expect(program().parseAsync(['bench', '--clients', '1', '--duration', '1'], { from: 'user' })).rejects.toThrow(/--conf/);
  });

  it('runs against a conf directory and prints the summary', async () => {
    harness = await ReplicaHarness.start();
    const confDir = join(dir, 'conf');
    const logDir = join(dir, 'log');
    await rm(confDir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(confDir));
    await writeFile(join(confDir, 'cluster.json'), formatClusterConfig(harness.config!));
    let stdout = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
    const before = process.exitCode;
    try {
      await program().parseAsync(['bench', '--conf', confDir, '--clients', '2', '--duration', '1', '--batch-size', '10', '--log-dir', logDir], { from: 'user' });
      expect(process.exitCode).toBe(0);
    } finally {
      spy.mockRestore();
      process.exitCode = before;
    }
    expect(stdout).toMatch(/^pompe bench: 2 client\(s\), direct mode, batch 10, closed loop, 4 outstanding, per-client sockets;/);
    expect((await readdir(logDir)).length).toBe(7);
  });

  it('refuses a conf directory without a cluster config (exit code 2)', async () => {
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const before = process.exitCode;
    try {
      await program().parseAsync(['bench', '--conf', dir, '--clients', '1', '--duration', '1'], { from: 'user' });
      expect(process.exitCode).toBe(2);
      expect(String(spy.mock.calls[0]?.[0])).toMatch(/cluster\.json/);
    } finally {
      spy.mockRestore();
      process.exitCode = before;
    }
  });
});

describe('workload', () => {
  it('builds 32-byte kv puts with keys from the key space and distinct tags', () => {
    const w = new KvWorkload(32, 50, 8);
    const commands = w.commands(7, 8);
    expect(commands.map((c) => c.seq)).toEqual([7, 8, 9, 10, 11, 12, 13, 14]);
    const kv = new KvStore();
    for (const c of commands) {
      expect(c.payload).toHaveLength(32);
      const key = new DataView(c.payload.buffer, c.payload.byteOffset + 3, 8);
      expect(key.getUint32(0) * 2 ** 32 + key.getUint32(4)).toBeLessThan(50);
    }
    // Valid puts: the store executes them (an empty result; a bad command would say ERR).
    expect(kv.execute(commands.map((c) => ({ ...c, clientKey: new Uint8Array(32), expiresAtUs: 0 }))).every((r) => r.length === 0)).toBe(true);
    expect(kv.size).toBeGreaterThan(0);
    expect(kv.size).toBeLessThanOrEqual(8);
    expect(() => new KvWorkload(10, 5, 1)).toThrow(RangeError);
  });
});
