/**
 * No loss, no duplicates, complete logs: what a run's detail lines (readDetails.ts) show about
 * every command the benchmark offered. Every count is 0 in a correct run that ended cleanly:
 *
 * - missingLines: sequence numbers a client skipped (each client numbers its commands 1, 2, 3, …,
 *   and every command gets a line): a command the logs lost.
 * - duplicateLines: more than one line for one (client, seq).
 * - executedTwice: a (client, seq) reported executed more than once.
 * - positionCollisions: two different commands executed at the same (position, index).
 * - lostAfterOrdering: commands whose ordering completed (q acks: the cluster must execute them)
 *   that then failed or timed out at the client instead of executing. (A timeout can be the
 *   client's patience, not a loss: the count says where to look.)
 * - batchMismatches: executed lines of one batch digest that disagree on its position or timestamp.
 *
 * Unfinished commands (in flight when the run ended) are counted, not judged.
 */
import { DETAIL_OUTCOMES, type DetailOutcome } from '../../client/detailLog.js';
import { outcomeCode, type DetailLines } from './readDetails.js';

export interface IntegrityReport {
  readonly lines: number;
  readonly clients: number;
  readonly outcomes: Readonly<Record<DetailOutcome, number>>;
  readonly missingLines: number;
  readonly duplicateLines: number;
  readonly executedTwice: number;
  readonly positionCollisions: number;
  readonly lostAfterOrdering: number;
  readonly batchMismatches: number;
}

function sortedRows(n: number, compare: (a: number, b: number) => number, keep: (i: number) => boolean = () => true): Uint32Array {
  const rows: number[] = [];
  for (let i = 0; i < n; i++) if (keep(i)) rows.push(i);
  return Uint32Array.from(rows).sort(compare);
}

export function checkIntegrity(d: DetailLines): IntegrityReport {
  const { count: n, client, seq, position, index, outcome, orderedUs, tsUs, batch } = d;
  const executed = outcomeCode('executed');
  const unordered = outcomeCode('executed_unordered');
  const isExecuted = (i: number): boolean => outcome[i] === executed || outcome[i] === unordered;

  const outcomes = Object.fromEntries(DETAIL_OUTCOMES.map((o) => [o, 0])) as Record<DetailOutcome, number>;
  for (let i = 0; i < n; i++) outcomes[DETAIL_OUTCOMES[outcome[i]!]!]++;

  // Per client, in sequence order: gaps, repeats, and repeats that both executed.
  const bySeq = sortedRows(n, (a, b) => client[a]! - client[b]! || seq[a]! - seq[b]!);
  let missingLines = 0;
  let duplicateLines = 0;
  let executedTwice = 0;
  for (let k = 0; k < bySeq.length; k++) {
    const i = bySeq[k]!;
    const prev = k > 0 ? bySeq[k - 1]! : -1;
    const sameClient = prev >= 0 && client[prev] === client[i];
    const expected = sameClient ? seq[prev]! + 1 : 1;
    if (sameClient && seq[prev] === seq[i]) {
      duplicateLines++;
      // Two executed lines in a row of one (client, seq): the first of a run was counted already.
      if (isExecuted(i) && isExecuted(prev)) executedTwice++;
    } else if (seq[i]! > expected) {
      missingLines += seq[i]! - expected;
    }
  }

  // Executed commands in execution order (one command's repeated lines side by side): every
  // command beyond the first at one place collides.
  const byPlace = sortedRows(
    n,
    (a, b) => position[a]! - position[b]! || index[a]! - index[b]! || client[a]! - client[b]! || seq[a]! - seq[b]!,
    (i) => isExecuted(i) && !Number.isNaN(index[i]!),
  );
  let positionCollisions = 0;
  for (let k = 1; k < byPlace.length; k++) {
    const [a, b] = [byPlace[k - 1]!, byPlace[k]!];
    if (position[a] === position[b] && index[a] === index[b] && (client[a] !== client[b] || seq[a] !== seq[b])) positionCollisions++;
  }

  let lostAfterOrdering = 0;
  const failed = outcomeCode('failed');
  const timedOut = outcomeCode('timed_out');
  for (let i = 0; i < n; i++) if ((outcome[i] === failed || outcome[i] === timedOut) && !Number.isNaN(orderedUs[i]!)) lostAfterOrdering++;

  const placeOf = new Map<number, { position: number; ts: number }>();
  let batchMismatches = 0;
  for (let i = 0; i < n; i++) {
    if (!isExecuted(i) || batch[i]! < 0) continue;
    const seen = placeOf.get(batch[i]!);
    if (seen === undefined) placeOf.set(batch[i]!, { position: position[i]!, ts: tsUs[i]! });
    else if (seen.position !== position[i] || seen.ts !== tsUs[i]) batchMismatches++;
  }

  return {
    lines: n,
    clients: d.clientNames.length,
    outcomes,
    missingLines,
    duplicateLines,
    executedTwice,
    positionCollisions,
    lostAfterOrdering,
    batchMismatches,
  };
}
