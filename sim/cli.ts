/**
 * The simulator CLI: runs every (replicas, rule, seed) combination of one simulation layer, in
 * parallel on worker threads with the output in seed order, prints a summary line per block of
 * seeds and a final table, and stops at the first violation with the command that reproduces it.
 *
 *   npm run sim -- --replicas 4,7 --seeds 1..500 --faults all --rule both --crypto fast
 *   npm run sim -- --layer full --replicas 4,7 --seeds 1..100 --faults all --rule both --modes both
 *
 * The full layer runs each seed once per client mode (`--modes`; `both` = direct and gateway) and
 * its table adds the ordering summary: executed batches and commands, linearizability violations,
 * inversions among overlapping pairs, late/early/busy replies, view timeouts and the largest median
 * shift a Byzantine collector achieved.
 *
 * Exit status: 0 when no run violated anything, 1 on a violation, 2 on a bad command line.
 */
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { type CommitRule, MIN_BFT_REPLICAS } from '../common/config.js';
import { MAX_REPLICAS } from '../common/limits.js';
import { parseFaultList } from './faults.js';
import { blockLine, fixed, orderingLine, Stats, table } from './cliTable.js';
import { runInOrder } from './cliWorker.js';
import { LAYER_NAMES, LAYERS, type SeedJob, type SeedOutcome, SIM_CLIENT_MODES, type SimClientMode } from './simLayers.js';

export const EXIT_VIOLATION = 1;
export const EXIT_USAGE = 2;
export const FAILURES_DIR = '.sim-failures';
const MAX_SEED = 0xffff_ffff; // the Rng takes a u32 seed

export interface SimIo {
  out(text: string): void;
  err(text: string): void;
}

export interface CliOptions {
  readonly layer: string;
  readonly replicas: readonly number[];
  /** Inclusive ranges, in the order given. */
  readonly seeds: readonly (readonly [number, number])[];
  readonly faultsText: string;
  readonly faults: readonly string[];
  readonly rules: readonly CommitRule[];
  /** Client modes, one run each per seed (layers with clients only). */
  readonly modes: readonly SimClientMode[];
  readonly crypto: 'ed25519' | 'fast';
  readonly workers: number;
  readonly afterGstMs: number | undefined;
  readonly block: number;
  readonly verbose: boolean;
  /** Where the first failing seed's report goes (`.sim-failures/<n>-<rule>-<seed>.txt`). */
  readonly failuresDir: string;
}

/** `a..b`, `a,b,c` or `a`; a list may mix both (`1..10,20`). Null with a message when malformed. */
export function parseSeeds(text: string): (readonly [number, number])[] | string {
  const ranges: [number, number][] = [];
  for (const part of text.split(',').map((s) => s.trim())) {
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(part);
    if (m === null) return `--seeds: '${part}' is not a seed or a range a..b`;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from > MAX_SEED || to > MAX_SEED) return `--seeds: seeds go up to ${MAX_SEED}`;
    if (to < from) return `--seeds: empty range ${part}`;
    ranges.push([from, to]);
  }
  return ranges;
}

export function parseReplicas(text: string): number[] | string {
  const list: number[] = [];
  for (const part of text.split(',').map((s) => s.trim())) {
    const n = /^\d+$/.test(part) ? Number(part) : NaN;
    if (!(n >= MIN_BFT_REPLICAS && n <= MAX_REPLICAS)) return `--replicas: '${part}' is not a replica count from ${MIN_BFT_REPLICAS} to ${MAX_REPLICAS}`;
    if (!list.includes(n)) list.push(n);
  }
  return list;
}

const seedCount = (o: CliOptions): number => o.seeds.reduce((sum, [a, b]) => sum + b - a + 1, 0);

function* seedsOf(o: CliOptions): Generator<number> {
  for (const [from, to] of o.seeds) for (let s = from; s <= to; s++) yield s;
}

/** The modes a layer runs in: the chosen ones if it has clients, else one run without a mode. */
const modesOf = (o: CliOptions): readonly (SimClientMode | undefined)[] => (LAYERS.get(o.layer)?.usesModes === true ? o.modes : [undefined]);

function* jobsOf(o: CliOptions): Generator<SeedJob> {
  const afterGstUs = o.afterGstMs === undefined ? undefined : o.afterGstMs * 1000;
  for (const n of o.replicas) {
    for (const rule of o.rules) {
      for (const mode of modesOf(o)) {
        for (const seed of seedsOf(o)) {
          yield { layer: o.layer, seed, n, rule, faults: o.faults, crypto: o.crypto, afterGstUs, ...(mode === undefined ? {} : { mode }) };
        }
      }
    }
  }
}

