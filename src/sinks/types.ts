/**
 * The contract between a backup session and where its bytes go. A session pulls each archive from the
 * server as an async iterable and hands it to a sink, which consumes it at its own pace (backpressure:
 * the sink pulls, so a slow disk slows the socket reads).
 * @module
 */
import type { Writable } from 'node:stream';

/** What the server (or the WAL writer) says about one archive. */
export interface ArchiveInfo {
  /**
   * File name of the archive: `base.tar` for the data directory, `<oid>.tar` for a tablespace,
   * `pg_wal.tar` for streamed WAL; with compression `.gz`, `.lz4` or `.zst` is appended.
   */
  name: string;
  /**
   * The tablespace location on the server (`spclocation`), or `''` for the data directory and WAL.
   * A relative location (an in-place tablespace, a test-only feature) is taken relative to the data directory.
   */
  tablespacePath: string;
  /**
   * Whether the bytes end with the 1024-byte end-of-archive marker. Servers 15+ send it; 13 and 14 do not,
   * and the tar sinks then append it, as pg_basebackup does.
   */
  terminated: boolean;
}

/** Options for one call that moves bytes. */
export interface SinkCallOptions {
  /** Abandons the write with an `AbortError`; the caller then calls `cleanup()`. */
  signal?: AbortSignal;
}

/**
 * Files the caller adds to the backup, for `-R`: text appended to `postgresql.auto.conf` and whole new
 * files such as `standby.signal`. In tar output the `postgresql.auto.conf` entry of `base.tar` is rewritten
 * (its size changes) and the new files are appended before the end-of-archive marker; in plain output the
 * file is appended to and the new files are created once `base.tar` is extracted.
 *
 * @example
 * ```ts
 * const injection: Injection = {
 *   appendToAutoConf: "primary_conninfo = 'host=primary user=replicator'\n",
 *   addFiles: [{ name: 'standby.signal', content: Buffer.alloc(0) }],
 * };
 * ```
 */
export interface Injection {
  /** Text appended to `postgresql.auto.conf` (the file is created if the backup has none). */
  appendToAutoConf?: string;
  /** Files added at the root of the data directory. */
  addFiles?: InjectedFile[];
}

/** One file added by an {@link Injection}. */
export interface InjectedFile {
  /** Path relative to the data directory, e.g. `standby.signal`. */
  name: string;
  /** The whole content (these files are small). */
  content: Buffer;
  /** Permission bits. @default 0o600 (0o640 for a group-readable plain backup) */
  mode?: number;
}

/**
 * An archive opened for a producer that pushes its bytes as they come (the streamed WAL's `pg_wal.tar`),
 * see {@link BackupSink.openArchiveStream}.
 */
export interface ArchiveStream {
  /** Where the archive's bytes are written. Ending it completes the archive; destroying it abandons it. */
  output: Writable;
  /**
   * Makes what `output` accepted so far durable (an fsync of the file behind it), so that a WAL flush
   * position reported to a permanent slot is safe. `undefined` when the destination cannot do that
   * before the archive is complete (an upload in progress).
   */
  sync: (() => Promise<void>) | undefined;
  /**
   * `output` has written (or copied) each chunk when its `write()` returns, so the producer may reuse
   * the buffer at once. `false` for outputs that queue chunks (streams, uploads, compressors).
   */
  writesAtOnce: boolean;
}

/** Where a backup's archives and manifest go. Implemented by the directory, tar-files and Writable sinks. */
export interface BackupSink {
  /**
   * Consumes one archive to its end. Resolves once every byte is handed to the destination (not yet
   * fsynced: see {@link BackupSink.finish}). Archives are written one after another, never concurrently.
   */
  writeArchive(info: ArchiveInfo, bytes: AsyncIterable<Buffer | Uint8Array>, options?: SinkCallOptions): Promise<void>;
  /** Stores the backup manifest (`backup_manifest`), after the archives. */
  writeManifest(bytes: AsyncIterable<Buffer | Uint8Array> | Buffer, options?: SinkCallOptions): Promise<void>;
  /** Completes the output: fsyncs what was written (unless the sink was made with `noSync`), ends streams. */
  finish(): Promise<void>;
  /** Removes everything this sink created, and only that (after a failure). Safe to call more than once. */
  cleanup(): Promise<void>;
  /**
   * Opens archive `name` (`pg_wal.tar`) to be pushed while the backup runs, beside the archives written
   * by {@link BackupSink.writeArchive}. A sink that has it gets the streamed WAL this way, as it arrives;
   * one without it gets `pg_wal.tar` spooled by the session and written last. {@link BackupSink.finish}
   * waits until such an archive is stored; {@link BackupSink.cleanup} removes it.
   */
  openArchiveStream?(name: string): Promise<ArchiveStream>;
}
