import { describe, expect, it } from 'vitest';
import { Admission, CLIENT_BATCH_BYTES_PER_SECOND, DEFAULT_ADMISSION_LIMITS, CLIENT_BATCHES_PER_SECOND, GATEWAY_BATCHES_PER_SECOND, THIN_COMMANDS_PER_SECOND_PER_CLIENT } from './admission.js';

describe('Admission', () => {
  it('gives each key a second’s burst of batches, then its rate, without touching other keys', () => {
    const a = new Admission();
    for (let i = 0; i < CLIENT_BATCHES_PER_SECOND; i++) expect(a.admitBatch('flooder', 100, 0)).toBe(true);
    expect(a.admitBatch('flooder', 100, 0)).toBe(false);
    expect(a.admitBatch('honest', 100, 0)).toBe(true);
    // 40 ms later: a 25th of a second's worth more.
    const admitted = Array.from({ length: 20 }, () => a.admitBatch('flooder', 100, 40_000)).filter(Boolean).length;
    expect(admitted).toBe(CLIENT_BATCHES_PER_SECOND / 25);
    expect(a.refusedBatches).toBe(1 + 20 - admitted);
  });

  it('budgets bytes too, and a refused batch spends nothing', () => {
    const a = new Admission();
    expect(a.admitBatch('big', CLIENT_BATCH_BYTES_PER_SECOND, 0)).toBe(true);
    expect(a.admitBatch('big', 1, 0)).toBe(false);
    expect(a.admitBatch('big', CLIENT_BATCH_BYTES_PER_SECOND / 2, 500_000)).toBe(true);
  });

  it('gives a gateway replica a larger batch rate, and thin clients a command rate', () => {
    const a = new Admission();
    let gateway = 0;
    while (a.admitBatch('replica', 10, 0, true)) gateway++;
    expect(gateway).toBe(GATEWAY_BATCHES_PER_SECOND);
    let commands = 0;
    while (a.admitCommand('thin', 0)) commands++;
    expect(commands).toBe(THIN_COMMANDS_PER_SECOND_PER_CLIENT);
  });

  it('takes other limits (a simulation modelling a larger per-key budget)', () => {
    const a = new Admission({ ...DEFAULT_ADMISSION_LIMITS, clientBatchesPerSecond: 1_000 });
    let batches = 0;
    while (a.admitBatch('client', 10, 0)) batches++;
    expect(batches).toBe(1_000);
    let commands = 0;
    while (a.admitCommand('thin', 0)) commands++;
    expect(commands).toBe(THIN_COMMANDS_PER_SECOND_PER_CLIENT);
  });

  it('says whether it would admit batches (one and those queued before it) without spending or remembering anything', () => {
    const a = new Admission();
    expect(a.wouldAdmitBatches('new', 1, CLIENT_BATCH_BYTES_PER_SECOND, 0)).toBe(true);
    for (let i = 0; i < CLIENT_BATCHES_PER_SECOND - 2; i++) a.admitBatch('flooder', 10, 0);
    expect(a.wouldAdmitBatches('flooder', 2, 20, 0)).toBe(true);
    expect(a.wouldAdmitBatches('flooder', 3, 30, 0)).toBe(false); // two waiting and this one
    a.admitBatch('flooder', 10, 0);
    a.admitBatch('flooder', 10, 0);
    expect(a.wouldAdmitBatches('flooder', 1, 10, 0)).toBe(false);
    expect(a.wouldAdmitBatches('flooder', 1, 10, 4_000)).toBe(true); // a 250th of a second later: one more
    expect(a.wouldAdmitBatches('flooder', 1, 10, 4_000)).toBe(true); // asking spent nothing
    expect(a.admitBatch('flooder', 10, 4_000)).toBe(true);
    expect(a.wouldAdmitBatches('flooder', 1, 10, 4_000)).toBe(false);
    expect(a.refusedBatches).toBe(0);
  });
});
