import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkFairness, type FairnessColumns } from './linearizability.js';

interface Command {
  submitUs: number;
  orderedUs: number;
  tsUs: number;
  position: number;
  index: number;
}

function columns(commands: readonly Command[]): FairnessColumns {
  const col = (key: keyof Command): Float64Array => Float64Array.from(commands, (c) => c[key]);
  return { count: commands.length, submitUs: col('submitUs'), orderedUs: col('orderedUs'), tsUs: col('tsUs'), position: col('position'), index: col('index') };
}

/** The definition, pair by pair: commands b with some a ordered before b's submit, executed after b. */
function bruteForce(commands: readonly Command[]): { linearizability: number; timestampOrder: number } {
  const executesAfter = (a: Command, b: Command): boolean => a.position > b.position || (a.position === b.position && a.index > b.index);
  const linearizability = commands.filter((b) => commands.some((a) => a.orderedUs < b.submitUs && executesAfter(a, b))).length;
  const sorted = [...commands].sort((a, b) => a.position - b.position || a.index - b.index);
  let timestampOrder = 0;
  for (let k = 1; k < sorted.length; k++) if ((sorted[k] as Command).tsUs < (sorted[k - 1] as Command).tsUs) timestampOrder++;
  return { linearizability, timestampOrder };
}

/** A correct run: batches executed in timestamp order, each ordered after all its commands' submits. */
const clean: Command[] = [
  { submitUs: 100, orderedUs: 150, tsUs: 140, position: 0, index: 0 },
  { submitUs: 110, orderedUs: 150, tsUs: 140, position: 0, index: 1 },
  { submitUs: 120, orderedUs: 170, tsUs: 160, position: 1, index: 0 }, // another client, concurrent
  { submitUs: 200, orderedUs: 260, tsUs: 250, position: 2, index: 0 },
  { submitUs: 205, orderedUs: 262, tsUs: 255, position: 3, index: 0 },
];

describe('checkFairness', () => {
  it('reports no violation on a correct run', () => {
    expect(checkFairness(columns(clean))).toEqual({ commandsChecked: 5, linearizabilityViolations: 0, timestampOrderViolations: 0 });
  });

  it('catches a command executed before one that was ordered before it was submitted', () => {
    // Client X's command completed ordering at 300; client Y submitted at 310, yet Y executes first.
    const planted: Command[] = [
      ...clean,
      { submitUs: 280, orderedUs: 300, tsUs: 295, position: 5, index: 0 },
      { submitUs: 310, orderedUs: 360, tsUs: 290, position: 4, index: 0 },
    ];
    const report = checkFairness(columns(planted));
    expect(report.linearizabilityViolations).toBe(1);
    expect(report.commandsChecked).toBe(7);
  });

  it('does not count commands that were concurrent (b submitted before a finished ordering)', () => {
    const concurrent: Command[] = [
      { submitUs: 100, orderedUs: 300, tsUs: 200, position: 1, index: 0 },
      { submitUs: 250, orderedUs: 320, tsUs: 190, position: 0, index: 0 },
    ];
    expect(checkFairness(columns(concurrent)).linearizabilityViolations).toBe(0);
  });

  it('counts descents of the timestamp along the execution order', () => {
    const planted: Command[] = [...clean, { submitUs: 1, orderedUs: 2, tsUs: 100, position: 4, index: 0 }];
    expect(checkFairness(columns(planted)).timestampOrderViolations).toBe(1);
  });

  it('handles no commands', () => {
    expect(checkFairness(columns([]))).toEqual({ commandsChecked: 0, linearizabilityViolations: 0, timestampOrderViolations: 0 });
  });

  it('agrees with the pairwise definition on random runs', () => {
    const command = fc.record({
      submitUs: fc.integer({ min: 0, max: 50 }),
      orderedUs: fc.integer({ min: 0, max: 50 }),
      tsUs: fc.integer({ min: 0, max: 50 }),
      position: fc.integer({ min: 0, max: 8 }),
      index: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(fc.array(command, { maxLength: 40 }), (commands) => {
        const report = checkFairness(columns(commands));
        const expected = bruteForce(commands);
        expect(report.linearizabilityViolations).toBe(expected.linearizability);
        expect(report.timestampOrderViolations).toBe(expected.timestampOrder);
      }),
      { numRuns: 500 },
    );
  });
});
