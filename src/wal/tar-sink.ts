/**
 * {@link WalSink} writing `pg_wal.tar` into any `Writable`, the way `pg_basebackup -Ft -Xstream`
 * does (walmethods.c's tar method), but without seeking: the segment size is known when a
 * segment opens, so its header is written first with the full size, the WAL follows, and an
 * incomplete last segment is completed with zeros when it closes (pg_basebackup pads it to the
 * full segment size too). Complete segments and history files get an empty
 * `archive_status/<name>.done` entry right after them when `markDone` is set; two zero blocks
 * end the archive.
 *
 * Because the entry name is fixed when its header is written, this sink never uses a partial
 * suffix: a segment closed as `partial` keeps its final name, padded, like `padded`.
 * @module
 */
import type { Writable } from 'node:stream';
import { IoError, PgBackupError, StateError } from '../errors.js';
import { encodeHeader } from '../tar/header.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalSink } from './sink.js';

/** Options of {@link TarWalSink}. */
export interface TarWalSinkOptions {
  /** Where the archive bytes go (a file stream, a compressor, a socket...). */
  output: Writable;
  /**
   * Add an empty `archive_status/<name>.done` entry after each complete segment and history
   * file, as pg_basebackup does, so the restored server does not archive them again.
   * @default false
   */
  markDone?: boolean;
  /**
   * `output` writes each chunk before its `write()` returns (a synchronous file writer such as
   * `SyncFileWritable`), so the sink is done with `data` once {@link TarWalSink.write} resolves and
   * declares {@link WalSink.writesDataAtOnce}. Leave it unset for outputs that queue (streams,
   * compressors).
   * @default false
   */
  outputWritesAtOnce?: boolean;
  /** Prefix of every entry name, e.g. `'pg_wal/'`. pg_basebackup's `pg_wal.tar` uses none. @default '' */
  prefix?: string;
  /** Modification time written in the headers. @default the time the sink was created */
  mtime?: Date;
  /** Call `output.end()` in {@link TarWalSink.finish} and wait for `finish`; destroy it in `abort()`. @default true */
  end?: boolean;
  /**
   * Makes what `output` accepted durable (e.g. fsync of the file behind it). Called by
   * {@link TarWalSink.flush} after every write was acknowledged. Without it, `flush()` only
   * means "accepted by the stream", so do not report a flush position to a slot from it.
   */
  sync?: () => Promise<void>;
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(64 * 1024);

/**
 * One ustar header block for a regular file, mode 0600, owner postgres, as pgtar.c's
 * tarCreateHeader writes the members of pg_basebackup's `pg_wal.tar`.
 */
export function walTarHeader(name: string, size: number, mtime: Date): Buffer {
  if (Buffer.byteLength(name) > 100) throw new StateError(`tar entry name too long: ${name}`);
  return encodeHeader({
    name,
    size,
    mode: 0o600,
    mtime: Math.floor(mtime.getTime() / 1000),
    uname: 'postgres',
    gname: 'postgres',
  });
}

interface OpenEntry {
  name: string;
  segmentSize: number;
  position: number;
}

/** `pg_wal.tar` written to a `Writable`, as a {@link WalSink}. */
export class TarWalSink implements WalSink {
  readonly #out: Writable;
  readonly #markDone: boolean;
  readonly #prefix: string;
  readonly #mtime: Date;
  readonly #end: boolean;
  readonly #sync: (() => Promise<void>) | undefined;
  #entry: OpenEntry | undefined;
  #pending = 0;
  #idleWaiters: (() => void)[] = [];
  #error: Error | undefined;
  #finished = false;
  #aborted = false;
  /** Bytes handed to the output so far. */
  bytesWritten = 0;
  /** See {@link TarWalSinkOptions.outputWritesAtOnce}. */
  readonly writesDataAtOnce: boolean;

  constructor(options: TarWalSinkOptions) {
    this.#out = options.output;
    this.writesDataAtOnce = options.outputWritesAtOnce ?? false;
    this.#markDone = options.markDone ?? false;
    this.#prefix = options.prefix ?? '';
    this.#mtime = options.mtime ?? new Date();
    this.#end = options.end ?? true;
    this.#sync = options.sync;
    this.#out.on('error', this.#onError);
  }

  readonly #onError = (err: Error): void => {
    this.#error ??= err;
  };

