/**
 * Reads per-command detail logs (client/detailLog.ts, format v2) into columns: typed arrays, so
 * runs of millions of commands stay compact. Unknown values (`-`) are NaN; client names and batch
 * digests are numbered (clientNames[client[i]], batch[i] = −1 when unknown). `#` lines are comments.
 */
import { DETAIL_OUTCOMES, type DetailOutcome } from '../../client/detailLog.js';
import { forEachLine } from './forEachLine.js';
import { GrowableFloat64Array } from './growableFloat64Array.js';

export interface DetailLines {
  readonly count: number;
  readonly clientNames: readonly string[];
  readonly client: Float64Array;
  readonly seq: Float64Array;
  readonly batch: Float64Array;
  readonly submitUs: Float64Array;
  readonly orderedUs: Float64Array;
  readonly executedUs: Float64Array;
  readonly tsUs: Float64Array;
  readonly position: Float64Array;
  readonly index: Float64Array;
  /** Index into DETAIL_OUTCOMES. */
  readonly outcome: Float64Array;
  /** 1 measured, 0 warm-up. */
  readonly measured: Float64Array;
}

export interface DetailData extends DetailLines {
  readonly malformedLines: number;
}

const FIELDS = 11;
const DIGEST = /^[0-9a-f]{64}$/;
const INTEGER = /^\d+$/;
const OUTCOME_CODES = new Map<string, number>(DETAIL_OUTCOMES.map((o, i) => [o, i]));
const PHASES = new Map([
  ['warmup', 0],
  ['measured', 1],
]);

export const outcomeCode = (outcome: DetailOutcome): number => OUTCOME_CODES.get(outcome)!;

/** An integer field, NaN for `-`, undefined when malformed (or past 2^53, where doubles lose integers). */
function integer(text: string, optional: boolean): number | undefined {
  if (text === '-') return optional ? NaN : undefined;
  if (!INTEGER.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

export async function readDetailLogs(paths: readonly string[]): Promise<DetailData> {
  const columns = {
    client: new GrowableFloat64Array(),
    seq: new GrowableFloat64Array(),
    batch: new GrowableFloat64Array(),
    submitUs: new GrowableFloat64Array(),
    orderedUs: new GrowableFloat64Array(),
    executedUs: new GrowableFloat64Array(),
    tsUs: new GrowableFloat64Array(),
    position: new GrowableFloat64Array(),
    index: new GrowableFloat64Array(),
    outcome: new GrowableFloat64Array(),
    measured: new GrowableFloat64Array(),
  };
  const clientNames: string[] = [];
  const clientIds = new Map<string, number>();
  const batchIds = new Map<string, number>();
  let malformedLines = 0;

  const onLine = (line: string): void => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const f = trimmed.split(' ');
    if (f.length !== FIELDS) return void malformedLines++;
    const [name, seqText, digest, ...rest] = f as [string, string, string, ...string[]];
    const seq = integer(seqText, false);
    const submit = integer(rest[0]!, false);
    const times = [rest[1]!, rest[2]!, rest[3]!, rest[4]!, rest[5]!].map((t) => integer(t, true));
    const outcome = OUTCOME_CODES.get(rest[6]!);
    const phase = PHASES.get(rest[7]!);
    if (seq === undefined || submit === undefined || times.includes(undefined) || outcome === undefined || phase === undefined) return void malformedLines++;
    if (digest !== '-' && !DIGEST.test(digest)) return void malformedLines++;
    let client = clientIds.get(name);
    if (client === undefined) {
      client = clientNames.push(name) - 1;
      clientIds.set(name, client);
    }
    let batch = -1;
    if (digest !== '-') {
      batch = batchIds.get(digest) ?? batchIds.size;
      if (batch === batchIds.size) batchIds.set(digest, batch);
    }
    const [ordered, executed, ts, position, index] = times as [number, number, number, number, number];
    columns.client.push(client);
    columns.seq.push(seq);
    columns.batch.push(batch);
    columns.submitUs.push(submit);
    columns.orderedUs.push(ordered);
    columns.executedUs.push(executed);
    columns.tsUs.push(ts);
    columns.position.push(position);
    columns.index.push(index);
    columns.outcome.push(outcome);
    columns.measured.push(phase);
  };

  for (const path of paths) {
    // Not `malformedLines += await …`: that would read the count before onLine adds to it.
    const overlongLines = await forEachLine(path, onLine);
    malformedLines += overlongLines;
  }
  return {
    count: columns.seq.length,
    clientNames,
    client: columns.client.view(),
    seq: columns.seq.view(),
    batch: columns.batch.view(),
    submitUs: columns.submitUs.view(),
    orderedUs: columns.orderedUs.view(),
    executedUs: columns.executedUs.view(),
    tsUs: columns.tsUs.view(),
    position: columns.position.view(),
    index: columns.index.view(),
    outcome: columns.outcome.view(),
    measured: columns.measured.view(),
    malformedLines,
  };
}
