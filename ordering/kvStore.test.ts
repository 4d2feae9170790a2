/**
 * The default state machine: put, get, delete, and a clear error for a malformed command.
 */
import { describe, expect, it } from 'vitest';
import type { Command } from '../common/batch.js';
import { utf8 } from '../common/bytes.js';
import { encodeKvCommand, KvOp, KvStore } from './kvStore.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const CLIENT = new Uint8Array(32);
const put = (k: string, v: string): Uint8Array => encodeKvCommand(KvOp.Put, utf8(k), utf8(v));
const get = (k: string): Uint8Array => encodeKvCommand(KvOp.Get, utf8(k));
const del = (k: string): Uint8Array => encodeKvCommand(KvOp.Delete, utf8(k));

function run(kv: KvStore, payloads: readonly Uint8Array[]): string[] {
  const commands: Command[] = payloads.map((payload, i) => ({ clientKey: CLIENT, seq: i + 1, expiresAtUs: 0, payload }));
  return kv.execute(commands).map(text);
}

describe('KvStore', () => {
  it('puts, gets, overwrites and deletes, in command order', () => {
    const kv = new KvStore();
    expect(run(kv, [get('a'), put('a', 'one'), get('a'), put('a', 'two'), get('a'), del('a'), get('a'), put('b', '')])).toEqual([
      '',
      '',
      'one',
      '',
      'two',
      '',
      '',
      '',
    ]);
    expect(kv.size).toBe(1);
    expect(kv.read(utf8('b'))).toEqual(new Uint8Array(0));
    expect(kv.read(utf8('a'))).toBeUndefined();
  });

  it('keeps its own copy of a put value (the batch bytes are released after execution)', () => {
    const kv = new KvStore();
    const cmd = put('k', 'value');
    run(kv, [cmd]);
    cmd.fill(0);
    expect(text(kv.read(utf8('k'))!)).toBe('value');
  });

  it('gives a get the value as it was, even if a later put in the batch overwrites it in place', () => {
    const kv = new KvStore();
    run(kv, [put('k', 'aaaa')]);
    const results = kv.execute([get('k'), put('k', 'bbbb'), get('k')].map((payload, i) => ({ clientKey: CLIENT, seq: i + 1, expiresAtUs: 0, payload })));
    expect(results.map(text)).toEqual(['aaaa', '', 'bbbb']);
    // Nor does a caller holding a read see later writes.
    const held = kv.read(utf8('k'))!;
    run(kv, [put('k', 'cccc')]);
    expect(text(held)).toBe('bbbb');
  });

  it('tells keys apart byte for byte, short or long, whatever their bytes', () => {
    const kv = new KvStore();
    const long = 'x'.repeat(40);
    const keys = [Uint8Array.of(0xff, 0), Uint8Array.of(0xff), Uint8Array.of(0, 0xff), utf8('é'), utf8(long), utf8(long + 'y')];
    const cmds = keys.map((k, i) => encodeKvCommand(KvOp.Put, k, utf8(`v${i}`)));
    kv.execute(cmds.map((payload, i) => ({ clientKey: CLIENT, seq: i + 1, expiresAtUs: 0, payload })));
    expect(kv.size).toBe(keys.length);
    keys.forEach((k, i) => expect(text(kv.read(k)!)).toBe(`v${i}`));
  });

  it.each([
    ['shorter than its header', Uint8Array.of(KvOp.Get, 0)],
    ['a key running past the end', Uint8Array.of(KvOp.Put, 0, 9, 65, 66)],
    ['an unknown op', encodeKvCommand(9, utf8('k'))],
    ['an empty command', new Uint8Array(0)],
  ])('answers a command with %s with "ERR bad command" and changes nothing', (_, bad) => {
    const kv = new KvStore();
    run(kv, [put('k', 'v')]);
    expect(run(kv, [bad, get('k')])).toEqual(['ERR bad command', 'v']);
    expect(kv.size).toBe(1);
  });
});

describe('KvStore snapshots', () => {
  const restored = (chunks: Iterable<Uint8Array>): KvStore => {
    const kv = new KvStore();
    const r = kv.restore();
    for (const c of chunks) r.add(c);
    r.finish();
    return kv;
  };

  it('gives equal chunks for equal histories, restores them, and a restored copy goes on as the original', () => {
    const history = [put('x', '1'), put('y', '2'), put('z', '3'), del('y'), put('w', '4')];
    const a = new KvStore();
    const b = new KvStore();
    run(a, history);
    run(b, history);
    const chunksA = [...a.snapshot()];
    expect(chunksA).toEqual([...b.snapshot()]);
    const c = restored(chunksA);
    expect(c.size).toBe(3);
    expect(text(c.read(utf8('z'))!)).toBe('3');
    expect([...c.snapshot()]).toEqual(chunksA);
    const more = [put('y', 'again'), del('x'), ...Array.from({ length: 3000 }, (_, i) => put(`n${i}`, String(i)))];
    run(a, more);
    run(c, more);
    expect([...c.snapshot()]).toEqual([...a.snapshot()]);
  });

  it('yields the state as of the call, while execution goes on', () => {
    const kv = new KvStore();
    run(kv, [put('a', 'before')]);
    const snapshot = kv.snapshot();
    run(kv, [put('a', 'after'), put('b', 'new')]);
    const old = restored(snapshot);
    expect(text(old.read(utf8('a'))!)).toBe('before');
    expect(old.read(utf8('b'))).toBeUndefined();
  });

  it('cuts large states into chunks of at most 1 MiB, entries spanning chunks, and keeps keys beyond the fast table', () => {
    const kv = new KvStore();
    const big = 'v'.repeat(300_000);
    run(kv, Array.from({ length: 40 }, (_, i) => put(`long-key-${'k'.repeat(70)}-${i}`, 'x')));
    const commands = Array.from({ length: 8 }, (_, i) => put(`big-${i}`, big));
    for (let i = 0; i < 5_000; i++) commands.push(put(`k${i}`, `value ${i}`));
    run(kv, commands);
    const chunks = [...kv.snapshot()];
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(1024 * 1024);
    const copy = restored(chunks);
    expect(copy.size).toBe(kv.size);
    expect(text(copy.read(utf8('big-7'))!)).toBe(big);
    expect(text(copy.read(utf8('k4999'))!)).toBe('value 4999');
  });

  it('refuses a truncated snapshot, and keeps its state', () => {
    const kv = new KvStore();
    run(kv, [put('keep', 'me')]);
    const source = new KvStore();
    run(source, [put('a', 'b')]);
    const [only] = [...source.snapshot()];
    const r = kv.restore();
    r.add(only!.subarray(0, only!.length - 1));
    expect(() => r.finish()).toThrow(/truncated/);
    expect(text(kv.read(utf8('keep'))!)).toBe('me');
  });
});
