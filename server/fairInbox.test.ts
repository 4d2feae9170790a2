/**
 * Fair service between client sources when a replica is saturated: one address's share of client
 * CPU for a flooder however many connections it opens, its excess refused at the marks, and
 * nothing delayed while the replica keeps up.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { ReplicaInput } from '../ordering/types.js';
import {
  CLIENT_SLICE_MS,
  EXPRESS_MS_PER_SECOND,
  EXPRESS_SLICE_MS,
  FairInbox,
  MAX_QUEUED_BYTES_PER_CONNECTION,
  OVERLOAD_NOTICES_PER_SECOND,
  REFUSALS_PER_SECOND_BEFORE_SHED,
} from './fairInbox.js';

/** A fake replica: every step takes `costMs` of a fake clock; `defer` runs when told. */
function harness(costMs: (conn: number) => number) {
  let now = 0;
  const stepped: number[] = [];
  const refusedTo: number[] = [];
  const shed: number[] = [];
  let deferred: (() => void)[] = [];
  const inbox = new FairInbox({
    step: (input) => {
      const conn = (input as { conn: number }).conn;
      stepped.push(conn);
      now += costMs(conn);
    },
    refused: (conn) => refusedTo.push(conn),
    shed: (conn) => shed.push(conn),
    defer: (fn) => deferred.push(fn),
    nowMs: () => now,
  });
  const msg = (conn: number): ReplicaInput => ({ kind: 'client', conn, msg: { type: 'submit', batch: new Uint8Array(1) } });
  /** Runs deferred turns until nothing waits (or `turns` turns). */
  const turns = (count = 1_000): void => {
    for (let i = 0; i < count && deferred.length > 0; i++) {
      const now_ = deferred;
      deferred = [];
      for (const fn of now_) fn();
    }
  };
  return { inbox, stepped, refusedTo, shed, msg, turns, pending: () => deferred.length, advance: (ms: number) => void (now += ms), now: () => now };
}

