/**
 * The fairness check over all clients' detail logs (DESIGN.md "What must hold"), two counts that are
 * 0 in a correct system, over the executed commands:
 *
 * - Linearizability violations: commands b for which some command a had completed ordering before b
 *   was submitted (a.ordered < b.submit), yet a executes after b ((position, index) order).
 * - Timestamp order violations: places in the execution sequence where the agreed timestamp goes
 *   down (a batch with a smaller timestamp executed after one with a larger timestamp).
 *
 * Both in O(N log N): a pairwise check would be quadratic, and runs log millions of commands.
 */
import { outcomeCode, type DetailLines } from './readDetails.js';

/** One entry per executed command. A command whose ordering was never observed has orderedUs
 *  NEVER_ORDERED (it can only be the later one, b, of a pair); one whose index in its batch is
 *  unknown (gateway mode) has index −1, executing level with its whole batch. */
export interface FairnessColumns {
  readonly count: number;
  readonly submitUs: Float64Array;
  readonly orderedUs: Float64Array;
  readonly tsUs: Float64Array;
  readonly position: Float64Array;
  readonly index: Float64Array;
}

export const NEVER_ORDERED = Number.MAX_VALUE;

/** The executed commands of a run's detail lines (outcome executed or executed_unordered). */
export function executedCommands(d: DetailLines): FairnessColumns {
  const executed = outcomeCode('executed');
  const unordered = outcomeCode('executed_unordered');
  const rows: number[] = [];
  for (let i = 0; i < d.count; i++) if (d.outcome[i] === executed || d.outcome[i] === unordered) rows.push(i);
  const pick = (column: Float64Array, unknown: number): Float64Array => Float64Array.from(rows, (i) => (Number.isNaN(column[i]!) ? unknown : column[i]!));
  return {
    count: rows.length,
    submitUs: pick(d.submitUs, 0),
    orderedUs: pick(d.orderedUs, NEVER_ORDERED),
    tsUs: pick(d.tsUs, 0),
    position: pick(d.position, 0),
    index: pick(d.index, -1),
  };
}

export interface FairnessReport {
  readonly commandsChecked: number;
  readonly linearizabilityViolations: number;
  readonly timestampOrderViolations: number;
}

/** Command numbers 0..n−1 sorted by `compare` (typed, so millions of commands stay compact). */
function sortedCommands(n: number, compare: (a: number, b: number) => number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort(compare);
}

export function checkFairness(d: FairnessColumns): FairnessReport {
  const n = d.count;
  const { submitUs, orderedUs, tsUs, position, index } = d;

  // Execution rank: place in the (position, index) order; equal keys share a rank, so duplicate
  // lines of one command can never count as executing after themselves.
  const byExecution = sortedCommands(n, (a, b) => (position[a] as number) - (position[b] as number) || (index[a] as number) - (index[b] as number));
  const executionRank = new Float64Array(n);
  let timestampOrderViolations = 0;
  let rank = 0;
  for (let k = 0; k < n; k++) {
    const c = byExecution[k] as number;
    if (k > 0) {
      const prev = byExecution[k - 1] as number;
      if (position[prev] !== position[c] || index[prev] !== index[c]) rank = k;
      if ((tsUs[c] as number) < (tsUs[prev] as number)) timestampOrderViolations++;
    }
    executionRank[c] = rank;
  }

  // Sweep commands b in submit order; `latestRank` is the highest execution rank among every a
  // with a.ordered < b.submit, gathered by a second pointer over the commands in ordered order.
  const bySubmit = sortedCommands(n, (a, b) => (submitUs[a] as number) - (submitUs[b] as number));
  const byOrdered = sortedCommands(n, (a, b) => (orderedUs[a] as number) - (orderedUs[b] as number));
  let linearizabilityViolations = 0;
  let latestRank = -1;
  let j = 0;
  for (let k = 0; k < n; k++) {
    const b = bySubmit[k] as number;
    const bSubmitUs = submitUs[b] as number;
    while (j < n && (orderedUs[byOrdered[j] as number] as number) < bSubmitUs) {
      latestRank = Math.max(latestRank, executionRank[byOrdered[j] as number] as number);
      j++;
    }
    if (latestRank > (executionRank[b] as number)) linearizabilityViolations++;
  }

  return { commandsChecked: n, linearizabilityViolations, timestampOrderViolations };
}
