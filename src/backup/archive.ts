/**
 * One archive of a backup (`base.tar`, `<oid>.tar`, `pg_wal.tar`), consumed exactly once:
 * as tar entries (lock step, through src/tar/extract.ts), as raw bytes, or piped to a
 * Writable. The bytes are always a complete tar: the end-of-archive marker that 13/14
 * servers omit is appended.
 * @module
 */
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StateError } from '../errors.js';
import { extractTar, type ExtractOptions, type TarExtractor } from '../tar/extract.js';

const noRelease = (): void => {};

/** A tablespace of the backup, from the BASE_BACKUP header. */
export interface BackupTablespace {
  /** Tablespace OID; `null` for the data directory. */
  oid: number | null;
  /** Server-side location; `null` for the data directory. */
  location: string | null;
  /** The server's size estimate in bytes; `undefined` without `estimateSize`. */
  estimatedBytes: number | undefined;
}

/** How an archive's bytes were (or are being) consumed. */
export type ArchiveConsumption = 'none' | 'entries' | 'chunks' | 'skipped';

/**
 * The iterator {@link BackupArchive.chunks} returns: the archive's bytes, as views of the buffers
 * they were received in, plus {@link ArchiveChunks.release}.
 */
export interface ArchiveChunks extends AsyncIterableIterator<Buffer> {
  /**
   * Say that no chunk the backup has handed out so far is in use any more: none is kept, and none
   * waits in a stream that has not yet written it (a PassThrough or a compressor keeps what it is
   * given; a file or socket stream whose `writableLength` is back to 0 has written it). The memory
   * of those chunks may then be refilled with bytes still to come, which keeps a long backup's
   * memory flat without relying on the garbage collector. Optional: until it is called, chunks
   * stay valid for as long as they are referenced. Call it between two `next()` calls, never while
   * one is pending.
   * @example
   * ```ts
   * const chunks = archive.chunks();
   * for await (const chunk of chunks) {
   *   writeSync(fd, chunk); // written before the next chunk is asked for
   *   chunks.release();
   * }
   * ```
   */
  release(): void;
}

/** What the session gives an archive: its byte source, and how to discard it. @internal */
export interface ArchiveController {
  /** The complete tar bytes (views of the receive buffers; see {@link ArchiveChunks.release}). */
  open(): AsyncGenerator<Buffer, void, undefined>;
  /** {@link ArchiveChunks.release}; absent where the chunks are not views of reusable buffers. */
  release?(): void;
  /** Discard whatever has not been read. */
  discard(): Promise<void>;
  /** Bytes received from the server so far (without an appended terminator). */
  bytesReceived(): number;
}

/** Options of {@link BackupArchive.pipeTo}. */
export interface PipeToOptions {
  /**
   * End the writable when the archive is complete. With `true` the writable belongs to the
   * archive: it is also destroyed when piping fails or is aborted. With `false` it is left open
   * in every case (for a stream that outlives the archive, such as `process.stdout`).
   * The default is `true` like `stream.pipeline()`'s; runBackup's `StreamOutput.end` defaults to
   * `false` because its stream is typically `process.stdout`.
   * @default true
   */
  end?: boolean;
  /**
   * Stops piping: `pipeTo` rejects with an AbortError and, with `end: true`, destroys the
   * writable. The session itself is not aborted.
   */
  signal?: AbortSignal;
}

/**
 * One archive, yielded by {@link BackupSession.archives}. Consume it with exactly one of
 * {@link entries}, {@link chunks} or {@link pipeTo}, or {@link skip} it; moving to the next
 * archive without consuming discards it.
 */
export class BackupArchive {
  /** Archive file name: `base.tar`, `<oid>.tar`, or `pg_wal.tar` for spooled streamed WAL. */
  readonly name: string;
  /** Position in the session's archive sequence (0-based). */
  readonly index: number;
  /** What the archive holds: a tablespace (the data directory included), or streamed WAL. */
  readonly kind: 'tablespace' | 'wal';
  /** The tablespace, for `kind: 'tablespace'`; `null` for `pg_wal.tar`. */
  readonly tablespace: BackupTablespace | null;
  /**
   * Whether the server ended the tar with its two zero blocks itself (15+). When false
   * (13/14), {@link chunks} and {@link pipeTo} append them.
   */
  readonly serverTerminated: boolean;
  #consumption: ArchiveConsumption = 'none';
  readonly #controller: ArchiveController;

  /** @internal */
  constructor(init: {
    name: string;
    index: number;
    kind: 'tablespace' | 'wal';
    tablespace: BackupTablespace | null;
    serverTerminated: boolean;
    controller: ArchiveController;
  }) {
    this.name = init.name;
    this.index = init.index;
    this.kind = init.kind;
    this.tablespace = init.tablespace;
    this.serverTerminated = init.serverTerminated;
    this.#controller = init.controller;
  }

  /** How the archive was consumed so far. */
  get consumption(): ArchiveConsumption {
    return this.#consumption;
  }

  /** Bytes of this archive received so far (an appended terminator not counted). */
  get bytesReceived(): number {
    return this.#controller.bytesReceived();
  }

  #claim(how: ArchiveConsumption): void {
    if (this.#consumption !== 'none') {
      throw new StateError(
        `archive ${this.name} was already consumed (${this.#consumption}): use exactly one of entries(), chunks(), pipeTo() or skip()`,
      );
    }
    this.#consumption = how;
  }

  /**
   * The archive as tar entries, in lock step: the next header is read only after the current
   * body was read or skipped, so a slow consumer slows the server.
   * @example
   * ```ts
   * let version = '';
   * for await (const entry of archive.entries()) {
   *   if (entry.header.name === 'PG_VERSION') version = (await readBody(entry.body, 64)).toString().trim();
   * }
   * ```
   */
  entries(options?: ExtractOptions): TarExtractor {
    this.#claim('entries');
    return extractTar(this.#controller.open(), options);
  }

  /**
   * The raw tar bytes (a complete archive, terminator included). The buffers are views of the
   * receive buffers, valid while referenced unless {@link ArchiveChunks.release} is called.
   */
  chunks(): ArchiveChunks {
    this.#claim('chunks');
    const release = this.#controller.release;
    return Object.assign(this.#controller.open(), { release: release ? () => release() : noRelease });
  }

  /**
   * Write the raw tar bytes to `writable`, honouring its backpressure. Resolves when the
   * archive is written (and, with `end`, the writable finished).
   *
   * On abort (`signal`) or failure (the session failed, the writable errored) it rejects and,
   * unless `end: false`, destroys `writable` (as `stream.pipeline()` does), so that a file or
   * upload behind it is not mistaken for a complete archive.
   */
  async pipeTo(writable: Writable, options: PipeToOptions = {}): Promise<void> {
    this.#claim('chunks');
    const source = Readable.from(this.#controller.open(), { objectMode: false, highWaterMark: 64 * 1024 });
    await pipeline(source, writable, { end: options.end ?? true, ...(options.signal ? { signal: options.signal } : {}) });
  }

  /** Discard the archive (the server's bytes are still read, to reach the next archive). */
  async skip(): Promise<void> {
    if (this.#consumption === 'none') this.#consumption = 'skipped';
    await this.#controller.discard();
  }
}
