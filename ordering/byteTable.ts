/**
 * A map from byte-string keys to byte-string values, built for the default state machine's hot
 * path: small entries live in fixed-size records of one byte slab, found by open addressing over
 * an Int32Array, so a put or get touches about two cache lines and allocates nothing. Entries too
 * large for a record, and keys whose probe sequence runs too long, go to an ordinary Map.
 *
 * Why not a Map<string, Uint8Array>: each lookup chases the table, the stored key string, the
 * value's array object and its bytes, and each put allocates the string and often the value; at
 * 100,000 keys that was ~0.8 µs a put on the dev VM, and 2–3 µs inside a loaded replica, against
 * ~0.2 µs here (scripts/bench-execution.ts).
 *
 * The hash needs no secret: a run of colliding keys costs at most MAX_PROBES slots each before it
 * falls back to the Map (whose string hashing V8 seeds per process), so crafted keys cannot make a
 * put slow. Lookups return views into the slab: valid until the next change to the table.
 */

/** Bytes per record: key length u8, value length u8, key, value. A 32-byte benchmark put (an
 *  8-byte key, a 21-byte value) fits with room for somewhat larger ones. */
const RECORD_BYTES = 64;
const RECORD_HEADER_BYTES = 2;
/** The largest key plus value a record holds. */
export const MAX_RECORD_PAYLOAD_BYTES = RECORD_BYTES - RECORD_HEADER_BYTES;
/** Slots probed before a key is sent to the Map: bounds the cost of any one operation. */
const MAX_PROBES = 32;
const INITIAL_SLOTS = 1 << 10;
const INITIAL_RECORDS = 256;
const EMPTY_SLOT = -1;
const DELETED_SLOT = -2;

const latin1 = new TextDecoder('latin1');

/** dump(): version u32, slot count, records, used slots, live records, free-list length and fallback
 *  entries (u32 each, little-endian, as the typed arrays that follow are written). */
const DUMP_VERSION = 1;
const DUMP_HEADER_BYTES = 28;
// Typed arrays are dumped as their memory: that must read the same on every replica.
if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) throw new Error('ByteTable dumps assume a little-endian platform');

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length, true);
  out.set(bytes, 4);
  return out;
}

const u32At = (bytes: Uint8Array): number => new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
/** Keys up to this length become Map keys by a loop: cheaper than a native decoder call. */
const SHORT_KEY_BYTES = 32;

function keyString(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > SHORT_KEY_BYTES) return latin1.decode(bytes.subarray(start, end));
  let key = '';
  for (let i = start; i < end; i++) key += String.fromCharCode(bytes[i]!);
  return key;
}

