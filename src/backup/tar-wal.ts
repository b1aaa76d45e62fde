/**
 * `pg_wal.tar` written straight into the backup's output while the data streams, as
 * `pg_basebackup -Ft -X stream` does: no temporary spool and no second copy. The archive is opened
 * when the session prepares WAL streaming (after connecting, before BASE_BACKUP) by the backup's
 * sink (a tar-format directory, or any sink with `openArchiveStream`, such as a repository's upload),
 * compressed on the client with the backup's spec when there is one (`pg_wal.tar.gz`), and tracked
 * by that sink for cleanup and completion.
 * @module
 */
import { finished } from 'node:stream/promises';
import { compressedOutput } from '../compress/archive.js';
import { compressedArchiveName, type CompressionSpec } from '../compress/spec.js';
import { StateError } from '../errors.js';
import type { ArchiveStream } from '../sinks/types.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalServerSettings, WalSink } from '../wal/sink.js';
import { TarWalSink } from '../wal/tar-sink.js';

/** Options of {@link TarFileWalSink}. */
export interface TarFileWalSinkOptions {
  /** The backup's sink; `pg_wal.tar` is opened through it. */
  sink: { openArchiveStream(name: string): Promise<ArchiveStream> };
  /** Client-side compression of `pg_wal.tar` (`undefined`: none). */
  compression: CompressionSpec | undefined;
  /**
   * fsync on every WAL flush, so a flush position reported to the server is on disk. Needed when a
   * permanent slot follows it (its restart_lsn moves with what we report); a temporary slot ends with
   * the connection, and the sink makes the archive durable at the end anyway. The sink's stream must
   * then offer `sync`.
   */
  durableFlush: boolean;
  /**
   * Report no WAL as flushed while the stream is written: `flush()` and `closeSegment()` resolve
   * `false`, so the streamer's flush position stays at its start. For a permanent slot over a stream
   * that cannot be made durable while it is written (an upload, which is stored only once complete):
   * the slot then keeps the backup's WAL on the server until its next user confirms it, instead of
   * being told of WAL that a failed upload would lose.
   * @default false
   */
  holdFlush?: boolean;
}

/** A {@link WalSink} writing the backup's `pg_wal.tar` (or `pg_wal.tar.gz` ...) through the backup's sink. */
export class TarFileWalSink implements WalSink {
  /**
   * Uncompressed into a stream that writes synchronously (the tar sink's file), the streamer may reuse
   * each message's buffer once written; a compressor or an upload may hold the bytes. Known once
   * prepared.
   */
  get writesDataAtOnce(): boolean {
    return this.#atOnce;
  }
  #atOnce = false;
  #inner: TarWalSink | undefined;
  /** Resolves once every byte reached the file (after the inner sink finished). */
  #drained: (() => Promise<void>) | undefined;

  constructor(private readonly options: TarFileWalSinkOptions) {}

  /** The open in progress: abort() waits for it, so that cleanup never runs before the file exists. */
  #opening: Promise<void> | undefined;

  prepare(_settings: WalServerSettings): Promise<void> {
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    const { sink, compression, durableFlush } = this.options;
    const name = compression ? compressedArchiveName('pg_wal.tar', compression.algorithm) : 'pg_wal.tar';
    const file = await sink.openArchiveStream(name);
    const fileSync = durableFlush ? file.sync : undefined;
    if (durableFlush && fileSync === undefined) {
      file.output.destroy();
      throw new StateError(`${name} cannot be made durable while it is written: a permanent slot cannot follow it`);
    }
    if (compression) {
      const c = compressedOutput(file.output, compression, fileSync ? { sync: fileSync } : {});
      this.#inner = new TarWalSink({ output: c.output, markDone: true, ...(durableFlush ? { sync: c.sync } : {}) });
      // Without durable flushes the inner sink never syncs: wait for the compressed bytes here.
      this.#drained = durableFlush ? undefined : c.sync;
    } else {
      this.#atOnce = file.writesAtOnce;
      this.#inner = new TarWalSink({
        output: file.output,
        outputWritesAtOnce: file.writesAtOnce,
        markDone: true,
        ...(fileSync ? { sync: fileSync } : {}),
      });
      this.#drained = durableFlush ? undefined : () => finished(file.output, { readable: false });
    }
  }

  openSegment(target: WalSegmentTarget): Promise<void> {
    return this.#sink().openSegment(target);
  }

  write(data: Buffer): Promise<void> {
    return this.#sink().write(data);
  }

  async flush(): Promise<void | false> {
    await this.#sink().flush();
    return this.#held();
  }

  async closeSegment(mode: WalSegmentCloseMode): Promise<void | false> {
    await this.#sink().closeSegment(mode);
    return this.#held();
  }

  /** What flush() and closeSegment() resolve: `false` while flush positions are held (see holdFlush). */
  #held(): false | undefined {
    return this.options.holdFlush ? false : undefined;
  }

  writeHistoryFile(name: string, content: Buffer): Promise<void> {
    return this.#sink().writeHistoryFile(name, content);
  }

  async finish(): Promise<void> {
    await this.#sink().finish();
    await this.#drained?.();
  }

  async abort(reason?: unknown): Promise<void> {
    // An abort can come while the file is being created (the session stops waiting for prepare());
    // let it finish, so the tar sink has it tracked when runBackup cleans up.
    await this.#opening?.catch(() => undefined);
    await this.#inner?.abort(reason);
  }

  #sink(): TarWalSink {
    if (!this.#inner) throw new StateError('pg_wal.tar is not open: prepare() was not called');
    return this.#inner;
  }
}
