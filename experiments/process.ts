/**
 * The process script: summarises benchmark client logs, compatible with Pompe-HS process.py and
 * more (throughput, fairness check, plots, JSON, no crash on empty or damaged logs).
 *
 *   node dist/experiments/process.js order|exec|client <dir> [--plot out.svg|out.png] [--json]
 *
 * Also a library entry (runProcess) so the `pompe` CLI can offer it as `pompe process ...`.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { Argument, Command, CommanderError } from 'commander';
import { checkIntegrity } from './process/integrity.js';
import { checkFairness, executedCommands } from './process/linearizability.js';
import { detailLogFiles, isLogKind, LOG_KINDS, latencyLogFiles, type LogKind } from './process/logFiles.js';
import { summarizeLatencies } from './process/percentiles.js';
import { cdfPoints, PLOT_EXTENSIONS, writePlot } from './process/plot.js';
import { readDetailLogs } from './process/readDetails.js';
import { readLatencyLogs } from './process/readLatencies.js';
import { formatJson, formatText, type FairnessSummary, type ProcessSummary } from './process/report.js';
import { measureThroughput, throughputSeries } from './process/throughput.js';
import { readRunInfo } from './runInfo.js';
import { isEntryPoint } from '../client/entryPoint.js';

export interface ProcessOptions {
  /** order | exec | client: read the files whose name contains this word. */
  readonly kind: string;
  readonly dir: string;
  /** Also draw the figure to this .svg or .png file. */
  readonly plot?: string | undefined;
  /** Print a JSON summary instead of the text block. */
  readonly json?: boolean | undefined;
}

/** Where output goes; tests and embedding CLIs capture it. */
export interface ProcessIo {
  out(text: string): void;
  err(text: string): void;
}

const stdIo: ProcessIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Exit codes: bad command line, and a directory or file that cannot be read or written. */
const EXIT_USAGE = 2;
const EXIT_IO = 1;

const HELP_AFTER = `
Reads every file in <dir> whose name contains <kind> (as Pompe-HS process.py does; detail logs,
and for "client" the order/exec logs, are left out), line format:
  2026-11-20 12:00:00.123456 [pompe info] 0.002481   (completion time, latency in seconds)
Malformed lines are skipped and counted on stderr.

Prints (latencies in ms, nearest-rank percentiles lat[int(n*p)] as process.py):
  Total: <N>  transactions
  50%:  <ms>
  90%:  <ms>
  99%:  <ms>
  Average:  <ms>
  Throughput: <X>  commands/s over <S> s   (earliest command start to latest completion)
  Files: <k>
and, when <dir> holds client<i>.detail.log files (one line per command offered), the checks
across clients, each 0 in a correct run:
  Linearizability violations: <V>  (commands checked: <N>)
  Timestamp order violations: <V>
  Detail lines: <N> from <C> clients  (executed <E>, executed_unordered <U>, failed <F>, …)
  Lost after ordering: <L>  Executed twice: <T>  Position collisions: <P>
  Missing lines: <M>  Duplicate lines: <D>  Batch mismatches: <B>

Exit status: 0 on success (also for empty logs), ${EXIT_USAGE} on a bad command line,
${EXIT_IO} when <dir> or a file cannot be read or the plot cannot be written.

Examples:
  node dist/experiments/process.js exec experiments/data
  node dist/experiments/process.js order experiments/data --plot order.png --json`;

function buildCommand(io: ProcessIo, onParsed: (options: ProcessOptions) => void): Command {
  return new Command('process')
    .description('Summarise benchmark client latency logs: percentiles, throughput, fairness check, plots.')
    .addArgument(new Argument('<kind>', 'which logs to read').choices(LOG_KINDS))
    .argument('<dir>', 'directory holding the client logs')
    .option('--plot <file>', 'also draw latency CDF and throughput over time to a .svg or .png file')
    .option('--json', 'print a machine-readable JSON summary instead of the text block')
    .addHelpText('after', HELP_AFTER)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .action((kind: string, dir: string, opts: { plot?: string; json?: boolean }) => {
      onParsed({ kind, dir, plot: opts.plot, json: opts.json });
    });
}

/** Parses user arguments (no `node script` prefix); a number is the exit code for help or a usage error. */
function parseArgs(argv: readonly string[], io: ProcessIo): ProcessOptions | number {
  let parsed: ProcessOptions | undefined;
  try {
    buildCommand(io, (options) => (parsed = options)).parse([...argv], { from: 'user' });
  } catch (error) {
    // Commander has already printed help or the error message.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    throw error;
  }
  return parsed ?? EXIT_USAGE;
}