describe('FairInbox', () => {
  it('steps client input at once while the replica keeps up', () => {
    const h = harness(() => 0.1);
    h.inbox.open(1, '10.0.0.1');
    for (let i = 0; i < 10; i++) h.inbox.push(1, h.msg(1), 100);
    expect(h.stepped).toHaveLength(10);
    expect(h.inbox.stats.queued).toBe(0);
  });

  it('serves a flooding address no more than an honest one when saturated, however many connections it has', () => {
    const h = harness(() => 0.25);
    const flooders = Array.from({ length: 50 }, (_, i) => 100 + i);
    for (const c of flooders) h.inbox.open(c, '10.0.0.66');
    h.inbox.open(1, '10.0.0.1');
    // A burst: the flood fills this turn's slice, then both sources keep sending; the honest
    // source's first inputs take the express lane (nothing of its own waits) until its slice is
    // spent, the rest wait with the flood's.
    for (let round = 0; round < 60; round++) {
      for (const c of flooders) h.inbox.push(c, h.msg(c), 1_000);
      h.inbox.push(1, h.msg(1), 1_000);
    }
    const before = h.stepped.length;
    const slice = Math.ceil(CLIENT_SLICE_MS / 0.25);
    const express = Math.ceil(EXPRESS_SLICE_MS / 0.25);
    expect(before).toBe(slice + express);
    expect(h.stepped.slice(slice).every((c) => c === 1)).toBe(true);
    h.turns(20);
    const served = h.stepped.slice(before);
    const honest = served.filter((c) => c === 1).length;
    const flood = served.length - honest;
    // Honest input is served as much as the flood until the honest queue is empty.
    expect(honest).toBe(60 - express);
    expect(flood).toBeGreaterThanOrEqual(honest - 2);
    expect(served.indexOf(1)).toBeLessThan(4);
  });

  it('steps a sparse source at once while a flood waits, within its express credit', () => {
    const h = harness((conn) => (conn === 1 ? 2 : 0.25));
    h.inbox.open(1, 'honest');
    h.inbox.open(2, 'flood');
    for (let i = 0; i < 200; i++) h.inbox.push(2, h.msg(2), 100);
    expect(h.inbox.queuedInputs).toBeGreaterThan(0);
    // One honest message per turn, as a client with a batch or two in flight sends: each is
    // stepped as it arrives, ahead of the flood's backlog, until its address's credit is spent.
    let expressed = 0;
    for (let turn = 0; turn < 100; turn++) {
      for (let i = 0; i < 200; i++) h.inbox.push(2, h.msg(2), 100);
      const before = h.stepped.length;
      h.inbox.push(1, h.msg(1), 100);
      if (h.stepped.length > before && h.stepped.at(-1) === 1) expressed++;
      h.turns(1);
    }
    // Each costs 2 ms: the credit is a second's worth plus its refill over the fake time, and the
    // last step may run into debt.
    const creditMs = EXPRESS_MS_PER_SECOND + (h.now() * EXPRESS_MS_PER_SECOND) / 1000;
    expect(expressed).toBeGreaterThanOrEqual(Math.floor(creditMs / 2) - 1);
    expect(expressed).toBeLessThanOrEqual(Math.ceil(creditMs / 2) + 1);
    expect(expressed).toBeLessThan(100);
    // The flood, always backlogged, never took the lane.
    expect(h.inbox.stats.express).toBe(expressed);
  });

  it('steps an urgent input (phase 2 of a stamped batch) ahead of its own address’s waiting input, in connection order', () => {
    const h = harness(() => 0.25);
    h.inbox.open(1, 'a');
    h.inbox.open(2, 'a');
    for (let i = 0; i < 100; i++) h.inbox.push(1, h.msg(1), 100);
    const before = h.stepped.length;
    // Connection 2 has nothing waiting: its Sequence goes now, though its address is backlogged.
    h.inbox.push(2, h.msg(2), 100, 'urgent');
    expect(h.stepped.slice(before)).toEqual([2]);
    // Its normal input waits behind its address's backlog.
    h.inbox.push(2, h.msg(2), 100);
    expect(h.stepped.length).toBe(before + 1);
    // Connection 1 has input waiting: its own urgent input keeps its place.
    h.inbox.push(1, h.msg(1), 100, 'urgent');
    expect(h.stepped.length).toBe(before + 1);
    expect(h.inbox.stats.express).toBe(1);
  });

  it('refuses input over its key’s admission budget at once, without stepping or queueing it', () => {
    const h = harness(() => 0.25);
    h.inbox.open(1, 'a');
    for (let i = 0; i < 30; i++) h.inbox.push(1, h.msg(1), 100, 'overBudget');
    expect(h.stepped).toHaveLength(0);
    expect(h.inbox.queuedInputs).toBe(0);
    expect(h.inbox.stats.overBudget).toBe(30);
    expect(h.inbox.stats.refused).toBe(30);
    expect(h.refusedTo).toHaveLength(OVERLOAD_NOTICES_PER_SECOND);
    h.advance(1_000);
    h.inbox.push(1, h.msg(1), 100, 'overBudget');
    expect(h.refusedTo).toHaveLength(OVERLOAD_NOTICES_PER_SECOND + 1);
  });

  it('sheds a connection that keeps sending far past its refusals, once; one that backs off is kept', () => {
    const h = harness(() => 0.25);
    h.inbox.open(1, 'a');
    h.inbox.open(2, 'a');
    // Connection 2 backs off: a second's worth of refusals just under the mark, then quiet.
    for (let i = 0; i < REFUSALS_PER_SECOND_BEFORE_SHED; i++) h.inbox.push(2, h.msg(2), 100, 'overBudget');
    h.advance(1_000);
    for (let i = 0; i < REFUSALS_PER_SECOND_BEFORE_SHED; i++) h.inbox.push(2, h.msg(2), 100, 'overBudget');
    expect(h.shed).toEqual([]);
    // Connection 1 ignores them.
    for (let i = 0; i < 3 * REFUSALS_PER_SECOND_BEFORE_SHED; i++) h.inbox.push(1, h.msg(1), 100, 'overBudget');
    expect(h.shed).toEqual([1]);
    expect(h.stepped).toHaveLength(0);
  });

  it('charges CPU, not messages: a source whose inputs cost more gets fewer of them served', () => {
    const h = harness((conn) => (conn === 2 ? 1 : 0.1));
    h.inbox.open(1, 'a');
    h.inbox.open(2, 'b');
    for (let i = 0; i < 200; i++) {
      h.inbox.push(1, h.msg(1), 10);
      h.inbox.push(2, h.msg(2), 10);
    }
    h.turns(5);
    const cheap = h.stepped.filter((c) => c === 1).length;
    const dear = h.stepped.filter((c) => c === 2).length;
    expect(cheap).toBeGreaterThan(5 * dear);
  });

  it('refuses input beyond a connection’s mark, with a bounded number of notices', () => {
    const h = harness(() => 10);
    h.inbox.open(1, 'a');
    h.inbox.push(1, h.msg(1), 1); // fills the slice
    const each = 1024 * 1024;
    const pushes = MAX_QUEUED_BYTES_PER_CONNECTION / each + 30;
    for (let i = 0; i < pushes; i++) h.inbox.push(1, h.msg(1), each);
    expect(h.inbox.stats.refused).toBe(30);
    expect(h.refusedTo).toHaveLength(OVERLOAD_NOTICES_PER_SECOND);
    expect(h.inbox.queuedInputs).toBe(MAX_QUEUED_BYTES_PER_CONNECTION / each);
  });

  it('drops what a closed connection had waiting', () => {
    const h = harness(() => 10);
    h.inbox.open(1, 'a');
    for (let i = 0; i < 5; i++) h.inbox.push(1, h.msg(1), 10);
    expect(h.inbox.queuedInputs).toBe(4);
    h.inbox.close(1);
    h.turns();
    expect(h.stepped).toEqual([1]);
    expect(h.inbox.stats.queuedBytes).toBe(0);
  });

  it('holds no input once it is served (a served batch’s bytes are free to be collected)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const h = harness(() => 10);
    h.inbox.open(1, 'a');
    const refs: WeakRef<object>[] = [];
    // Queue and serve a few inputs at a time, as a connection under load does: the queue empties
    // between bursts, far fewer times than a compaction by count would need.
    const burst = (): void => {
      for (let i = 0; i < 5; i++) {
        const input = h.msg(1);
        refs.push(new WeakRef(input));
        h.inbox.push(1, input, 10);
      }
      h.turns();
    };
    for (let b = 0; b < 20; b++) burst();
    expect(h.inbox.queuedInputs).toBe(0);
    // Our own steps recorded only the connection; a retained input can only be the inbox's.
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });
});
