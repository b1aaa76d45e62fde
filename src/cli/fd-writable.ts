/**
 * Standard output for `pgbb backup -D -`: the tar written to file descriptor 1 directly, gathered
 * into large `writev(2)` calls, instead of through `process.stdout`.
 *
 * Why not `process.stdout`: to a file it makes one `write(2)` per chunk (a CopyData message, about
 * 32 KiB) through a stream per chunk; and touching it makes a pipe's descriptor non-blocking for
 * good (libuv). Why synchronous: a write on libuv's thread pool keeps the chunks it holds alive
 * across the young-generation collections the CLI runs every few milliseconds (gc.ts), so receive
 * buffers got promoted and the old generation had to be collected far more often, for more CPU
 * time than the syscalls saved. A synchronous `writev` of a batch releases them at once, and
 * blocks only when a pipe's reader is behind, as pg_basebackup does.
 * @module
 */
import { fstatSync, writevSync } from 'node:fs';
import { Writable } from 'node:stream';
import { IoError } from '../entries/errors.js';

/** Bytes gathered before they are written. */
export const FD_BATCH_BYTES = 256 * 1024;
/**
 * How long gathered bytes may wait for more before they are written anyway (a slow or throttled
 * backup, `-r`): the reader of a pipe sees the archive grow while the server sends it.
 */
export const FD_FLUSH_DELAY_MS = 20;

/** Options for {@link FdWritable}. */
export interface FdWritableOptions {
  /** Bytes gathered before they are written. @default FD_BATCH_BYTES */
  batchBytes?: number;
  /** Longest wait, in milliseconds, before gathered bytes are written anyway. @default FD_FLUSH_DELAY_MS */
  flushDelayMs?: number;
  /**
   * The stream to go on through if the descriptor turns out to be non-blocking (`EAGAIN`: a pipe
   * that another program, or an earlier `process.stdout`, set so), which waits for room with the
   * event loop instead: `process.stdout` for fd 1. Without one, `EAGAIN` fails the stream.
   */
  fallback?: () => Writable;
  /** Name of the output in messages. @default 'standard output' */
  name?: string;
}

type Callback = (err?: Error | null) => void;

/**
 * A Writable over a file descriptor it does not own (it never closes it): chunks are gathered and
 * written with one `writev` once {@link FdWritableOptions.batchBytes} are in, after
 * {@link FdWritableOptions.flushDelayMs} without a full batch, at `end()`, and for a zero-length
 * write, whose callback thus comes once every byte before it is written (as on a stream that does
 * not gather). Partial writes are completed; `EPIPE` (the reader went away) fails with an
 * {@link IoError}.
 *
 * @example
 * ```ts
 * const out = new FdWritable(1, { fallback: () => process.stdout });
 * await pipeline(tarChunks, out);
 * ```
 */
export class FdWritable extends Writable {
  readonly #fd: number;
  readonly #batchLimit: number;
  readonly #delayMs: number;
  readonly #name: string;
  readonly #makeFallback: (() => Writable) | undefined;
  #fallback: Writable | undefined;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerArmed = false;

  constructor(fd: number, options: FdWritableOptions = {}) {
    const batchBytes = options.batchBytes ?? FD_BATCH_BYTES;
    super({ highWaterMark: batchBytes });
    this.#fd = fd;
    this.#batchLimit = batchBytes;
    this.#delayMs = options.flushDelayMs ?? FD_FLUSH_DELAY_MS;
    this.#name = options.name ?? 'standard output';
    this.#makeFallback = options.fallback;
  }