/** FNV-1a over the key bytes. */
function hashKey(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

export class ByteTable {
  /** Record index per slot, or EMPTY_SLOT / DELETED_SLOT. Its length is a power of two. */
  private slots = new Int32Array(INITIAL_SLOTS).fill(EMPTY_SLOT);
  private slab = new Uint8Array(INITIAL_RECORDS * RECORD_BYTES);
  /** Records handed out so far (live or on the free list). */
  private records = 0;
  private readonly freeRecords: number[] = [];
  /** Slots holding a record or a deletion mark: what the load factor counts. */
  private usedSlots = 0;
  private live = 0;
  /** Fallback entries by key string: the key's bytes (for entries()) and the value. */
  private readonly large = new Map<string, readonly [key: Uint8Array, value: Uint8Array]>();

  get size(): number {
    return this.live + this.large.size;
  }

  /**
   * The value stored for key bytes[keyStart, keyEnd), or undefined. A view: copy it before the
   * table changes.
   */
  get(bytes: Uint8Array, keyStart: number, keyEnd: number): Uint8Array | undefined {
    const slot = this.find(bytes, keyStart, keyEnd);
    if (slot >= 0) {
      const at = this.slots[slot]! * RECORD_BYTES;
      const valueAt = at + RECORD_HEADER_BYTES + this.slab[at]!;
      return this.slab.subarray(valueAt, valueAt + this.slab[at + 1]!);
    }
    return this.large.size === 0 ? undefined : this.large.get(keyString(bytes, keyStart, keyEnd))?.[1];
  }

  /** Stores a copy of bytes[valueStart, valueEnd) for the key bytes[keyStart, keyEnd). */
  set(bytes: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): void {
    const keyLength = keyEnd - keyStart;
    const fits = keyLength + valueEnd - valueStart <= MAX_RECORD_PAYLOAD_BYTES;
    const slot = this.find(bytes, keyStart, keyEnd);
    if (slot >= 0) {
      if (fits) {
        this.writeRecord(this.slots[slot]!, bytes, keyStart, keyEnd, valueStart, valueEnd);
        return;
      }
      this.removeSlot(slot);
    } else if (this.large.size > 0) {
      const key = keyString(bytes, keyStart, keyEnd);
      const held = this.large.get(key);
      if (held !== undefined) {
        this.large.set(key, [held[0], bytes.slice(valueStart, valueEnd)]);
        return;
      }
    }
    if (fits && this.insert(bytes, keyStart, keyEnd, valueStart, valueEnd)) return;
    this.large.set(keyString(bytes, keyStart, keyEnd), [bytes.slice(keyStart, keyEnd), bytes.slice(valueStart, valueEnd)]);
  }

  delete(bytes: Uint8Array, keyStart: number, keyEnd: number): void {
    const slot = this.find(bytes, keyStart, keyEnd);
    if (slot >= 0) this.removeSlot(slot);
    else if (this.large.size > 0) this.large.delete(keyString(bytes, keyStart, keyEnd));
  }

  /**
   * The table's whole layout as byte strings (copies), for a state machine snapshot: a header,
   * the slot array, the used part of the slab, the free list and the fallback entries in Map order.
   * Not canonical across histories (the layout depends on the order of sets and deletes), but equal
   * for equal histories, and load() rebuilds exactly this layout: so replicas that executed the
   * same commands, or restored the same dump and then did, dump the same bytes.
   */
  dump(): Uint8Array[] {
    const header = new Uint8Array(DUMP_HEADER_BYTES);
    const h = new DataView(header.buffer);
    h.setUint32(0, DUMP_VERSION, true);
    h.setUint32(4, this.slots.length, true);
    h.setUint32(8, this.records, true);
    h.setUint32(12, this.usedSlots, true);
    h.setUint32(16, this.live, true);
    h.setUint32(20, this.freeRecords.length, true);
    h.setUint32(24, this.large.size, true);
    const parts: Uint8Array[] = [header, new Uint8Array(this.slots.slice().buffer), this.slab.slice(0, this.records * RECORD_BYTES), new Uint8Array(Int32Array.from(this.freeRecords).buffer)];
    for (const [key, value] of this.large.values()) parts.push(lengthPrefixed(key), lengthPrefixed(value));
    return parts;
  }

  /** The table a dump() describes; throws on bytes that are not one. */
  static load(bytes: Uint8Array): ByteTable {
    const fail = (why: string): never => {
      throw new Error(`not a key-value table dump: ${why}`);
    };
    if (bytes.length < DUMP_HEADER_BYTES) fail('too short');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== DUMP_VERSION) fail(`version ${view.getUint32(0, true)}`);
    const slotCount = view.getUint32(4, true);
    const records = view.getUint32(8, true);
    const freeCount = view.getUint32(20, true);
    const largeCount = view.getUint32(24, true);
    if (slotCount < INITIAL_SLOTS || (slotCount & (slotCount - 1)) !== 0) fail(`${slotCount} slots`);
    let at = DUMP_HEADER_BYTES;
    const take = (n: number): Uint8Array<ArrayBuffer> => {
      if (at + n > bytes.length) fail('truncated');
      const out = new Uint8Array(n);
      out.set(bytes.subarray(at, at + n));
      at += n;
      return out;
    };
    const t = new ByteTable();
    t.slots = new Int32Array(take(slotCount * 4).buffer);
    const slab = take(records * RECORD_BYTES);
    t.slab = new Uint8Array(Math.max(INITIAL_RECORDS * RECORD_BYTES, slab.length));
    t.slab.set(slab);
    t.records = records;
    t.usedSlots = view.getUint32(12, true);
    t.live = view.getUint32(16, true);
    t.freeRecords.push(...new Int32Array(take(freeCount * 4).buffer));
    for (let i = 0; i < largeCount; i++) {
      const key = take(u32At(take(4)));
      const value = take(u32At(take(4)));
      t.large.set(keyString(key, 0, key.length), [key, value]);
    }
    if (at !== bytes.length) fail(`${bytes.length - at} bytes after the end`);
    for (const record of t.slots) if (record >= records) fail(`slot names record ${record} of ${records}`);
    return t;
  }

  /** The slot whose record holds this key, or −1. */
  private find(bytes: Uint8Array, keyStart: number, keyEnd: number): number {
    const { slots, slab } = this;
    const mask = slots.length - 1;
    const keyLength = keyEnd - keyStart;
    let slot = hashKey(bytes, keyStart, keyEnd) & mask;
    for (let probe = 0; probe < MAX_PROBES; probe++, slot = (slot + 1) & mask) {
      const record = slots[slot]!;
      if (record === EMPTY_SLOT) return -1;
      if (record === DELETED_SLOT) continue;
      const at = record * RECORD_BYTES;
      if (slab[at] !== keyLength) continue;
      let same = true;
      for (let i = 0; i < keyLength; i++) {
        if (slab[at + RECORD_HEADER_BYTES + i] !== bytes[keyStart + i]) {
          same = false;
          break;
        }
      }
      if (same) return slot;
    }
    return -1;
  }

  /** Places a new key in the first free slot of its probe sequence; false if none is free. */
  private insert(bytes: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): boolean {
    if ((this.usedSlots + 1) * 2 > this.slots.length) this.rehash();
    const mask = this.slots.length - 1;
    let slot = hashKey(bytes, keyStart, keyEnd) & mask;
    for (let probe = 0; probe < MAX_PROBES; probe++, slot = (slot + 1) & mask) {
      const current = this.slots[slot]!;
      if (current !== EMPTY_SLOT && current !== DELETED_SLOT) continue;
      const record = this.allocateRecord();
      this.writeRecord(record, bytes, keyStart, keyEnd, valueStart, valueEnd);
      if (current === EMPTY_SLOT) this.usedSlots++;
      this.slots[slot] = record;
      this.live++;
      return true;
    }
    return false;
  }

  private writeRecord(record: number, bytes: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): void {
    const slab = this.slab;
    const at = record * RECORD_BYTES;
    const keyLength = keyEnd - keyStart;
    slab[at] = keyLength;
    slab[at + 1] = valueEnd - valueStart;
    let to = at + RECORD_HEADER_BYTES;
    for (let i = keyStart; i < keyEnd; i++) slab[to++] = bytes[i]!;
    for (let i = valueStart; i < valueEnd; i++) slab[to++] = bytes[i]!;
  }

  private removeSlot(slot: number): void {
    this.freeRecords.push(this.slots[slot]!);
    this.slots[slot] = DELETED_SLOT;
    this.live--;
  }

  private allocateRecord(): number {
    const reused = this.freeRecords.pop();
    if (reused !== undefined) return reused;
    if ((this.records + 1) * RECORD_BYTES > this.slab.length) {
      const grown = new Uint8Array(this.slab.length * 2);
      grown.set(this.slab);
      this.slab = grown;
    }
    return this.records++;
  }

  /** A table twice the live count's room (at least as large), without deletion marks. Keys that
   *  find no free slot within MAX_PROBES in the new table move to the Map. */
  private rehash(): void {
    const old = this.slots;
    let size = old.length;
    while (this.live * 4 > size) size *= 2;
    this.slots = new Int32Array(size).fill(EMPTY_SLOT);
    this.usedSlots = 0;
    const mask = size - 1;
    const slab = this.slab;
    for (let s = 0; s < old.length; s++) {
      const record = old[s]!;
      if (record < 0) continue;
      const at = record * RECORD_BYTES;
      const keyStart = at + RECORD_HEADER_BYTES;
      const keyEnd = keyStart + slab[at]!;
      let slot = hashKey(slab, keyStart, keyEnd) & mask;
      let placed = false;
      for (let probe = 0; probe < MAX_PROBES; probe++, slot = (slot + 1) & mask) {
        if (this.slots[slot] !== EMPTY_SLOT) continue;
        this.slots[slot] = record;
        this.usedSlots++;
        placed = true;
        break;
      }
      if (!placed) {
        this.large.set(keyString(slab, keyStart, keyEnd), [slab.slice(keyStart, keyEnd), slab.slice(keyEnd, keyEnd + slab[at + 1]!)]);
        this.freeRecords.push(record);
        this.live--;
      }
    }
  }
}
