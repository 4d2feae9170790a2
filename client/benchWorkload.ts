/**
 * The benchmark's commands: key-value puts (ordering/kvStore.ts layout) with keys drawn uniformly
 * from a bounded key space, so the replicas' store stays bounded however long the run. The default
 * 32-byte command is op (1) + key length (2) + an 8-byte key + a 21-byte value.
 *
 * Built for speed: a client writes its batch's commands into one reusable scratch buffer and hands
 * encodeBatch views into it (encodeBatch copies), so a batch costs one allocation, not one per
 * command.
 */
import type { DirectCommand } from '../common/batch.js';
import { KvOp } from '../ordering/kvStore.js';

export const KV_KEY_BYTES = 8;
/** op + key length + key: a put with an empty value. */
export const MIN_COMMAND_BYTES = 1 + 2 + KV_KEY_BYTES;
export const DEFAULT_COMMAND_BYTES = 32;

export class KvWorkload {
  private readonly scratch: Uint8Array;
  private readonly view: DataView;
  private readonly payloads: Uint8Array[];

  constructor(
    private readonly commandBytes: number,
    private readonly keySpace: number,
    maxBatch: number,
    private readonly random: () => number = Math.random,
  ) {
    if (commandBytes < MIN_COMMAND_BYTES) throw new RangeError(`commands must be at least ${MIN_COMMAND_BYTES} bytes, got ${commandBytes}`);
    this.scratch = new Uint8Array(commandBytes * maxBatch);
    this.view = new DataView(this.scratch.buffer);
    this.payloads = [];
    for (let i = 0; i < maxBatch; i++) {
      const at = i * commandBytes;
      this.scratch[at] = KvOp.Put;
      this.view.setUint16(at + 1, KV_KEY_BYTES);
      this.payloads.push(this.scratch.subarray(at, at + commandBytes));
    }
  }

  /**
   * `count` put commands numbered firstSeq + i. The payloads are views into the scratch buffer:
   * valid until the next call (encode the batch before that).
   */
  commands(firstSeq: number, count: number): DirectCommand[] {
    const out: DirectCommand[] = new Array(count);
    const { view, commandBytes } = this;
    for (let i = 0; i < count; i++) {
      const at = i * commandBytes;
      const key = Math.floor(this.random() * this.keySpace);
      // u64 big-endian key (key spaces stay below 2^53).
      view.setUint32(at + 3, Math.floor(key / 2 ** 32));
      view.setUint32(at + 7, key >>> 0);
      // The value starts with the sequence number so values differ; the rest stays as it was.
      if (commandBytes >= MIN_COMMAND_BYTES + 8) {
        const seq = firstSeq + i;
        view.setUint32(at + 11, Math.floor(seq / 2 ** 32));
        view.setUint32(at + 15, seq >>> 0);
      }
      out[i] = { seq: firstSeq + i, payload: this.payloads[i]! };
    }
    return out;
  }
}