  /**
   * Bytes written to this stream and not yet handed to the kernel (the batch being gathered, and what a
   * fallback stream still queues). At 0 the stream keeps none of the chunks written to it, so a source that
   * reuses its buffers (the BASE_BACKUP receive buffers, see WritableSink) may refill them.
   */
  get heldBytes(): number {
    return this.#batchBytes + (this.#fallback?.writableLength ?? 0);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    if (chunk.length === 0) {
      this.#flush(callback);
      return;
    }
    this.#add(chunk);
    this.#settle(callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: Callback): void {
    let barrier = false;
    for (const c of chunks) {
      if (c.chunk.length === 0) barrier = true;
      else this.#add(c.chunk);
    }
    if (barrier) this.#flush(callback);
    else this.#settle(callback);
  }

  override _final(callback: Callback): void {
    this.#disarm();
    this.#flush(callback);
  }

  override _destroy(err: Error | null, callback: Callback): void {
    this.#disarm();
    this.#batch = [];
    this.#batchBytes = 0;
    callback(err);
  }

  #add(chunk: Buffer): void {
    this.#batch.push(chunk);
    this.#batchBytes += chunk.length;
  }

  #settle(callback: Callback): void {
    if (this.#batchBytes >= this.#batchLimit) {
      this.#flush(callback);
      return;
    }
    this.#arm();
    callback();
  }

  /**
   * Starts the wait for more bytes. One timer serves the whole stream: a flush only marks it unarmed
   * (it then fires for nothing), and the next write restarts it, rather than a timer being made and
   * cleared for every batch (thousands per gigabyte).
   */
  #arm(): void {
    if (this.#timerArmed) return;
    this.#timerArmed = true;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        if (!this.#timerArmed) return;
        this.#timerArmed = false;
        // The stream is idle between writes here: a failure destroys it, and the next write rejects.
        this.#flush((err) => {
          if (err) this.destroy(err);
        });
      }, this.#delayMs);
    } else {
      this.#timer.refresh();
    }
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerArmed = false;
  }

  /** Writes everything gathered, then calls back. */
  #flush(callback: Callback): void {
    this.#timerArmed = false;
    let buffers = this.#batch;
    let left = this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    if (this.#fallback === undefined) {
      try {
        while (left > 0) {
          const n = writevSync(this.#fd, buffers);
          left -= n;
          // Nearly always the whole batch at once: only a partial write is cut up.
          buffers = left > 0 ? dropFront(buffers, n) : [];
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'EAGAIN' || this.#makeFallback === undefined) {
          callback(this.#ioError(e));
          return;
        }
        this.#fallback = this.#makeFallback();
      }
    }
    if (buffers.length === 0) {
      callback();
      return;
    }
    // Writes to a stream complete in order: the last callback says all of them are out.
    const out = this.#fallback as Writable;
    let pending = buffers.length;
    let failed = false;
    for (const b of buffers) {
      out.write(b, (err) => {
        pending--;
        if (failed) return;
        if (err) {
          failed = true;
          callback(this.#ioError(err));
        } else if (pending === 0) callback();
      });
    }
  }

  #ioError(err: NodeJS.ErrnoException): Error {
    if (err instanceof IoError) return err;
    const what =
      err.code === 'EPIPE'
        ? `${this.#name} was closed by its reader before the backup was written whole`
        : `writing to ${this.#name} failed: ${err.message}`;
    return new IoError(what, { cause: err, syscallCode: err.code });
  }
}

/** The buffers left once `n` bytes from the front are written (views, no copies). */
function dropFront(buffers: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && n >= (buffers[i] as Buffer).length) {
    n -= (buffers[i] as Buffer).length;
    i++;
  }
  const rest = buffers.slice(i);
  if (n > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(n);
  return rest;
}

/**
 * Whether descriptor `fd` can be written with {@link FdWritable}: a regular file, a pipe, a socket or
 * a character device other than a terminal (`/dev/null`). A terminal keeps `process.stdout`.
 */
export function writableByFd(fd: number, isTTY: boolean): boolean {
  if (isTTY) return false;
  try {
    const st = fstatSync(fd);
    return st.isFile() || st.isFIFO() || st.isSocket() || st.isCharacterDevice();
  } catch {
    return false;
  }
}
