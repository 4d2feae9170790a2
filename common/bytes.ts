/** Small byte helpers shared by every layer. Fixed-width integers are big-endian. */
import { AssertionError } from './assert.js';

const HEX_DIGITS = new TextEncoder().encode('0123456789abcdef');
/** Hex digits are ASCII, which latin1 decodes one byte to one character. */
const asciiDecoder = new TextDecoder('latin1');

/** Inputs up to this size are written into a reused array of exactly their hex length (digests
 *  and keys, nearly every call: no array, not even a view, is made per call); larger ones get an
 *  array of their own. */
const HEX_SCRATCH_INPUT_BYTES = 256;
const hexScratchByLength: (Uint8Array | undefined)[] = [];

/** Lowercase hex. Written as character codes and decoded once: appending two characters at a
 *  time made a string per byte (digests are map keys everywhere, this runs constantly). The
 *  decoder copies the codes into the string, so the scratch array is free again on return. */
export function toHex(bytes: Uint8Array): string {
  const n = bytes.length;
  let chars: Uint8Array;
  if (n <= HEX_SCRATCH_INPUT_BYTES) chars = hexScratchByLength[n] ??= new Uint8Array(2 * n);
  else chars = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    chars[2 * i] = HEX_DIGITS[b >>> 4]!;
    chars[2 * i + 1] = HEX_DIGITS[b & 0x0f]!;
  }
  return asciiDecoder.decode(chars);
}

/** Each character code's value as a hex digit, −1 for a code that is not one. */
const NIBBLE = Int8Array.from({ length: 128 }, (_, code) => {
  const c = String.fromCharCode(code);
  return /^[0-9a-fA-F]$/.test(c) ? parseInt(c, 16) : -1;
});

/** Parses lowercase or uppercase hex; returns null on malformed input (it is user input). */
export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = NIBBLE[hex.charCodeAt(2 * i)] ?? -1;
    const lo = NIBBLE[hex.charCodeAt(2 * i + 1)] ?? -1;
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic order of byte strings: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const textEncoder = new TextEncoder();
export const utf8 = (text: string): Uint8Array => textEncoder.encode(text);

/** Slabs that small short-lived arrays are cut from: a typed array of more than 64 bytes gets a
 *  backing store of its own otherwise (an allocation outside the heap and GC bookkeeping: about
 *  ten times the cost of a view), and replicas build one for every statement they sign or check.
 *  An array cut from a slab keeps the whole slab alive, hence only for arrays soon dropped. */
const SLAB_BYTES = 8 * 1024;
/** Larger arrays get their own store (they would waste a slab's tail, and their cost is in their bytes). */
const MAX_SLAB_ARRAY_BYTES = 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/** A zeroed array of `length` bytes, cut from a shared slab when small (its `buffer` is the slab:
 *  use byteOffset). For short-lived arrays only: one that is kept keeps its slab. */
export function slabBytes(length: number): Uint8Array {
  if (length > MAX_SLAB_ARRAY_BYTES) return new Uint8Array(length);
  if (slabUsed + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, length);
  slabUsed += length;
  return out;
}

/** Writing a value that does not fit its field is a programmer error (the message is built only then). */
function outOfRange(field: string, value: number): never {
  throw new AssertionError(`${field} out of range: ${value}`);
}

/**
 * Appends fixed-width fields into one buffer; used for every signing layout and for the batch
 * format, so the byte layout of a signed statement is written in exactly one way.
 */
export class ByteWriter {
  private buf: Uint8Array;
  private length = 0;

  /** A writer for a statement that is hashed, signed or verified and then dropped (the signing
   *  layouts): its bytes may share a slab with others (see slabBytes). */
  static transient(initialBytes: number): ByteWriter {
    return new ByteWriter(initialBytes, slabBytes);
  }

  // Fields are written byte by byte: a DataView per writer cost an allocation on every signed
  // statement, and these writers are made for every message a replica signs or checks.
  constructor(
    initialBytes = 256,
    private readonly allocate: (length: number) => Uint8Array = (length) => new Uint8Array(length),
  ) {
    this.buf = allocate(initialBytes);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = Math.max(this.buf.length * 2, 16);
    while (size < this.length + extra) size *= 2;
    const next = this.allocate(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(value: number): this {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xff)) outOfRange('u8', value);
    this.reserve(1);
    this.buf[this.length++] = value;
    return this;
  }

  u16(value: number): this {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffff)) outOfRange('u16', value);
    this.reserve(2);
    const { buf } = this;
    buf[this.length] = value >>> 8;
    buf[this.length + 1] = value & 0xff;
    this.length += 2;
    return this;
  }

  u32(value: number): this {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffffffff)) outOfRange('u32', value);
    this.reserve(4);
    this.put32(value);
    return this;
  }

  /** u64 limited to the safe-integer range, as every u64 on the wire is. */
  u64(value: number): this {
    if (!(Number.isSafeInteger(value) && value >= 0)) outOfRange('u64', value);
    this.reserve(8);
    this.put32(Math.floor(value / 0x1_0000_0000));
    this.put32(value >>> 0);
    return this;
  }

  bytes(value: Uint8Array): this {
    this.reserve(value.length);
    this.buf.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /** A view of the written bytes (no copy); the writer must not be reused afterwards. */
  finish(): Uint8Array {
    return this.length === this.buf.length ? this.buf : this.buf.subarray(0, this.length);
  }

  /** Big-endian, room already reserved. */
  private put32(value: number): void {
    const { buf } = this;
    const at = this.length;
    buf[at] = value >>> 24;
    buf[at + 1] = (value >>> 16) & 0xff;
    buf[at + 2] = (value >>> 8) & 0xff;
    buf[at + 3] = value & 0xff;
    this.length = at + 4;
  }
}

/** Reads fixed-width fields; every read is bounds-checked and reports failure instead of throwing. */
export class ByteReader {
  private offset = 0;
  private readonly view: DataView;
  /** Set when a read ran past the end; callers check it once after parsing. */
  failed = false;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private take(n: number): number {
    if (this.failed || this.offset + n > this.buf.length) {
      this.failed = true;
      return -1;
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }

  u8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.buf[at]!;
  }

  u16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getUint16(at);
  }

  u32(): number {
    const at = this.take(4);
    return at < 0 ? 0 : this.view.getUint32(at);
  }

  /** Fails (sets `failed`) on values above 2^53 − 1. */
  u64(): number {
    const at = this.take(8);
    if (at < 0) return 0;
    const hi = this.view.getUint32(at);
    const lo = this.view.getUint32(at + 4);
    if (hi > 0x1f_ffff) {
      this.failed = true;
      return 0;
    }
    return hi * 0x1_0000_0000 + lo;
  }

  /** A view into the underlying buffer (no copy). */
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return at < 0 ? new Uint8Array(0) : this.buf.subarray(at, at + n);
  }
}
