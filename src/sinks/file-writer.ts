/**
 * Writes a stream of chunks to an open file with few system calls: views are gathered up to a batch size
 * and written with one synchronous `writev`, so nothing is copied and at most one batch is held in memory.
 * A slow disk slows the producer down, since nothing is read while a batch is written.
 * @module
 */
import { writeSync, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { ioError } from './tracker.js';

/**
 * Default bytes gathered before one `writev`. The copy into the page cache is fastest while the bytes are
 * still in the CPU's cache, so batches are small; with synchronous writes a small batch costs one system
 * call, not a thread-pool round trip. Larger batches cost more system time in plain and tar backups
 * alike, and this one brought plain backups level with pg_basebackup (figures in bench/results).
 */
export const DEFAULT_BATCH_BYTES = 64 * 1024;

/** A FileHandle writer that batches chunks into `writev` calls. */
export class BatchedFileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes written to the file so far. */
  bytesWritten = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    private readonly batchBytes = DEFAULT_BATCH_BYTES,
  ) {}

  /** Bytes queued and not yet written: at 0 the writer holds no chunk it was given. */
  get heldBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Queues a chunk (kept as a view until flushed); writes the batch, before returning, once it is large
   * enough. Synchronous, like the write itself: a promise per chunk was most of the garbage a plain
   * backup made.
   */
  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.batchBytes) this.flush();
  }

  /** Writes whatever is queued, before returning. */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const buffers = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      // Synchronous, as pg_basebackup's fwrite: copying a batch into the page cache takes less time than a
      // round trip through libuv's thread pool, and FileHandle.writev was no faster and varied more.
      const done = buffers.length === 1 ? writeSync(this.handle.fd, buffers[0] as Buffer) : writevSync(this.handle.fd, buffers);
      // A short write (rare on regular files, but allowed) continues where it stopped.
      if (done < total) finishWrite(this.handle.fd, Buffer.concat(buffers, total), done);
      this.bytesWritten += total;
    } catch (err) {
      throw ioError(`could not write to "${this.path}"`, this.path, err);
    }
  }
}

/**
 * Writes all of `bytes` to `fd` synchronously, continuing after a short write.
 * @throws IoError naming `path`.
 */
export function writeAllSync(fd: number, bytes: Uint8Array, path: string): void {
  try {
    finishWrite(fd, bytes, writeSync(fd, bytes));
  } catch (err) {
    throw ioError(`could not write to "${path}"`, path, err);
  }
}

function finishWrite(fd: number, bytes: Uint8Array, done: number): void {
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * A Writable over an open file that writes each chunk synchronously, before `write()` returns (what
 * {@link BatchedFileWriter} does, as a stream for producers that push). So a producer may reuse a
 * chunk once `write()` has returned: the WAL streamer then hands its receive buffers back after each
 * message instead of leaving them to the garbage collector. The handle is closed when the stream
 * finishes or is destroyed.
 */
export class SyncFileWritable extends Writable {
  readonly #handle: FileHandle;
  readonly #path: string;

  constructor(handle: FileHandle, path: string) {
    super({ decodeStrings: true });
    this.#handle = handle;
    this.#path = path;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    try {
      writeAllSync(this.#handle.fd, chunk, this.#path);
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#handle.close().then(
      () => callback(),
      (err: unknown) => callback(ioError(`could not close "${this.#path}"`, this.#path, err)),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // After _final the handle is closed already; closing again only fails, which is ignored.
    this.#handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
