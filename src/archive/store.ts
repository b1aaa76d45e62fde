/**
 * Where {@link receiveWal} keeps the archive: a {@link WalSegmentStore}. The default,
 * {@link DirectoryWalStore}, is a directory laid out as pg_receivewal lays it out; another
 * store (object storage) implements the same four members.
 *
 * The durability contract rides on {@link WalSink}: the flush position reported to the server
 * (which moves a replication slot's restart_lsn, and lets a synchronous primary commit) only
 * advances when the sink's `flush()` resolves without `false`, or when `closeSegment()`
 * resolves. A store that can only make whole segments durable (an object upload) resolves
 * `flush()` with `false` and `closeSegment('complete')` once the object is stored.
 * @module
 */
import { createReadStream } from 'node:fs';
import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decompressArchive } from '../compress/archive.js';
import {
  algorithmFromFileName,
  NO_COMPRESSION,
  resolveCompression,
  type CompressionInput,
  type CompressionSpec,
} from '../compress/spec.js';
import { IoError } from '../errors.js';
import { DirectoryWalSink } from '../wal/directory-sink.js';
import type { WalSegmentCloseMode, WalSink } from '../wal/sink.js';
import { CompressedSegmentSink, removeStalePartials } from './compressed-sink.js';
import { PARTIAL_SUFFIX } from './names.js';
import type { ArchiveFile } from './start.js';

/** The server a session of `receiveWal` streams from, as {@link WalSegmentStore.checkServer} is told. */
export interface WalServerIdentity {
  /** IDENTIFY_SYSTEM's system identifier, in decimal. */
  systemIdentifier: string;
  /** The PostgreSQL major version (`17`). */
  majorVersion: number;
  /** `wal_segment_size` in bytes. */
  segmentSize: number;
}

/** A WAL archive's storage, as `receiveWal` uses it. */
export interface WalSegmentStore {
  /** Said in messages, e.g. the directory path. */
  readonly description: string;
  /** Create the archive if it does not exist (called once before streaming). */
  prepare(): Promise<void>;
  /**
   * Optional: told the server of each session after IDENTIFY_SYSTEM, before the archive is listed and
   * anything is stored. A rejection (another cluster's archive) ends the run unless the error is one
   * reconnecting can fix.
   */
  checkServer?(server: WalServerIdentity): Promise<void>;
  /** Every file the archive holds (segments, `.partial`s, history files), with its stored size. */
  list(): Promise<ArchiveFile[]>;
  /** The uncompressed size of a compressed segment in {@link WalSegmentStore.list}'s answer. */
  uncompressedBytes(file: ArchiveFile): Promise<number>;
  /**
   * Optional: the first `bytes` uncompressed bytes of a segment (fewer if it is shorter), so that
   * the archive's system identifier is checked against the server's before anything is added.
   */
  readSegmentStart?(file: ArchiveFile, bytes: number): Promise<Buffer>;
  /**
   * A sink for one streaming session (one START_REPLICATION connection and its timeline
   * switches). A session that fails aborts its sink; the next session gets a new one. The sink
   * must keep an unfinished segment as `.partial` on abort, and name completed ones by their
   * segment name plus the compression suffix.
   */
  openSink(): WalSink;
}

/** Options of {@link DirectoryWalStore}. */
export interface DirectoryWalStoreOptions {
  /** The archive directory (pg_receivewal `-D`). Created 0700 if missing. */
  directory: string;
  /**
   * Compress each segment (`gzip`, `lz4`, `zstd`, with a level: `'lz4:5'`). Earlier files with
   * another compression stay as they are; the names continue.
   * @default none
   */
  compression?: CompressionInput | CompressionSpec;
  /**
   * fsync segments, history files and the directory. Off (`--no-sync`) the flush position no
   * longer means durable: only for tests and throw-away archives.
   * @default true
   */
  fsync?: boolean;
  /** @default 0o600 */
  fileMode?: number;
  /** @default 0o700 */
  directoryMode?: number;
}

/** A pg_receivewal-style archive directory. */
export class DirectoryWalStore implements WalSegmentStore {
  readonly directory: string;
  readonly compression: CompressionSpec;
  readonly #fsync: boolean;
  readonly #fileMode: number;
  readonly #directoryMode: number;

