/**
 * ByteTable against a plain Map model: whatever the operations, keys and value sizes, it answers
 * exactly like the Map, including keys that collide, values too large for a record, deletes and
 * the rehashes a growing table makes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../common/bytes.js';
import { ByteTable, MAX_RECORD_PAYLOAD_BYTES } from './byteTable.js';

type Op = { kind: 'set'; key: Uint8Array; value: Uint8Array } | { kind: 'delete'; key: Uint8Array } | { kind: 'get'; key: Uint8Array };

/** Keys in a context buffer at an offset, as the state machine hands them over (views into a batch). */
function framed(bytes: Uint8Array): { buf: Uint8Array; start: number; end: number } {
  const buf = new Uint8Array(bytes.length + 7);
  buf.fill(0xaa);
  buf.set(bytes, 3);
  return { buf, start: 3, end: 3 + bytes.length };
}

function apply(table: ByteTable, model: Map<string, Uint8Array>, op: Op): void {
  const k = framed(op.key);
  const name = toHex(op.key);
  if (op.kind === 'set') {
    const both = new Uint8Array(op.key.length + op.value.length);
    both.set(op.key);
    both.set(op.value, op.key.length);
    const f = framed(both);
    table.set(f.buf, f.start, f.start + op.key.length, f.start + op.key.length, f.end);
    model.set(name, op.value.slice());
  } else if (op.kind === 'delete') {
    table.delete(k.buf, k.start, k.end);
    model.delete(name);
  } else {
    const got = table.get(k.buf, k.start, k.end);
    expect(got === undefined ? undefined : toHex(got)).toBe(model.has(name) ? toHex(model.get(name)!) : undefined);
  }
}

function checkAll(table: ByteTable, model: Map<string, Uint8Array>, keys: readonly Uint8Array[]): void {
  expect(table.size).toBe(model.size);
  for (const key of keys) apply(table, model, { kind: 'get', key });
}

/** FNV-1a, as the table hashes: used only to build colliding keys. */
function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

describe('ByteTable', () => {
  it('behaves like a Map for any sequence of sets, deletes and gets', () => {
    // A small key space so keys repeat; values around the record limit so entries move between
    // the slab and the fallback Map.
    const key = fc.uint8Array({ minLength: 0, maxLength: 12 }).map((k) => (k.length > 0 ? k.map((b) => b % 6) : k));
    const value = fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ minLength: MAX_RECORD_PAYLOAD_BYTES - 14, maxLength: MAX_RECORD_PAYLOAD_BYTES + 10 }));
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), key, value }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const table = new ByteTable();
        const model = new Map<string, Uint8Array>();
        for (const o of ops) apply(table, model, o);
        checkAll(table, model, ops.map((o) => o.key));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every key through many rehashes, and frees the records of deleted ones', () => {
    const table = new ByteTable();
    const model = new Map<string, Uint8Array>();
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 20_000; i++) {
      const key = Uint8Array.of(i & 0xff, (i >>> 8) & 0xff, 7);
      keys.push(key);
      apply(table, model, { kind: 'set', key, value: Uint8Array.of(i % 251) });
      if (i % 3 === 0) apply(table, model, { kind: 'delete', key: keys[i >>> 1]! });
    }
    checkAll(table, model, keys);
  });

  it('stores keys that all collide: the first ones in the slab, the rest in the fallback Map', () => {
    // Keys whose hash lands in one slot of the initial 1024-slot table.
    const colliding: Uint8Array[] = [];
    for (let i = 0; colliding.length < 48; i++) {
      const key = Uint8Array.of(i & 0xff, (i >>> 8) & 0xff, (i >>> 16) & 0xff);
      if ((fnv(key) & 1023) === 5) colliding.push(key);
    }
    const table = new ByteTable();
    const model = new Map<string, Uint8Array>();
    colliding.forEach((key, i) => apply(table, model, { kind: 'set', key, value: Uint8Array.of(i) }));
    checkAll(table, model, colliding);
    colliding.forEach((key, i) => apply(table, model, i % 2 === 0 ? { kind: 'delete', key } : { kind: 'set', key, value: Uint8Array.of(100 + i, 1) }));
    checkAll(table, model, colliding);
    colliding.forEach((key, i) => apply(table, model, { kind: 'set', key, value: Uint8Array.of(200 + (i % 50)) }));
    checkAll(table, model, colliding);
  });
});
