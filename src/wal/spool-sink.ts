/**
 * The WAL spool of a backup session that was given no WAL sink: streamed WAL is written as
 * `pg_wal.tar` (segments under their final names, `archive_status/*.done` markers, as
 * `pg_basebackup -Ft -X stream` makes it) into a private temporary directory, read back once
 * the stream ended (the session yields it as the backup's last archive), then removed.
 * @module
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { IoError, StateError } from '../errors.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalServerSettings, WalSink } from './sink.js';
import { TarWalSink } from './tar-sink.js';

/** Options of {@link SpoolWalSink}. */
export interface SpoolWalSinkOptions {
  /** The directory the private spool directory (`pgbb-wal-*`) is made in. @default os.tmpdir() */
  tempDir?: string | undefined;
  /**
   * fsync the spool on every WAL flush, so that a flush position reported to the server is on
   * disk. Needed when a permanent slot follows it: its restart_lsn moves with what is reported,
   * and the server may then recycle that WAL (walmethods.c's tar method does the same). A
   * temporary slot ends with the connection, so the spool's durability does not matter to it.
   * @default false
   */
  durableFlush?: boolean;
}

/** Size of the chunks read back from the spool. */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * `pg_wal.tar` spooled to a private temporary file: a {@link WalSink} while the WAL streams,
 * a byte source afterwards. {@link SpoolWalSink.prepare} creates the file; {@link SpoolWalSink.remove}
 * deletes it (call it in every case, after success or failure).
 *
 * @example
 * ```ts
 * const spool = new SpoolWalSink({ durableFlush: false });
 * await spool.prepare({ groupReadable: false, segmentSize: 16 * 1024 * 1024 });
 * // ... the WAL stream writes into it and calls finish() ...
 * const size = await spool.endWriting();
 * for await (const chunk of spool.read()) upload.write(chunk);
 * await spool.remove();
 * ```
 */
export class SpoolWalSink implements WalSink {
  readonly #options: SpoolWalSinkOptions;
  #dir: string | undefined;
  #file: string | undefined;
  /** Open for writing from prepare() until {@link endWriting}; kept open so that flush can fsync it. */
  #handle: FileHandle | undefined;
  #output: Writable | undefined;
  #inner: TarWalSink | undefined;
  #reader: ReturnType<typeof createReadStream> | undefined;
  #preparing: Promise<void> | undefined;

  constructor(options: SpoolWalSinkOptions = {}) {
    this.#options = options;
  }

  /** The spool file, once created. */
  get path(): string | undefined {
    return this.#file;
  }

  /** Creates the private directory and `pg_wal.tar` in it (0600). Idempotent. */
  prepare(_settings?: WalServerSettings): Promise<void> {
    this.#preparing ??= this.#create();
    return this.#preparing;
  }

  async #create(): Promise<void> {
    const parent = this.#options.tempDir ?? tmpdir();
    try {
      this.#dir = await mkdtemp(join(parent, 'pgbb-wal-'));
      this.#file = join(this.#dir, 'pg_wal.tar');
      // Opened here (async) rather than as a path stream, so the sink can fsync this handle.
      this.#handle = await open(this.#file, 'w', 0o600);
    } catch (err) {
      const path = this.#file ?? parent;
      const e = err as NodeJS.ErrnoException;
      throw new IoError(
        `could not create the WAL spool "${path}": ${e.message ?? String(err)}; ` +
          'set tempDir to a writable directory with room for the WAL of the backup',
        {
          cause: err,
          path,
          syscallCode: e.code,
        },
      );
    }
    const handle = this.#handle;
    // autoClose off: the handle outlives end() so that sync() still works; endWriting() closes it.
    this.#output = handle.createWriteStream({ autoClose: false });
    this.#inner = new TarWalSink({
      output: this.#output,
      markDone: true,
      ...(this.#options.durableFlush ? { sync: () => handle.sync() } : {}),
    });
  }

  /** @throws StateError (as a rejection of the calling method) before prepare(). */
  #sink(): TarWalSink {
    if (!this.#inner) throw new StateError('the WAL spool is not open: prepare() was not called');
    return this.#inner;
  }

  async openSegment(target: WalSegmentTarget): Promise<void> {
    return this.#sink().openSegment(target);
  }

  async write(data: Buffer): Promise<void> {
    return this.#sink().write(data);
  }

  async flush(): Promise<void> {
    return this.#sink().flush();
  }

  async closeSegment(mode: WalSegmentCloseMode): Promise<void> {
    return this.#sink().closeSegment(mode);
  }

  async writeHistoryFile(name: string, content: Buffer): Promise<void> {
    return this.#sink().writeHistoryFile(name, content);
  }

  async finish(): Promise<void> {
    return this.#sink().finish();
  }

  async abort(reason?: unknown): Promise<void> {
    await this.#inner?.abort(reason);
  }

  /** Stops writing (after {@link finish}) and returns the size of `pg_wal.tar` in bytes. */
  async endWriting(): Promise<number> {
    await this.#closeWriter();
    if (this.#file === undefined) throw new StateError('the WAL spool was never created');
    return (await stat(this.#file)).size;
  }

  /** The bytes of `pg_wal.tar` (after {@link endWriting}). */
  async *read(): AsyncGenerator<Buffer, void, undefined> {
    if (this.#file === undefined) throw new StateError('the WAL spool was never created');
    const stream = createReadStream(this.#file, { highWaterMark: READ_CHUNK_BYTES });
    this.#reader = stream;
    try {
      for await (const chunk of stream) yield chunk as Buffer;
    } finally {
      stream.destroy();
    }
  }

  /** Abandons a {@link read} in progress. */
  stopReading(): void {
    this.#reader?.destroy();
  }

  async #closeWriter(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    // The stream holds a reference on the handle until destroyed: close() would wait for it.
    this.#output?.destroy();
    this.#output = undefined;
    await handle?.close().catch(() => {});
  }

  /** Closes the file and deletes the spool directory. Idempotent; never rejects. */
  async remove(): Promise<void> {
    await this.#preparing?.catch(() => undefined);
    this.#reader?.destroy();
    await this.#closeWriter();
    if (this.#dir !== undefined) await rm(this.#dir, { recursive: true, force: true }).catch(() => {});
  }
}
