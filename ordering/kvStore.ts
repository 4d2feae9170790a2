/**
 * The default state machine: a small in-memory key-value store.
 * Command layout: op u8 (1 = put, 2 = get, 3 = delete), key length u16, key, then for put the
 * value (the rest of the command). Results: put/delete → empty, get → the value (empty if absent),
 * a malformed command → the bytes of "ERR bad command". A 32-byte put (8-byte key, 21-byte value)
 * is what the benchmark client sends.
 *
 * Snapshot: the table's layout (ByteTable.dump) as one byte stream cut into chunks of
 * MAX_CHECKPOINT_CHUNK_BYTES. Taking one copies the table's arrays at the call (a few ms per
 * 100,000 benchmark keys); two replicas that executed the same commands dump the same bytes.
 */
import type { Command } from '../common/batch.js';
import { concatBytes, utf8 } from '../common/bytes.js';
import { MAX_CHECKPOINT_CHUNK_BYTES } from '../common/limits.js';
import { ByteTable } from './byteTable.js';
import type { SnapshotRestore, StateMachine } from './stateMachine.js';

export const KvOp = { Put: 1, Get: 2, Delete: 3 } as const;

const EMPTY = new Uint8Array(0);
const BAD_COMMAND = utf8('ERR bad command');

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
  private data = new ByteTable();

  get size(): number {
    return this.data.size;
  }

  /** A copy of the value stored under `key`, or undefined. */
  read(key: Uint8Array): Uint8Array | undefined {
    return this.data.get(key, 0, key.length)?.slice();
  }

  execute(commands: readonly Command[]): Uint8Array[] {
    const results: Uint8Array[] = new Array(commands.length);
    for (let i = 0; i < commands.length; i++) results[i] = this.apply(commands[i]!.payload);
    return results;
  }

  snapshot(): Iterable<Uint8Array> {
    return chunked(this.data.dump());
  }

  restore(): SnapshotRestore {
    const chunks: Uint8Array[] = [];
    return {
      add: (chunk) => void chunks.push(chunk),
      finish: () => {
        this.data = ByteTable.load(concatBytes(...chunks));
      },
    };
  }

  private apply(cmd: Uint8Array): Uint8Array {
    if (cmd.length < 3) return BAD_COMMAND;
    const keyLength = (cmd[1]! << 8) | cmd[2]!;
    const valueStart = 3 + keyLength;
    if (valueStart > cmd.length) return BAD_COMMAND;
    switch (cmd[0]) {
      case KvOp.Put:
        // The table copies: the command is a view into a batch that will be released.
        this.data.set(cmd, 3, valueStart, valueStart, cmd.length);
        return EMPTY;
      case KvOp.Get:
        // A copy: the table's views change with later puts, in this batch too.
        return this.data.get(cmd, 3, valueStart)?.slice() ?? EMPTY;
      case KvOp.Delete:
        this.data.delete(cmd, 3, valueStart);
        return EMPTY;
      default:
        return BAD_COMMAND;
    }
  }
}

/** The parts as one stream cut into chunks of MAX_CHECKPOINT_CHUNK_BYTES. */
function* chunked(parts: readonly Uint8Array[]): Generator<Uint8Array> {
  // Each chunk is allocated at the size it will have: a small table must not cost a zeroed
  // megabyte per checkpoint (the simulator takes one every half second at every replica).
  let left = 0;
  for (const part of parts) left += part.length;
  let chunk = new Uint8Array(Math.min(left, MAX_CHECKPOINT_CHUNK_BYTES));
  let used = 0;
  for (const part of parts) {
    for (let at = 0; at < part.length; ) {
      const n = Math.min(part.length - at, chunk.length - used);
      chunk.set(part.subarray(at, at + n), used);
      used += n;
      at += n;
      if (used === chunk.length) {
        yield chunk;
        left -= used;
        chunk = new Uint8Array(Math.min(left, MAX_CHECKPOINT_CHUNK_BYTES));
        used = 0;
      }
    }
  }
}