  #failure(): PgBackupError {
    const cause = this.#error;
    // An output that failed with a typed error of ours (an upload's StorageError) already says what
    // went wrong and what to do.
    if (cause instanceof PgBackupError) return cause;
    return new IoError(`could not write the WAL tar archive: ${cause?.message ?? 'the output was closed'}`, {
      cause,
      syscallCode: (cause as NodeJS.ErrnoException | undefined)?.code,
    });
  }

  /** Hand `chunk` to the output; resolves when the output wants more (backpressure). */
  #push(chunk: Buffer): Promise<void> {
    if (this.#error || this.#out.destroyed) return Promise.reject(this.#failure());
    this.#pending++;
    this.bytesWritten += chunk.length;
    const ok = this.#out.write(chunk, (err) => {
      this.#pending--;
      if (err) this.#error ??= err;
      if (this.#pending === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    });
    if (ok) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        this.#out.off('drain', onDrain);
        this.#out.off('close', onClose);
        this.#out.off('error', onErr);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(this.#failure());
      const onErr = (e: Error): void => {
        this.#error ??= e;
        done(this.#failure());
      };
      this.#out.on('drain', onDrain);
      this.#out.on('close', onClose);
      this.#out.on('error', onErr);
    });
  }

  async #zeros(count: number): Promise<void> {
    for (let left = count; left > 0; left -= ZEROS.length) {
      await this.#push(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
    }
  }

  /** Resolves once every chunk handed to the output was acknowledged by it. */
  #idle(): Promise<void> {
    if (this.#pending === 0) return this.#error ? Promise.reject(this.#failure()) : Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve)).then(() => {
      if (this.#error) throw this.#failure();
    });
  }

  #checkUsable(): void {
    if (this.#aborted) throw new StateError('the WAL sink was aborted');
    if (this.#finished) throw new StateError('the WAL tar archive is already finished');
  }

  async openSegment(target: WalSegmentTarget): Promise<void> {
    this.#checkUsable();
    if (this.#entry) throw new StateError(`segment ${this.#entry.name} is still open`);
    if (target.segmentSize % BLOCK !== 0) throw new StateError(`segment size ${target.segmentSize} is not a multiple of 512`);
    if (target.startOffset < 0 || target.startOffset > target.segmentSize) {
      throw new StateError(`start offset ${target.startOffset} is outside a ${target.segmentSize}-byte segment`);
    }
    this.#entry = { name: target.name, segmentSize: target.segmentSize, position: 0 };
    await this.#push(walTarHeader(this.#prefix + target.name, target.segmentSize, this.#mtime));
    // A stream cannot seek: the bytes before startOffset are zeros in the archive.
    await this.#zeros(target.startOffset);
    this.#entry.position = target.startOffset;
  }

  async write(data: Buffer): Promise<void> {
    const entry = this.#entry;
    if (!entry) throw new StateError('no WAL segment is open');
    if (entry.position + data.length > entry.segmentSize) {
      throw new StateError(`write of ${data.length} bytes at offset ${entry.position} runs past the end of segment ${entry.name}`);
    }
    entry.position += data.length;
    await this.#push(data);
  }

  async flush(): Promise<void> {
    await this.#idle();
    await this.#sync?.();
  }

  async closeSegment(mode: WalSegmentCloseMode): Promise<void> {
    const entry = this.#entry;
    if (!entry) throw new StateError('no WAL segment is open');
    if (mode === 'complete' && entry.position !== entry.segmentSize) {
      throw new StateError(`segment ${entry.name} is not complete (${entry.position} of ${entry.segmentSize} bytes)`);
    }
    // The header promised segmentSize bytes: complete the entry with zeros (walmethods.c pads
    // the last, incomplete segment to the full size as well).
    await this.#zeros(entry.segmentSize - entry.position);
    this.#entry = undefined;
    if (mode === 'complete' && this.#markDone) await this.#writeDone(entry.name);
    await this.flush();
  }

  async #writeDone(name: string): Promise<void> {
    await this.#push(walTarHeader(`${this.#prefix}archive_status/${name}.done`, 0, this.#mtime));
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    this.#checkUsable();
    if (this.#entry) throw new StateError(`segment ${this.#entry.name} is still open`);
    await this.#push(walTarHeader(this.#prefix + name, content.length, this.#mtime));
    await this.#push(content);
    await this.#zeros((BLOCK - (content.length % BLOCK)) % BLOCK);
    if (this.#markDone) await this.#writeDone(name);
    await this.flush();
  }

  async finish(): Promise<void> {
    this.#checkUsable();
    if (this.#entry) throw new StateError(`segment ${this.#entry.name} is still open`);
    this.#finished = true;
    await this.#zeros(2 * BLOCK);
    await this.#idle();
    if (this.#end) {
      await new Promise<void>((resolve, reject) => {
        this.#out.end(() => (this.#error ? reject(this.#failure()) : resolve()));
      });
    }
    await this.#sync?.();
  }

  async abort(_reason?: unknown): Promise<void> {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#entry = undefined;
    for (const wake of this.#idleWaiters.splice(0)) wake();
    // The archive is unusable; a caller-owned output (end: false) is left for the caller to discard.
    if (this.#end && !this.#out.destroyed) this.#out.destroy();
  }
}
