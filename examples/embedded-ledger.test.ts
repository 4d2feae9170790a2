/**
 * The embedding example stays true: replicas with an application's own state machine execute the
 * client's entries in one order everywhere, and the client's receipts match the ledgers.
 */
import { describe, expect, it } from 'vitest';
import { runLedger } from './embedded-ledger.js';

describe('examples/embedded-ledger', () => {
  it('orders the entries once, identically at every replica, and tells the client where each landed', async () => {
    const entries = Array.from({ length: 20 }, (_, i) => `entry ${i}`);
    const run = await runLedger(entries);
    expect(run.ledgers).toHaveLength(4);
    for (const ledger of run.ledgers) {
      expect(ledger).toEqual(run.ledgers[0]);
      expect([...ledger].sort()).toEqual([...entries].sort());
    }
    for (const r of run.receipts) expect(run.ledgers[0]![r.index]).toBe(r.entry);
  }, 30_000);
});
