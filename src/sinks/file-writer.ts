/**
 * Writes a stream of chunks to an open file with few system calls: views are gathered up to a batch size
 * and written with one synchronous `writev`, so nothing is copied and at most one batch is held in memory.
 * A slow disk slows the producer down, since nothing is read while a batch is written.
 * @module
 */
import { writeSync, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ioError } from './tracker.js';

/**
 * Default bytes gathered before one `writev`. 256 KiB: the copy into the page cache then reads data still
 * in the CPU's cache. With 1 MiB batches a 4 GB plain backup spent twice pg_basebackup's system time in
 * that copy (13.1 s vs 5.8 s; 5.2-7.7 s at 256 KiB, 6.0-7.5 s at 128 KiB, more user CPU at 64 KiB).
 */
export const DEFAULT_BATCH_BYTES = 256 * 1024;

/** A FileHandle writer that batches chunks into `writev` calls. */
export class BatchedFileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes written to the file so far. */
  bytesWritten = 0;

  constructor(private readonly handle: FileHandle, private readonly path: string, private readonly batchBytes = DEFAULT_BATCH_BYTES) {}

  /** Queues a chunk (kept as a view until flushed); writes the batch once it is large enough. */
  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.batchBytes) await this.flush();
  }

  /** Writes whatever is queued. */
  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const buffers = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      // Synchronous, as pg_basebackup's fwrite: copying 256 KiB into the page cache takes tens of
      // microseconds, less than a round trip through libuv's thread pool. Tar files + WAL, 303 MB, 8
      // alternating runs: 0.66 s (0.60-0.81) with FileHandle.writev, 0.64 s (0.63-0.67) with writevSync.
      let done = buffers.length === 1 ? writeSync(this.handle.fd, buffers[0] as Buffer) : writevSync(this.handle.fd, buffers);
      // A short write (rare on regular files, but allowed) continues where it stopped.
      if (done < total) {
        const rest = Buffer.concat(buffers, total).subarray(done);
        let offset = 0;
        while (offset < rest.length) offset += writeSync(this.handle.fd, rest, offset, rest.length - offset);
        done = total;
      }
      this.bytesWritten += done;
    } catch (err) {
      throw ioError(`could not write to "${this.path}"`, this.path, err);
    }
  }
}