const labelOf = (job: SeedJob): string => `n=${job.n} ${job.rule}${job.mode === undefined ? '' : ` ${job.mode}`}`;

/** The command that runs exactly this one seed again. */
export function reproduceCommand(o: CliOptions, job: SeedJob): string {
  const parts = ['npm run sim --'];
  if (o.layer !== 'consensus') parts.push(`--layer ${o.layer}`);
  parts.push(`--replicas ${job.n} --seeds ${job.seed} --faults ${o.faultsText} --rule ${job.rule} --crypto ${o.crypto}`);
  if (job.mode !== undefined) parts.push(`--modes ${job.mode}`);
  if (o.afterGstMs !== undefined) parts.push(`--after-gst-ms ${o.afterGstMs}`);
  return parts.join(' ');
}

function failureReport(o: CliOptions, job: SeedJob, r: SeedOutcome): string {
  return [
    `VIOLATION: layer ${o.layer}, replicas ${job.n}, rule ${job.rule}${job.mode === undefined ? '' : `, clients ${job.mode}`}, seed ${job.seed} ` +
      `(faults ${o.faultsText}, crypto ${o.crypto})`,
    'scenario:',
    ...r.scenario.map((l) => `  ${l}`),
    'violations:',
    ...r.violations.map((l) => `  ${l.replaceAll('\n', '\n    ')}`),
    `max height ${r.maxHeight}, ${fixed(r.commitsPerSecond)} commits/s after GST, ${r.messagesSent} messages, faults reported ${JSON.stringify(r.faultsReported)}`,
    ...(r.ordering === undefined ? [] : [orderingLine(r.ordering), `byzantine actions ${JSON.stringify(r.ordering.byzantineActions)}`]),
    `reproduce: ${reproduceCommand(o, job)}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Running

export async function runSim(o: CliOptions, io: SimIo): Promise<number> {
  const started = performance.now();
  const groups = new Map<string, Stats>();
  const blocks = new Map<string, Stats>();
  const found: { failure: { job: SeedJob; outcome: SeedOutcome } | null } = { failure: null };
  const perGroup = seedCount(o);
  io.out(
    `simulating ${o.layer}: replicas ${o.replicas.join(',')}, rules ${o.rules.join(',')}, ` +
      `${LAYERS.get(o.layer)?.usesModes === true ? `client modes ${o.modes.join(',')}, ` : ''}${perGroup} seeds each, ` +
      `faults ${o.faultsText}, crypto ${o.crypto}, ${o.workers} worker(s)\n`,
  );

  await runInOrder(jobsOf(o), o.workers, (outcome, job) => {
    const label = labelOf(job);
    if (!groups.has(label)) groups.set(label, new Stats());
    const group = groups.get(label)!;
    group.add(outcome);
    let block = blocks.get(label);
    if (block === undefined) blocks.set(label, (block = new Stats()));
    block.add(outcome);
    if (o.verbose) {
      io.out(
        `${label} seed ${job.seed}: height ${outcome.maxHeight}, ${fixed(outcome.commitsPerSecond)} commits/s, ` +
          `faults ${JSON.stringify(outcome.faultsReported)}, rejected ${outcome.rejectedFrames}, ${fixed(outcome.realMs, 0)} ms` +
          `${outcome.violations.length > 0 ? `, ${outcome.violations.length} VIOLATIONS` : ''}\n` +
          (outcome.ordering === undefined ? '' : `    ${orderingLine(outcome.ordering)}\n`) +
          outcome.scenario.map((l) => `    ${l}\n`).join(''),
      );
    }
    if (outcome.violations.length > 0) {
      found.failure = { job, outcome };
      return false;
    }
    if (block.runs >= o.block || group.runs === perGroup) {
      io.out(`${blockLine(label, block)}\n`);
      blocks.delete(label);
    }
    return true;
  });

  const wallMs = performance.now() - started;
  if (found.failure === null) {
    io.out(`\n${table(groups, wallMs, o.workers)}\n`);
    return 0;
  }
  // The table of the runs so far, then the failing run, so the reproduce command is the last word.
  const { job, outcome } = found.failure;
  const report = failureReport(o, job, outcome);
  io.out(`\n${table(groups, wallMs, o.workers)}\n\n${report}\n`);
  try {
    mkdirSync(o.failuresDir, { recursive: true });
    const file = join(o.failuresDir, `${job.n}-${job.rule}${job.mode === undefined ? '' : `-${job.mode}`}-${job.seed}.txt`);
    writeFileSync(file, `${report}\n`);
    io.out(`written to ${file}\n`);
  } catch (error) {
    io.err(`sim: could not write the failure file: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  return EXIT_VIOLATION;
}

// ---------------------------------------------------------------------------------------------
// Command line

const defaultWorkers = (): number => Math.min(2, availableParallelism());

interface RawOptions {
  layer: string;
  replicas: string;
  seeds: string;
  faults: string;
  rule: string;
  modes: string;
  crypto: 'ed25519' | 'fast';
  workers: string;
  afterGstMs?: string;
  block: string;
  verbose?: boolean;
}

function buildCommand(io: SimIo, onParsed: (raw: RawOptions) => void): Command {
  return new Command('sim')
    .description('Seeded simulation runs with fault injection and invariant checkers (DESIGN.md, THREATS.md).')
    .addOption(new Option('--layer <name>', 'what to simulate').choices(LAYER_NAMES).default('consensus'))
    .option('--replicas <list>', 'replica counts, e.g. 4 or 4,7', '4')
    .option('--seeds <seeds>', 'seeds: a..b, a,b,c or one number', '1..100')
    .option('--faults <kinds>', "fault kinds: 'all', 'none' or a comma-separated list", 'all')
    .addOption(new Option('--rule <rule>', 'commit rule').choices(['3-chain', '2-chain', 'both']).default('both'))
    .addOption(
      new Option('--modes <mode>', "client modes, layer full: 'both' runs each seed with direct and with gateway clients")
        .choices([...SIM_CLIENT_MODES, 'both'])
        .default('mixed'),
    )
    .addOption(new Option('--crypto <kind>', 'signatures: real Ed25519, or a fast keyed hash').choices(['ed25519', 'fast']).default('ed25519'))
    .option('--workers <n>', 'worker threads (0: run in this thread)', String(defaultWorkers()))
    .option('--after-gst-ms <ms>', 'virtual time simulated after the network stabilises')
    .option('--block <runs>', 'print a summary line every this many runs of one (replicas, rule)', '100')
    .option('--verbose', 'print every run with its scenario')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .action((raw: RawOptions) => onParsed(raw));
}

const wholeNumber = (text: string | undefined, min: number, max: number): number | null =>
  text !== undefined && /^\d+$/.test(text) && Number(text) >= min && Number(text) <= max ? Number(text) : null;

/** Parses user arguments (no `node script` prefix); a number is the exit code for help or a usage error. */
export function parseArgs(argv: readonly string[], io: SimIo): CliOptions | number {
  let raw: RawOptions | undefined;
  try {
    buildCommand(io, (r) => (raw = r)).parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    throw error;
  }
  if (raw === undefined) return EXIT_USAGE;
  const r: RawOptions = raw;
  const usage = (message: string): number => {
    io.err(`sim: ${message}\n`);
    return EXIT_USAGE;
  };
  const replicas = parseReplicas(r.replicas);
  if (typeof replicas === 'string') return usage(replicas);
  const seeds = parseSeeds(r.seeds);
  if (typeof seeds === 'string') return usage(seeds);
  const faults = parseFaultList(r.faults, LAYERS.get(r.layer)!.faultKinds);
  if (!faults.ok) return usage(`--faults: ${faults.error.message}`);
  const workers = wholeNumber(r.workers, 0, 256);
  if (workers === null) return usage(`--workers: '${r.workers}' is not a number from 0 to 256`);
  const block = wholeNumber(r.block, 1, Number.MAX_SAFE_INTEGER);
  if (block === null) return usage(`--block: '${r.block}' is not a positive number`);
  const afterGstMs = r.afterGstMs === undefined ? undefined : wholeNumber(r.afterGstMs, 1, 3_600_000);
  if (afterGstMs === null) return usage(`--after-gst-ms: '${r.afterGstMs}' is not a number of ms from 1 to 3600000`);
  return {
    layer: r.layer,
    replicas,
    seeds,
    faultsText: r.faults,
    faults: [...faults.value],
    rules: r.rule === 'both' ? ['3-chain', '2-chain'] : [r.rule as CommitRule],
    modes: r.modes === 'both' ? ['direct', 'gateway'] : [r.modes as SimClientMode],
    crypto: r.crypto,
    workers,
    afterGstMs,
    block,
    verbose: r.verbose === true,
    failuresDir: FAILURES_DIR,
  };
}

export async function main(argv: readonly string[] = process.argv.slice(2), io: SimIo = stdio): Promise<number> {
  const options = parseArgs(argv, io);
  if (typeof options === 'number') return options;
  return runSim(options, io);
}

const stdio: SimIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main();
