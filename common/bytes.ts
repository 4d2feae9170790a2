/** Small byte helpers shared by every layer. Fixed-width integers are big-endian. */
import { AssertionError } from './assert.js';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

/** Parses lowercase or uppercase hex; returns null on malformed input (it is user input). */
export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
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
  private view: DataView;
  private length = 0;

  constructor(initialBytes = 256) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
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
    this.view.setUint16(this.length, value);
    this.length += 2;
    return this;
  }

  u32(value: number): this {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffffffff)) outOfRange('u32', value);
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
    return this;
  }

  /** u64 limited to the safe-integer range, as every u64 on the wire is. */
  u64(value: number): this {
    if (!(Number.isSafeInteger(value) && value >= 0)) outOfRange('u64', value);
    this.reserve(8);
    this.view.setUint32(this.length, Math.floor(value / 0x1_0000_0000));
    this.view.setUint32(this.length + 4, value >>> 0);
    this.length += 8;
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
    return this.buf.subarray(0, this.length);
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
