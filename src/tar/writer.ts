/**
 * Building tar bytes: headers for entries we create ourselves (recovery files, `backup_manifest` in a
 * tar on standard output, `pg_wal.tar` members), padding, the end-of-archive marker, and a streaming
 * writer that honours the destination's backpressure.
 * @module
 */
import type { Writable } from 'node:stream';
import { AbortError, IoError, TarError } from '../errors.js';
import { BLOCK_SIZE, encodeHeader, fitsField, paddingSize, splitUstarName, type HeaderFields } from './header.js';
import { encodePax } from './pax.js';

/** Size of the end-of-archive marker: two zero blocks. */
export const TERMINATOR_SIZE = 2 * BLOCK_SIZE;

// Never handed out for writing: only views of it are passed to streams, which only read them.
const ZEROS = Buffer.alloc(TERMINATOR_SIZE);

/**
 * The header bytes for one entry: a single ustar block when the name fits (in `name`, or split into
 * `prefix` + `name`), else a pax `x` record carrying `path` / `linkpath` followed by the ustar block, so
 * that any name round-trips through GNU tar and through {@link extractTar}. Sizes of 8 GiB and more
 * are written in GNU base-256, as PostgreSQL does.
 *
 * @example
 * ```ts
 * const content = Buffer.from('');
 * const bytes = Buffer.concat([entryHeader({ name: 'standby.signal', size: 0 }), content, padding(0)]);
 * ```
 */
export function entryHeader(fields: HeaderFields): Buffer {
  const records: [string, string][] = [];
  if (splitUstarName(fields.name) === undefined) records.push(['path', fields.name]);
  if (fields.linkname !== undefined && !fitsField(fields.linkname, 100)) records.push(['linkpath', fields.linkname]);
  if (fields.uname !== undefined && !fitsField(fields.uname, 32)) records.push(['uname', fields.uname]);
  if (fields.gname !== undefined && !fitsField(fields.gname, 32)) records.push(['gname', fields.gname]);
  const block = encodeHeader(fields);
  if (records.length === 0) return block;
  const pax = encodePax(records);
  const base = fields.name.replace(/\/+$/, '').split('/').pop() ?? '';
  const paxHeader = encodeHeader({
    name: `PaxHeader/${base}`,
    type: 'pax-header',
    size: pax.length,
    mode: 0o644,
    mtime: fields.mtime ?? 0,
  });
  return Buffer.concat([paxHeader, pax, padding(pax.length), block]);
}

/** The zero bytes that pad a body of `size` bytes to a block boundary (0 to 511 bytes). */
export function padding(size: number): Buffer {
  return ZEROS.subarray(0, paddingSize(size));
}

/** The end-of-archive marker: 1024 zero bytes. A fresh buffer on every call. */
export function terminator(): Buffer {
  return Buffer.alloc(TERMINATOR_SIZE);
}

/**
 * Writes to a Node Writable one chunk at a time, waiting for `drain` once a `highWaterMark`'s
 * worth of bytes is queued in it, so the producer runs no faster than the destination. Listens for `error` for the whole lifetime,
 * so a failing destination rejects the pending or next write instead of crashing the process.
 */
export class BackpressureWriter {
  private failure: Error | undefined;
  private readonly onError = (err: Error): void => {
    this.failure ??= err;
  };
  /** Bytes accepted by the destination so far. */
  bytesWritten = 0;

  constructor(
    readonly writable: Writable,
    private readonly signal?: AbortSignal,
  ) {
    writable.on('error', this.onError);
  }

  /**
   * Writes one chunk. Returns `undefined` when the destination can take more at once, else a promise
   * that resolves when it can (`await` works on both). Throws at once when the destination failed.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    this.check();
    const w = this.writable;
    this.bytesWritten += chunk.length;
    // write() returns false for any chunk above the highWaterMark (16 KiB for process.stdout), even one
    // that went out at once: a pipe or socket with room is written synchronously by libuv and queues
    // nothing. Waiting for the 'drain' that follows would cost listeners, a promise and an event-loop
    // turn per chunk for nothing; memory stays bounded, since we wait once a highWaterMark is queued.
    if (w.write(chunk) || w.writableLength < w.writableHighWaterMark) return undefined;
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        w.off('drain', onDrain);
        w.off('error', onFail);
        w.off('close', onClose);
        this.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onFail = (err: Error): void => done(wrapIo(err));
      const onClose = (): void => done(w.errored ? wrapIo(w.errored) : new IoError('the output stream closed before all data was written'));
      const onAbort = (): void => done(new AbortError(undefined, { cause: this.signal?.reason }));
      w.on('drain', onDrain);
      w.on('error', onFail);
      w.on('close', onClose);
      this.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Ends the destination and resolves once everything is flushed (`finish`). */
  async end(): Promise<void> {
    this.check();
    const w = this.writable;
    await new Promise<void>((resolve, reject) => {
      const onFail = (err: Error): void => {
        w.off('finish', onFinish);
        reject(wrapIo(err));
      };
      const onFinish = (): void => {
        w.off('error', onFail);
        resolve();
      };
      w.once('finish', onFinish);
      w.once('error', onFail);
      w.end();
    });
    this.release();
  }

