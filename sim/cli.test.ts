/**
 * The simulator CLI: its command line, and a run end to end in this thread (worker threads need the
 * compiled dist/sim/cliWorker.js, so `--workers 0` here). A failing seed must stop the run, be
 * written to a file and come with the exact command that reproduces it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliOptions, EXIT_USAGE, EXIT_VIOLATION, parseArgs, parseReplicas, parseSeeds, reproduceCommand, runSim, type SimIo } from './cli.js';
import { LAYERS, type SeedOutcome } from './simLayers.js';

function capture(): SimIo & { readonly stdout: () => string; readonly stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => void (out += t), err: (t) => void (err += t), stdout: () => out, stderr: () => err };
}

function parsed(argv: readonly string[]): CliOptions {
  const result = parseArgs(argv, capture());
  if (typeof result === 'number') throw new Error(`usage error ${result}`);
  return result;
}

describe('command line', () => {
  it('reads seeds as a..b, a,b,c or one number', () => {
    expect(parseSeeds('1..500')).toEqual([[1, 500]]);
    expect(parseSeeds('3,9,27')).toEqual([[3, 3], [9, 9], [27, 27]]);
    expect(parseSeeds('42')).toEqual([[42, 42]]);
    expect(parseSeeds('1..3,10')).toEqual([[1, 3], [10, 10]]);
    expect(parseSeeds('5..1')).toMatch(/empty range/);
    expect(parseSeeds('1...4')).toMatch(/not a seed/);
    expect(parseSeeds('-1')).toMatch(/not a seed/);
    expect(parseSeeds('4294967296')).toMatch(/up to 4294967295/);
  });

  it('reads replica counts as a list', () => {
    expect(parseReplicas('4,7')).toEqual([4, 7]);
    expect(parseReplicas('4')).toEqual([4]);
    expect(parseReplicas('3')).toMatch(/from 4/);
    expect(parseReplicas('4,x')).toMatch(/'x'/);
  });

  it('resolves rules, faults, crypto and workers', () => {
    const o = parsed(['--replicas', '4,7', '--seeds', '1..500', '--faults', 'all', '--rule', '2-chain', '--crypto', 'fast', '--workers', '3', '--after-gst-ms', '5000']);
    expect(o).toMatchObject({ layer: 'consensus', replicas: [4, 7], seeds: [[1, 500]], rules: ['2-chain'], crypto: 'fast', workers: 3, afterGstMs: 5000 });
    expect(new Set(o.faults)).toEqual(new Set(LAYERS.get('consensus')!.faultKinds));
    const defaults = parsed([]);
    expect(defaults.rules).toEqual(['3-chain', '2-chain']);
    expect(defaults.crypto).toBe('ed25519');
    expect(defaults.workers).toBeGreaterThanOrEqual(1);
    expect(defaults.workers).toBeLessThanOrEqual(2);
    expect(parsed(['--faults', 'crash,garbage']).faults).toEqual(['crash', 'garbage']);
  });

  it('refuses a bad command line with exit status 2 and a message', () => {
    for (const argv of [['--faults', 'meteor'], ['--rule', '4-chain'], ['--seeds', 'x'], ['--replicas', '2'], ['--workers', '-1'], ['--crypto', 'rsa'], ['--layer', 'nope'], ['--bogus']]) {
      const io = capture();
      expect(parseArgs(argv, io), argv.join(' ')).toBe(EXIT_USAGE);
      expect(io.stderr().length, argv.join(' ')).toBeGreaterThan(0);
    }
  });

  it('writes a reproduce command that parses back to the same single run', () => {
    const o = parsed(['--replicas', '4,7', '--seeds', '1..500', '--faults', 'crash,loss', '--crypto', 'fast', '--after-gst-ms', '3000']);
    const job = { layer: 'consensus', seed: 123, n: 7, rule: '2-chain' as const, faults: o.faults, crypto: o.crypto, afterGstUs: 3_000_000 };
    const command = reproduceCommand(o, job);
    expect(command).toBe('npm run sim -- --replicas 7 --seeds 123 --faults crash,loss --rule 2-chain --crypto fast --after-gst-ms 3000');
    const again = parsed(command.replace('npm run sim -- ', '').split(' '));
    expect(again).toMatchObject({ replicas: [7], seeds: [[123, 123]], rules: ['2-chain'], crypto: 'fast', afterGstMs: 3000, faultsText: 'crash,loss' });
  });
});

describe('the full layer', () => {
  it('takes client modes (both = direct and gateway) and the ordering fault kinds', () => {
    const o = parsed(['--layer', 'full', '--replicas', '4,7', '--seeds', '1..100', '--faults', 'all', '--rule', 'both', '--modes', 'both']);
    expect(o).toMatchObject({ layer: 'full', modes: ['direct', 'gateway'], rules: ['3-chain', '2-chain'] });
    expect(new Set(o.faults)).toEqual(new Set(LAYERS.get('full')!.faultKinds));
    expect(o.faults).toEqual(expect.arrayContaining(['medianPicker', 'flooder', 'fakeSeal', 'dropEntries', 'clockSkew']));
    expect(parsed(['--layer', 'full']).modes).toEqual(['mixed']);
    expect(parsed(['--layer', 'full', '--modes', 'gateway']).modes).toEqual(['gateway']);
    const io = capture();
    expect(parseArgs(['--layer', 'full', '--modes', 'thin'], io)).toBe(EXIT_USAGE);
    expect(parseArgs(['--layer', 'full', '--faults', 'meteor'], capture())).toBe(EXIT_USAGE);
  });

  it('writes a reproduce command with the layer and the run\'s client mode', () => {
    const o = parsed(['--layer', 'full', '--replicas', '4', '--seeds', '1..9', '--faults', 'all', '--modes', 'both', '--crypto', 'fast']);
    const job = { layer: 'full', seed: 5, n: 4, rule: '3-chain' as const, faults: o.faults, crypto: o.crypto, afterGstUs: undefined, mode: 'gateway' as const };
    const command = reproduceCommand(o, job);
    expect(command).toBe('npm run sim -- --layer full --replicas 4 --seeds 5 --faults all --rule 3-chain --crypto fast --modes gateway');
    expect(parsed(command.replace('npm run sim -- ', '').split(' '))).toMatchObject({ layer: 'full', replicas: [4], seeds: [[5, 5]], modes: ['gateway'] });
  });

  it('runs each seed once per mode and prints the fairness columns', async () => {
    const io = capture();
    const argv = ['--layer', 'full', '--seeds', '3', '--rule', '2-chain', '--modes', 'both', '--faults', 'crash,medianPicker', '--crypto', 'fast', '--workers', '0', '--after-gst-ms', '7000'];
    const o = { ...parsed(argv), failuresDir: '/nonexistent/never-written' };
    expect(await runSim(o, io)).toBe(0);
    const out = io.stdout();
    expect(out).toContain('[n=4 2-chain direct] seeds 3..3: 1 runs, 0 violations');
    expect(out).toContain('[n=4 2-chain gateway] seeds 3..3: 1 runs, 0 violations');
    expect(out).toMatch(/linearizability violations 0, inversions \d+\/\d+ overlapping, late\/early\/busy \d+\/\d+\/\d+, timeouts \d+, max median shift [0-9.]+ ms/);
    expect(out).toMatch(/exec batches\s+exec cmds\s+lin\. viol\.\s+inversions\/overlap\s+late\s+early\s+busy\s+timeouts\s+max shift ms/);
    expect(out).toMatch(/n=4 2-chain direct\s+1\s+0\s/);
    expect(out).toMatch(/total: 2 runs, 0 violations/);
  });
});

describe('runs', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-cli-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    LAYERS.delete('test-fails-at-3');
  });

  it('runs every (replicas, rule, seed), prints block lines and the final table, exits 0', async () => {
    const io = capture();
    const o = { ...parsed(['--seeds', '1..3', '--crypto', 'fast', '--workers', '0', '--after-gst-ms', '2000', '--block', '2']), failuresDir: tempDir() };
    expect(await runSim(o, io)).toBe(0);
    const out = io.stdout();
    expect(out).toContain('[n=4 3-chain] seeds 1..2: 2 runs, 0 violations');
    expect(out).toContain('[n=4 3-chain] seeds 3..3: 1 runs, 0 violations');
    expect(out).toContain('[n=4 2-chain] seeds 1..2: 2 runs, 0 violations');
    expect(out).toMatch(/n=4 3-chain\s+3\s+0\s/);
    expect(out).toMatch(/n=4 2-chain\s+3\s+0\s/);
    expect(out).toMatch(/total: 6 runs, 0 violations/);
    expect(readdirSync(o.failuresDir)).toEqual([]);
  });

  it('stops at the first violation: prints the seed, scenario, violations and the reproduce command, writes the file, exits 1', async () => {
    const ran: number[] = [];
    const fake = (seed: number, violations: string[]): SeedOutcome => ({
      seed, n: 4, rule: '3-chain', scenario: [`scenario of seed ${seed}`], violations,
      commitsPerSecond: 50, faultsReported: {}, rejectedFrames: 0, maxHeight: 10, messagesSent: 100, realMs: 1,
    });
    LAYERS.set('test-fails-at-3', {
      faultKinds: ['crash'],
      run: (job) => {
        ran.push(job.seed);
        return fake(job.seed, job.seed === 3 ? ['agreement: forked at height 7'] : []);
      },
    });
    const io = capture();
    const o: CliOptions = { ...parsed(['--seeds', '1..10', '--rule', '3-chain', '--workers', '0', '--faults', 'all']), layer: 'test-fails-at-3', failuresDir: tempDir() };
    expect(await runSim(o, io)).toBe(EXIT_VIOLATION);
    expect(ran).toEqual([1, 2, 3]);
    const report = io.stdout();
    expect(report).toContain('seed 3');
    expect(report).toContain('scenario of seed 3');
    expect(report).toContain('agreement: forked at height 7');
    expect(report).toContain('reproduce: npm run sim -- --layer test-fails-at-3 --replicas 4 --seeds 3 --faults all --rule 3-chain --crypto ed25519');
    const file = join(o.failuresDir, '4-3-chain-3.txt');
    expect(report).toContain(`written to ${file}`);
    expect(readFileSync(file, 'utf8')).toContain('reproduce: npm run sim --');
    // The reproduce command is the last thing printed before the file name.
    expect(report.trimEnd().split('\n').at(-2)).toMatch(/^reproduce: /);
  });
});
