/**
 * Reads per-command detail logs (client/detailLog.ts) into columns for the fairness check.
 * Line: `submit_us ordered_us executed_us ts_us position index`, six integers; `#` lines are comments.
 */
import { forEachLine } from './forEachLine.js';
import { GrowableFloat64Array } from './growableFloat64Array.js';

/** The columns the fairness check needs, one entry per command (executed_us is validated, not kept). */
export interface DetailColumns {
  readonly count: number;
  readonly submitUs: Float64Array;
  readonly orderedUs: Float64Array;
  readonly tsUs: Float64Array;
  readonly position: Float64Array;
  readonly index: Float64Array;
}

export interface DetailData extends DetailColumns {
  readonly malformedLines: number;
}

const DETAIL_LINE = /^\s*(\d+) (\d+) (\d+) (\d+) (\d+) (\d+)\s*$/;

export async function readDetailLogs(paths: readonly string[]): Promise<DetailData> {
  const submitUs = new GrowableFloat64Array();
  const orderedUs = new GrowableFloat64Array();
  const tsUs = new GrowableFloat64Array();
  const position = new GrowableFloat64Array();
  const index = new GrowableFloat64Array();
  let malformedLines = 0;

  const onLine = (line: string): void => {
    const m = DETAIL_LINE.exec(line);
    if (m === null) {
      const trimmed = line.trim();
      if (trimmed !== '' && !trimmed.startsWith('#')) malformedLines++;
      return;
    }
    const values = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number);
    // Beyond 2^53 a double cannot hold the integer, and comparisons would silently be wrong.
    if (!values.every(Number.isSafeInteger)) {
      malformedLines++;
      return;
    }
    const [submit, ordered, , ts, pos, idx] = values as [number, number, number, number, number, number];
    submitUs.push(submit);
    orderedUs.push(ordered);
    tsUs.push(ts);
    position.push(pos);
    index.push(idx);
  };

  for (const path of paths) {
    // Not `malformedLines += await …`: that would read the count before onLine adds to it.
    const overlongLines = await forEachLine(path, onLine);
    malformedLines += overlongLines;
  }
  return {
    count: submitUs.length,
    submitUs: submitUs.view(),
    orderedUs: orderedUs.view(),
    tsUs: tsUs.view(),
    position: position.view(),
    index: index.view(),
    malformedLines,
  };
}