  constructor(options: DirectoryWalStoreOptions) {
    this.directory = options.directory;
    this.compression = options.compression === undefined ? NO_COMPRESSION : resolveCompression(options.compression);
    this.#fsync = options.fsync ?? true;
    this.#fileMode = options.fileMode ?? 0o600;
    this.#directoryMode = options.directoryMode ?? 0o700;
  }

  get description(): string {
    return `directory "${this.directory}"`;
  }

  async prepare(): Promise<void> {
    try {
      const created = await mkdir(this.directory, { recursive: true, mode: this.#directoryMode });
      // mkdir's mode goes through the umask.
      if (created !== undefined) await chmod(this.directory, this.#directoryMode);
    } catch (err) {
      throw new IoError(`could not create directory "${this.directory}": ${(err as Error).message}`, {
        cause: err,
        path: this.directory,
        syscallCode: (err as NodeJS.ErrnoException).code,
      });
    }
  }

  async list(): Promise<ArchiveFile[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (err) {
      throw new IoError(`could not read directory "${this.directory}": ${(err as Error).message}`, {
        cause: err,
        path: this.directory,
        syscallCode: (err as NodeJS.ErrnoException).code,
      });
    }
    const files: ArchiveFile[] = [];
    for (const name of names) {
      try {
        const s = await stat(join(this.directory, name));
        if (s.isFile()) files.push({ name, bytes: s.size });
      } catch {
        // Gone between readdir and stat (a rename by another process): not ours to report.
      }
    }
    return files;
  }

  async uncompressedBytes(file: ArchiveFile): Promise<number> {
    const name = file.name.endsWith(PARTIAL_SUFFIX) ? file.name.slice(0, -PARTIAL_SUFFIX.length) : file.name;
    let total = 0;
    for await (const chunk of decompressArchive(createReadStream(join(this.directory, file.name)), name)) total += chunk.length;
    return total;
  }

  async readSegmentStart(file: ArchiveFile, bytes: number): Promise<Buffer> {
    const name = file.name.endsWith(PARTIAL_SUFFIX) ? file.name.slice(0, -PARTIAL_SUFFIX.length) : file.name;
    const parts: Buffer[] = [];
    let have = 0;
    const plain = algorithmFromFileName(name) === 'none';
    const source = createReadStream(join(this.directory, file.name), plain ? { end: bytes - 1 } : {});
    for await (const chunk of decompressArchive(source, name)) {
      parts.push(Buffer.from(chunk));
      have += chunk.length;
      if (have >= bytes) break;
    }
    return Buffer.concat(parts).subarray(0, bytes);
  }

  openSink(): WalSink {
    const common = { directory: this.directory, fsync: this.#fsync, fileMode: this.#fileMode, directoryMode: this.#directoryMode };
    if (this.compression.algorithm !== 'none') return new CompressedSegmentSink({ ...common, compression: this.compression });
    // Segments are zero-filled only before a mid-segment flush: catching up writes each byte once.
    const sink = new DirectoryWalSink({ ...common, partialSuffix: PARTIAL_SUFFIX, onAbort: 'keep', zeroFill: 'before-flush' });
    const directory = this.directory;
    let open: string | undefined;
    // The plain sink, plus: a completed segment supersedes `.partial`s of it in other compressions.
    return {
      // Passed on: without it the streamer cannot hand the receive buffers back, and every read takes a
      // fresh one (a gigabyte of them over a gigabyte of WAL, left to the garbage collector).
      writesDataAtOnce: sink.writesDataAtOnce,
      openSegment: async (t) => {
        await sink.openSegment(t);
        open = t.name;
      },
      write: (d) => sink.write(d),
      flush: () => sink.flush(),
      closeSegment: async (mode: WalSegmentCloseMode) => {
        await sink.closeSegment(mode);
        const name = open;
        open = undefined;
        if (mode === 'complete' && name !== undefined) removeStalePartials(directory, name);
      },
      writeHistoryFile: (n, c) => sink.writeHistoryFile(n, c),
      finish: () => sink.finish(),
      abort: (r) => sink.abort(r),
    };
  }
}
