/**
 * The default state machine: a small in-memory key-value store.
 * Command layout: op u8 (1 = put, 2 = get, 3 = delete), key length u16, key, then for put the
 * value (the rest of the command). Results: put/delete → empty, get → the value (empty if absent),
 * a malformed command → the bytes of "ERR bad command". A 32-byte put (8-byte key, 21-byte value)
 * is what the benchmark client sends.
 */
import type { Command } from '../common/batch.js';
import { utf8 } from '../common/bytes.js';
import type { StateMachine } from './stateMachine.js';

export const KvOp = { Put: 1, Get: 2, Delete: 3 } as const;

const EMPTY = new Uint8Array(0);
const BAD_COMMAND = utf8('ERR bad command');
const latin1 = new TextDecoder('latin1');

export function encodeKvCommand(op: number, key: Uint8Array, value: Uint8Array = EMPTY): Uint8Array {
  const out = new Uint8Array(3 + key.length + value.length);
  out[0] = op;
  out[1] = key.length >>> 8;
  out[2] = key.length & 0xff;
  out.set(key, 3);
  out.set(value, 3 + key.length);
  return out;
}

export class KvStore implements StateMachine {
  private readonly data = new Map<string, Uint8Array>();

  get size(): number {
    return this.data.size;
  }

  read(key: Uint8Array): Uint8Array | undefined {
    return this.data.get(latin1.decode(key));
  }

  execute(commands: readonly Command[]): Uint8Array[] {
    const results: Uint8Array[] = new Array(commands.length);
    for (let i = 0; i < commands.length; i++) results[i] = this.apply(commands[i]!.payload);
    return results;
  }

  private apply(cmd: Uint8Array): Uint8Array {
    if (cmd.length < 3) return BAD_COMMAND;
    const keyLength = (cmd[1]! << 8) | cmd[2]!;
    if (3 + keyLength > cmd.length) return BAD_COMMAND;
    const key = latin1.decode(cmd.subarray(3, 3 + keyLength));
    switch (cmd[0]) {
      case KvOp.Put:
        // Copy: the command is a view into a batch that will be released.
        this.data.set(key, cmd.slice(3 + keyLength));
        return EMPTY;
      case KvOp.Get:
        return this.data.get(key) ?? EMPTY;
      case KvOp.Delete:
        this.data.delete(key);
        return EMPTY;
      default:
        return BAD_COMMAND;
    }
  }
}
