/**
 * A log file written as a stream of ~64 KiB chunks, for client logs at hundreds of thousands of
 * lines per second (DESIGN.md "Logs and the process script").
 *
 * Why this shape: one fs write per line is far too slow, and holding the whole log until exit is
 * what truncated Pompe-HS logs past ~150 MB. So text accumulates in a string until a chunk is full,
 * then goes to a fs.WriteStream. When the stream reports backpressure (write() returned false), full
 * chunks wait in a queue here until 'drain': nothing is dropped. Beyond `maxBufferedBytes` waiting in
 * memory, append() returns false so the caller can slow down (await whenWritable()), the same
 * contract as Writable.write().
 *
 * All text written here is ASCII, so string length equals byte length.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';

/** A chunk this large makes each write cheap relative to its syscall, yet keeps latency to disk low. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** Bytes allowed to wait in memory before append() asks the caller to back off. */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/** Chunks the stream itself may hold before it reports backpressure; a few keep the disk busy. */
const STREAM_CHUNKS_IN_FLIGHT = 4;

export interface ChunkedLogFileOptions {
  /** Hand text to the stream once the chunk being built reaches this many bytes. */
  readonly chunkBytes?: number;
  /** Above this many bytes waiting in memory, append() returns false. Lines are still kept. */
  readonly maxBufferedBytes?: number;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface FlushWaiter extends Waiter {
  /** Resolve once this many stream writes have completed. */
  readonly writesTarget: number;
}

export class ChunkedLogFile {
  readonly path: string;
  private readonly stream: WriteStream;
  private readonly chunkBytes: number;
  private readonly maxBufferedBytes: number;

  /** The chunk being built: text appended since the last hand-off, after the bytes below. */
  private building = '';
  /** Bytes appended (appendBytes) since the last hand-off, in order; text appended after them
   *  joins them as bytes, so the file keeps the order of the calls. */
  private buildingParts: Buffer[] = [];
  private buildingPartsBytes = 0;
  /** Full chunks held back while the stream drains; non-empty only while `streamBlocked`. */
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private streamBlocked = false;
  private writesIssued = 0;
  private writesDone = 0;
  private flushWaiters: FlushWaiter[] = [];
  private capacityWaiters: Waiter[] = [];
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  /** Lines accepted by append(); every one of them reaches the file unless writing fails. */
  linesAccepted = 0;
  /** Lines offered after close() began; they are refused, never written (see append). */
  linesRefused = 0;
  /** How many times the stream reported backpressure (the benchmark client reports it at exit). */
  backpressureEvents = 0;

  private constructor(path: string, stream: WriteStream, options: ChunkedLogFileOptions) {
    this.path = path;
    this.stream = stream;
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    stream.on('error', (error: Error) => this.fail(error));
  }

  /** Creates (truncates) the file; rejects if it cannot be opened. */
  static async open(path: string, options: ChunkedLogFileOptions = {}): Promise<ChunkedLogFile> {
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!(chunkBytes > 0)) throw new RangeError(`chunkBytes must be positive, got ${chunkBytes}`);
    // flush: fsync before the fd closes, so close() resolving means the log is on disk. Not for a
    // log sent to a device or a pipe (/dev/null for long soak runs), which cannot be fsynced.
    const device = await stat(path).then(
      (s) => !s.isFile(),
      () => false,
    );
    const stream = createWriteStream(path, { flags: 'w', flush: !device, highWaterMark: chunkBytes * STREAM_CHUNKS_IN_FLIGHT });
    await once(stream, 'ready');
    return new ChunkedLogFile(path, stream, options);
  }

  /** Bytes accepted but not yet written to the file. */
  get bufferedBytes(): number {
    return this.building.length + this.buildingPartsBytes + this.queuedBytes + this.stream.writableLength;
  }

  /** True once close() has been called: further lines are refused. */
  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Appends `lineCount` whole lines (ASCII, each ending in a newline). Returns false when more than
   * `maxBufferedBytes` wait in memory: the text is kept, and the caller should await whenWritable()
   * before appending more. After close() has begun, lines are refused and counted in `linesRefused`:
   * a command that completes while a signal handler closes the log must not crash the exiting process.
   * Throws the stream's error if writing has failed, since lines were then lost.
   */
  append(text: string, lineCount: number): boolean {
    if (!this.accept(lineCount)) return false;
    this.building += text;
    if (this.building.length + this.buildingPartsBytes >= this.chunkBytes) this.handOff();
    return this.bufferedBytes < this.maxBufferedBytes;
  }

