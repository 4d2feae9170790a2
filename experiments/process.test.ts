import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DETAIL_LOG_HEADER, DetailLogWriter, formatLogLine } from '../client/latencyLog.js';
import { runProcess, type ProcessIo } from './process.js';

const NOON_US = new Date(2026, 10, 20, 12, 0, 0).getTime() * 1000;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pompe-process-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(args: readonly string[]): Promise<Run> {
  let out = '';
  let err = '';
  const io: ProcessIo = { out: (text) => void (out += text), err: (text) => void (err += text) };
  const code = await runProcess(args, io);
  return { code, out, err };
}

/** Log lines: [completion µs after noon, latency µs]. */
async function writeLog(name: string, entries: ReadonlyArray<readonly [number, number]>, extra = ''): Promise<void> {
  const lines = entries.map(([afterNoonUs, latencyUs]) => formatLogLine(NOON_US + afterNoonUs, latencyUs));
  await writeFile(join(dir, name), `${lines.join('\n')}\n${extra}`);
}

describe('process script', () => {
  it('prints the Pompe-HS block with nearest-rank percentiles, then throughput and file count', async () => {
    // Latencies 1..10 ms over two files. Sorted: lat[5] = 6, lat[9] = 10, lat[int(9.9)] = 10.
    await writeLog('client0.exec.log', [[1_000_000, 3000], [1_000_000, 1000], [1_000_000, 5000], [1_000_000, 2000], [1_000_000, 4000]]);
    await writeLog('client1.exec.log', [[3_000_000, 10_000], [3_000_000, 6000], [3_000_000, 8000], [3_000_000, 7000], [3_000_000, 9000]]);
    await writeLog('client0.order.log', [[0, 1]]); // another kind: not read
    const result = await run(['exec', dir]);
    expect(result).toEqual({
      code: 0,
      // Interval: earliest start 1 s − 5 ms = 0.995 s, latest completion 3 s → 2.005 s; 10 / 2.005 = 4.99.
      out: [
        'Total: 10  transactions',
        '50%:  6.000',
        '90%:  10.000',
        '99%:  10.000',
        'Average:  5.500',
        'Throughput: 5.0  commands/s over 2.005 s',
        'Files: 2',
        '',
      ].join('\n'),
      err: '',
    });
  });

  it('measures throughput from the earliest command start to the latest completion across files', async () => {
    // 1000 commands: starts from 0 s (first line: completes at 1 s after 1 s latency) to 4 s.
    const entries: Array<[number, number]> = [[1_000_000, 1_000_000]];
    for (let i = 1; i < 999; i++) entries.push([1_000_000 + i * 3000, 1000]);
    await writeLog('client0.order.log', entries);
    await writeLog('client1.order.log', [[4_000_000, 500]]);
    const { out, code } = await run(['order', dir]);
    expect(code).toBe(0);
    expect(out).toContain('Throughput: 250.0  commands/s over 4.000 s\n');
    expect(out).toContain('Total: 1000  transactions\n');
  });

  it('reports an empty directory as zero transactions, with a note and exit 0', async () => {
    const result = await run(['exec', dir]);
    expect(result.code).toBe(0);
    expect(result.out).toBe('Total: 0  transactions\nFiles: 0\n');
    expect(result.err).toMatch(/no exec log lines/);
  });

  it('reports empty log files as zero transactions without dividing by zero', async () => {
    await writeFile(join(dir, 'client0.exec.log'), '');
    const result = await run(['exec', dir, '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.out) as Record<string, unknown>;
    expect(json).toMatchObject({ total: 0, latencyMs: null, throughput: null, files: ['client0.exec.log'] });
  });

  it('skips malformed lines, counts them on stderr and summarises the rest', async () => {
    await writeLog('client0.exec.log', [[0, 2000], [0, 4000]], 'truncated line 2026-11-2\nnot a log line\n\n2026-11-20 12:00:00.000000 [pompe info] x\n');
    await writeFile(join(dir, 'client1.exec.log'), Buffer.from([0, 1, 2, 255, 10, 200, 10]));
    const result = await run(['exec', dir]);
    expect(result.code).toBe(0);
    expect(result.out).toContain('Total: 2  transactions\n');
    expect(result.out).toContain('Average:  3.000\n');
    expect(result.err).toBe('process: skipped 5 malformed line(s) in the exec logs\n');
  });

  it('reads files by the word in their name, leaving out detail logs, other kinds and plots', async () => {
    await writeLog('client0.log', [[0, 1000]]); // the HotStuff baseline's log: kind "client"
    await writeLog('client0.exec.log', [[0, 2000]]);
    await writeLog('client0.order.log', [[0, 3000]]);
    await writeFile(join(dir, 'exec.png'), Buffer.from([137, 80, 78, 71, 10, 0]));
    await mkdir(join(dir, 'exec-subdir'));
    await writeFile(join(dir, 'client0.detail.log'), `${DETAIL_LOG_HEADER}\n`);
    const client = await run(['client', dir, '--json']);
    expect(JSON.parse(client.out)).toMatchObject({ files: ['client0.log'], total: 1 });
    const exec = await run(['exec', dir, '--json']);
    expect(JSON.parse(exec.out)).toMatchObject({ files: ['client0.exec.log'], total: 1, malformedLines: 0 });
  });

  it('prints a JSON summary', async () => {
    await writeLog('client0.exec.log', [[1_000_000, 2481], [1_000_000, 1000]]);
    const result = await run(['exec', dir, '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.out)).toEqual({
      kind: 'exec',
      dir,
      files: ['client0.exec.log'],
      total: 2,
      malformedLines: 0,
      latencyMs: { p50: 2.481, p90: 2.481, p99: 2.481, average: 1.7405, min: 1, max: 2.481 },
      throughput: {
        commandsPerSecond: 2 / 0.002481,
        intervalSeconds: 0.002481,
        firstStartWallUs: NOON_US + 1_000_000 - 2481,
        lastCompletionWallUs: NOON_US + 1_000_000,
      },
      fairness: null,
      plot: null,
    });
  });

  it('exits non-zero with a clear message on a missing directory or an unknown kind', async () => {
    const missing = await run(['exec', join(dir, 'nope')]);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/nope: not found or not a directory/);
    const unknownArgv = await run(['latency', dir]);
    expect(unknownArgv.code).not.toBe(0);
    expect(unknownArgv.err).toMatch(/latency.*order, exec, client/);
    let err = '';
    const unknownOptions = await runProcess({ kind: 'latency', dir }, { out: () => undefined, err: (t) => void (err += t) });
    expect(unknownOptions).not.toBe(0);
    expect(err).toMatch(/unknown log kind 'latency'/);
    const badPlot = await run(['exec', dir, '--plot', join(dir, 'x.pdf')]);
    expect(badPlot.code).not.toBe(0);
    expect(badPlot.err).toMatch(/\.svg or \.png/);
  });

  it('explains itself with --help and exits 0', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/Usage: process \[options\] <kind> <dir>/);
    expect(help.out).toMatch(/--plot <file>/);
    expect(help.out).toMatch(/--json/);
  });

  describe('checks over detail logs', () => {
    const D1 = '1'.repeat(64);
    const D2 = '2'.repeat(64);
    const D3 = '3'.repeat(64);
    /** Lines: [client, seq, digest, submit, ordered, executed, ts, position, index, outcome]. */
    const detail = (rows: ReadonlyArray<readonly (string | number)[]>): string =>
      `${DETAIL_LOG_HEADER}\n${rows.map((r) => [...r, 'measured'].join(' ')).join('\n')}\n`;

    it('finds nothing wrong in a clean run across clients, read from what the client writes', async () => {
      await writeLog('client0.exec.log', [[0, 1000]]);
      const client0 = await DetailLogWriter.open(join(dir, 'client0.detail.log'));
      const batch = { client: 'c0', orderedUs: 150, executedUs: 400, tsUs: 140, position: 0, measured: true };
      client0.recordBatch({ ...batch, digest: D1 }, 1, 2, (i) => 100 + i, () => 'executed');
      client0.recordBatch({ ...batch, digest: D2, orderedUs: 260, executedUs: 500, tsUs: 250, position: 2 }, 3, 1, () => 200, () => 'executed');
      client0.recordBatch({ ...batch, digest: D3, orderedUs: null, executedUs: null, tsUs: null, position: null }, 4, 1, () => 300, () => 'unfinished');
      await client0.close();
      await writeFile(join(dir, 'client1.detail.log'), detail([['c1', 1, '-', 120, 170, 450, 160, 1, '-', 'executed']]));
      const { out, code } = await run(['exec', dir]);
      expect(code).toBe(0);
      expect(out).toContain(
        [
          'Linearizability violations: 0  (commands checked: 4)',
          'Timestamp order violations: 0',
          'Detail lines: 5 from 2 clients  (executed 4, unfinished 1)',
          'Lost after ordering: 0  Executed twice: 0  Position collisions: 0',
          'Missing lines: 0  Duplicate lines: 0  Batch mismatches: 0',
        ].join('\n'),
      );
    });

    it('catches a planted linearizability violation between two clients, per command', async () => {
      await writeLog('client0.exec.log', [[0, 1000]]);
      // Client 0's command is ordered at 150; client 1 submits at 160 but executes first.
      await writeFile(join(dir, 'client0.detail.log'), detail([['c0', 1, D1, 100, 150, 400, 140, 1, 0, 'executed']]));
      await writeFile(join(dir, 'client1.detail.log'), detail([['c1', 1, D2, 160, 210, 380, 130, 0, 0, 'executed']]) + 'bad line\n');
      const { out, err, code } = await run(['exec', dir]);
      expect(code).toBe(0);
      expect(out).toContain('Linearizability violations: 1  (commands checked: 2)\nTimestamp order violations: 0\n');
      expect(err).toContain('skipped 1 malformed line(s) in the detail logs');
    });

    it('counts losses, gaps, repeats, collisions and batch disagreements', async () => {
      await writeLog('client0.exec.log', [[0, 1000]]);
      await writeFile(
        join(dir, 'client0.detail.log'),
        detail([
          ['c0', 1, D1, 100, 150, 400, 140, 0, 0, 'executed'],
          ['c0', 1, D1, 100, 150, 400, 140, 0, 0, 'executed'], // the same command again
          ['c0', 2, D1, 100, 150, 400, 141, 0, 1, 'executed'], // its batch's timestamp differs
          ['c0', 5, D2, 200, 250, '-', 240, '-', '-', 'timed_out'], // seq 3, 4 missing; ordered, then lost
          ['c0', 6, D3, 210, '-', 600, 300, 3, 0, 'executed_unordered'],
        ]),
      );
      // Another client's command at client 0's place (0, 0), in client 0's last batch (D3).
      await writeFile(join(dir, 'client1.detail.log'), detail([['c1', 1, D3, 90, 120, 390, 130, 0, 0, 'executed']]));
      const { out, code } = await run(['exec', dir]);
      expect(code).toBe(0);
      expect(out).toContain('Detail lines: 6 from 2 clients  (executed 4, executed_unordered 1, timed_out 1)');
      expect(out).toContain('Lost after ordering: 1  Executed twice: 1  Position collisions: 1');
      expect(out).toContain('Missing lines: 2  Duplicate lines: 1  Batch mismatches: 2');
    });
  });

  describe('--plot', () => {
    beforeEach(async () => {
      const entries: Array<[number, number]> = [];
      for (let i = 0; i < 20_000; i++) entries.push([Math.floor(i * 500), 1000 + (i % 97) * 100]);
      await writeLog('client0.exec.log', entries);
    });

    it('draws an SVG with both panels', async () => {
      const out = join(dir, 'latency.svg');
      const result = await run(['exec', dir, '--plot', out]);
      expect(result.code).toBe(0);
      const svg = await readFile(out, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('latency distribution');
      expect(svg).toContain('throughput over time');
    });

    it("titles the figure with the run's name and parameters (run.json) and marks p50 and p99", async () => {
      await writeFile(join(dir, 'run.json'), JSON.stringify({ name: 'local-20261120-120000', parameters: 'n=4, 4 client(s), direct mode, batch 1000' }));
      const out = join(dir, 'latency.svg');
      expect((await run(['exec', dir, '--plot', out])).code).toBe(0);
      const svg = await readFile(out, 'utf8');
      expect(svg).toContain('local-20261120-120000: exec latency');
      expect(svg).toContain('n=4, 4 client(s), direct mode, batch 1000');
      // Latencies 1.0–10.6 ms: the median is about 5.8 ms.
      expect(svg).toMatch(/p50 5\.\d\d ms/);
      expect(svg).toMatch(/p99 10\.\d ms/);
      expect(svg).not.toContain(dir);
    });

    it('draws a PNG', async () => {
      const out = join(dir, 'latency.png');
      const result = await run(['exec', dir, '--plot', out, '--json']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.out)).toMatchObject({ plot: out, total: 20_000 });
      const png = await readFile(out);
      expect(png.length).toBeGreaterThan(1000);
      expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    });

    it('writes no figure when there is no data, and says so', async () => {
      const empty = join(dir, 'empty');
      await mkdir(empty);
      const out = join(dir, 'none.svg');
      const result = await run(['exec', empty, '--plot', out]);
      expect(result.code).toBe(0);
      expect(result.err).toMatch(/no data to plot/);
      await expect(readFile(out)).rejects.toThrow(/ENOENT/);
    });
  });
});