  /** Stops listening to the destination (after a successful `end`, or when handing it back to its owner). */
  release(): void {
    this.writable.off('error', this.onError);
  }

  private check(): void {
    if (this.signal?.aborted) throw new AbortError(undefined, { cause: this.signal.reason });
    // A stream that failed before this writer saw its 'error' event still carries the cause.
    const failure = this.failure ?? this.writable.errored ?? undefined;
    if (failure) throw wrapIo(failure);
    if (this.writable.destroyed || this.writable.writableEnded) throw new IoError('the output stream is already closed');
  }
}

function wrapIo(err: Error): Error {
  if (err instanceof IoError || err instanceof AbortError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new IoError(`writing the backup output failed: ${err.message}`, { cause: err, syscallCode: code });
}

/** Options for {@link TarWriter}. */
export interface TarWriterOptions {
  /** Aborts pending writes with an `AbortError`. */
  signal?: AbortSignal;
}

/** A body for {@link TarWriter.addEntry}: bytes in memory, or a stream of them. */
export type TarBody = Buffer | string | AsyncIterable<Buffer | Uint8Array>;

/**
 * Streams a tar archive into a Writable, entry by entry, with backpressure.
 *
 * @example
 * ```ts
 * const tar = new TarWriter(createWriteStream('pg_wal.tar'));
 * await tar.addEntry({ name: '000000010000000000000002', size: segment.length }, segment);
 * await tar.finish({ end: true });
 * ```
 */
export class TarWriter {
  private readonly out: BackpressureWriter;
  private finished = false;

  constructor(writable: Writable, options: TarWriterOptions = {}) {
    this.out = new BackpressureWriter(writable, options.signal);
  }

  /** Bytes written so far, headers and padding included. */
  get bytesWritten(): number {
    return this.out.bytesWritten;
  }

  /** Writes raw bytes (e.g. an entry passed through unchanged from another archive). */
  async writeRaw(chunk: Buffer): Promise<void> {
    if (this.finished) throw new TarError('the tar archive is already finished');
    if (chunk.length > 0) await this.out.write(chunk);
  }

  /**
   * Writes one entry. For a string or Buffer body, `size` defaults to its length; for a streamed body,
   * `size` is required and the body must produce exactly that many bytes (a {@link TarError} otherwise,
   * since the header is already out).
   */
  async addEntry(fields: HeaderFields, body?: TarBody): Promise<void> {
    if (this.finished) throw new TarError('the tar archive is already finished');
    const inMemory = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (Buffer.isBuffer(inMemory)) {
      const size = fields.size ?? inMemory.length;
      if (size !== inMemory.length)
        throw new TarError(`entry "${fields.name}": size ${size} does not match its ${inMemory.length}-byte body`);
      await this.out.write(entryHeader({ ...fields, size }));
      if (size > 0) {
        await this.out.write(inMemory);
        const pad = padding(size);
        if (pad.length > 0) await this.out.write(pad);
      }
      return;
    }
    const size = fields.size ?? 0;
    await this.out.write(entryHeader({ ...fields, size }));
    let written = 0;
    if (inMemory !== undefined) {
      for await (const piece of inMemory) {
        const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        written += chunk.length;
        if (written > size) throw new TarError(`entry "${fields.name}": body is longer than the ${size} bytes its header announced`);
        if (chunk.length > 0) await this.out.write(chunk);
      }
    }
    if (written !== size)
      throw new TarError(`entry "${fields.name}": body ended after ${written} of the ${size} bytes its header announced`);
    const pad = padding(size);
    if (pad.length > 0) await this.out.write(pad);
  }

  /**
   * Ends the archive: writes the end-of-archive marker unless `terminate` is false, then ends the
   * Writable when `end` is true (leave it false for `process.stdout`).
   */
  async finish(options: { terminate?: boolean; end?: boolean } = {}): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (options.terminate ?? true) await this.out.write(terminator());
    if (options.end ?? false) await this.out.end();
    else this.out.release();
  }
}