  /**
   * append() for lines already encoded (ASCII bytes): a writer that formats straight into a Buffer
   * skips building and flattening a string per line, the client's largest cost at peak load.
   * The caller must not modify `bytes` afterwards.
   */
  appendBytes(bytes: Buffer, lineCount: number): boolean {
    if (!this.accept(lineCount)) return false;
    this.takeBuildingText();
    this.buildingParts.push(bytes);
    this.buildingPartsBytes += bytes.length;
    if (this.buildingPartsBytes >= this.chunkBytes) this.handOff();
    return this.bufferedBytes < this.maxBufferedBytes;
  }

  /** Counts `lineCount` lines as accepted, or as refused once close() has begun (false); throws
   *  the stream's error if writing has failed. */
  private accept(lineCount: number): boolean {
    if (this.failure !== undefined) throw this.failure;
    if (this.closing !== undefined) {
      this.linesRefused += lineCount;
      return false;
    }
    this.linesAccepted += lineCount;
    return true;
  }

  /** Moves the text being built behind the bytes being built, as bytes. */
  private takeBuildingText(): void {
    if (this.building.length === 0) return;
    const text = Buffer.from(this.building, 'latin1');
    this.building = '';
    this.buildingParts.push(text);
    this.buildingPartsBytes += text.length;
  }

  /**
   * Resolves when at most half the bound waits in memory: resuming at the bound itself would wake
   * the caller after every write, for one chunk's worth of lines each time.
   */
  whenWritable(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve, reject) => this.capacityWaiters.push({ resolve, reject }));
  }

  private hasRoom(): boolean {
    return this.bufferedBytes <= this.maxBufferedBytes / 2;
  }

  /** Hands everything appended so far to the OS; resolves when those writes have completed. */
  flush(): Promise<void> {
    this.handOff();
    // Each queued chunk becomes exactly one stream write, so this is the count to wait for.
    const writesTarget = this.writesIssued + this.queue.length;
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.writesDone >= writesTarget) return Promise.resolve();
    return new Promise((resolve, reject) => this.flushWaiters.push({ writesTarget, resolve, reject }));
  }

  /** Writes everything, fsyncs and closes the file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.flush().then(async () => {
      const closed = once(this.stream, 'close');
      this.stream.end();
      await closed;
    });
    return this.closing;
  }

  private handOff(): void {
    if (this.building.length === 0 && this.buildingPartsBytes === 0) return;
    // Encode now rather than queue the string: a chunk built by += is a tree of thousands of small
    // strings that takes several times its length in heap; the Buffer takes exactly its length.
    // latin1: the text is ASCII, and latin1 is a plain copy where utf8 would scan every character.
    let chunk: Buffer;
    if (this.buildingPartsBytes === 0) {
      chunk = Buffer.from(this.building, 'latin1');
      this.building = '';
    } else {
      this.takeBuildingText();
      chunk = this.buildingParts.length === 1 ? this.buildingParts[0]! : Buffer.concat(this.buildingParts, this.buildingPartsBytes);
      this.buildingParts = [];
      this.buildingPartsBytes = 0;
    }
    if (this.streamBlocked) {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
    } else {
      this.writeToStream(chunk);
    }
  }

  private writeToStream(chunk: Buffer): void {
    this.writesIssued++;
    if (!this.stream.write(chunk, this.onWritten)) {
      this.streamBlocked = true;
      this.backpressureEvents++;
      this.stream.once('drain', this.onDrain);
    }
  }

  private readonly onDrain = (): void => {
    this.streamBlocked = false;
    while (this.queue.length > 0 && !this.streamBlocked) {
      const chunk = this.queue.shift() as Buffer;
      this.queuedBytes -= chunk.length;
      this.writeToStream(chunk);
    }
  };

  private readonly onWritten = (error: Error | null | undefined): void => {
    if (error) return; // reported through the stream's 'error' event
    this.writesDone++;
    if (this.flushWaiters.length > 0) {
      const ready = this.flushWaiters.filter((w) => w.writesTarget <= this.writesDone);
      this.flushWaiters = this.flushWaiters.filter((w) => w.writesTarget > this.writesDone);
      for (const w of ready) w.resolve();
    }
    if (this.capacityWaiters.length > 0 && this.hasRoom()) {
      const waiters = this.capacityWaiters;
      this.capacityWaiters = [];
      for (const w of waiters) w.resolve();
    }
  };

  private fail(error: Error): void {
    this.failure ??= error;
    const waiters = [...this.flushWaiters, ...this.capacityWaiters];
    this.flushWaiters = [];
    this.capacityWaiters = [];
    for (const w of waiters) w.reject(this.failure);
  }
}