/** Why --plot cannot work, before any file is read; undefined when it can (or is not asked for). */
function plotPathProblem(plotPath: string | undefined): string | undefined {
  if (plotPath === undefined) return undefined;
  const extension = extname(plotPath).toLowerCase();
  if ((PLOT_EXTENSIONS as readonly string[]).includes(extension)) return undefined;
  return `--plot ${plotPath}: the file name must end in ${PLOT_EXTENSIONS.join(' or ')}`;
}

function usageError(io: ProcessIo, message: string): number {
  io.err(`process: ${message}\n`);
  return EXIT_USAGE;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function summarise(kind: LogKind, options: ProcessOptions, io: ProcessIo): Promise<number> {
  const { dir, plot: plotPath } = options;
  const files = await latencyLogFiles(dir, kind);
  const data = await readLatencyLogs(files);
  if (data.malformedLines > 0) io.err(`process: skipped ${data.malformedLines} malformed line(s) in the ${kind} logs\n`);
  const latency = summarizeLatencies(data.latenciesUs);
  if (latency === undefined) {
    io.err(`process: note: no ${kind} log lines in ${dir} (${files.length} matching file(s)); nothing to summarise\n`);
  }

  let fairness: FairnessSummary | undefined;
  const detailFiles = await detailLogFiles(dir);
  if (detailFiles.length > 0) {
    const details = await readDetailLogs(detailFiles);
    if (details.malformedLines > 0) io.err(`process: skipped ${details.malformedLines} malformed line(s) in the detail logs\n`);
    fairness = {
      ...checkFairness(executedCommands(details)),
      integrity: checkIntegrity(details),
      files: detailFiles.map((f) => basename(f)),
      malformedLines: details.malformedLines,
    };
  }

  const summary: ProcessSummary = {
    kind,
    dir,
    files: files.map((f) => basename(f)),
    malformedLines: data.malformedLines,
    latency,
    throughput: measureThroughput(latency?.count ?? 0, data.firstStartWallUs, data.lastCompletionWallUs),
    fairness,
    plotPath: latency === undefined ? undefined : plotPath,
  };
  io.out(options.json === true ? formatJson(summary) : formatText(summary));

  if (plotPath !== undefined) {
    if (latency === undefined) {
      io.err(`process: no data to plot; ${plotPath} not written\n`);
    } else {
      // summarizeLatencies sorted data.latenciesUs in place, as the CDF needs.
      // The run's name (its folder, or run.json's), its parameters, and the percentiles marked.
      const run = await readRunInfo(dir);
      const plot = {
        title: `${run.name ?? basename(resolve(dir))}: ${kind} latency`,
        subtitle: run.parameters,
        marks: [
          { label: 'p50', latencyMs: latency.p50Us / 1000, fraction: 0.5 },
          { label: 'p99', latencyMs: latency.p99Us / 1000, fraction: 0.99 },
        ],
        cdf: cdfPoints(data.latenciesUs),
        throughput: throughputSeries(data.completionsPerSecond),
      };
      await writePlot(plot, plotPath).catch((error: unknown) => {
        throw new Error(`cannot write the plot ${plotPath}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
  }
  return 0;
}

/**
 * Runs the process script on user arguments (as after `node process.js`) or on parsed options, and
 * resolves to the exit code; it never exits the process itself, so the `pompe` CLI can embed it.
 */
export async function runProcess(args: readonly string[] | ProcessOptions, io: ProcessIo = stdIo): Promise<number> {
  const options = isArgv(args) ? parseArgs(args, io) : args;
  if (typeof options === 'number') return options;
  const kind = options.kind;
  if (!isLogKind(kind)) return usageError(io, `unknown log kind '${kind}': expected one of ${LOG_KINDS.join(', ')}`);
  const plotProblem = plotPathProblem(options.plot);
  if (plotProblem !== undefined) return usageError(io, plotProblem);
  if (!(await isDirectory(options.dir))) {
    io.err(`process: ${options.dir}: not found or not a directory\n`);
    return EXIT_IO;
  }
  // Checked now, not after reading gigabytes of logs.
  if (options.plot !== undefined && !(await isDirectory(dirname(resolve(options.plot))))) {
    io.err(`process: --plot ${options.plot}: its directory does not exist\n`);
    return EXIT_IO;
  }
  try {
    return await summarise(kind, options, io);
  } catch (error) {
    // A file that vanished or became unreadable mid-run, or a plot path that cannot be written.
    io.err(`process: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_IO;
  }
}

function isArgv(args: readonly string[] | ProcessOptions): args is readonly string[] {
  return Array.isArray(args);
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runProcess(argv);
}

if (isEntryPoint(import.meta.url)) await main();
