/**
 * The tar-format sink (`pg_basebackup -Ft`): each archive's bytes go as they come to `<dir>/<name>`
 * (`base.tar`, `<oid>.tar`, `pg_wal.tar`, with any compression suffix), mode 0600; the manifest goes to
 * `backup_manifest`. Also `stdoutSink()` for `-D -`.
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError, ConfigError, StateError, TarError } from '../errors.js';
import { terminator } from '../tar/writer.js';
import { BatchedFileWriter, DEFAULT_BATCH_BYTES, SyncFileWritable, writeAllSync } from './file-writer.js';
import { releaseOf } from './release.js';
import { checkEmptyOrAbsent, writeManifestFile } from './fs-util.js';
import { fsyncFile } from './fsync.js';
import { hasInjection } from './inject.js';
import { storedArchive } from './stored-archive.js';
import { checkCompressionAvailable } from '../compress/backends.js';
import { algorithmOf } from '../compress/decompress.js';
import { DirectCompressor } from '../compress/direct.js';
import { compressedArchiveName, resolveCompression, type CompressionInput, type CompressionSpec } from '../compress/spec.js';
import { TarStructureChecker } from '../tar/check.js';
import { ioError, OutputTracker } from './tracker.js';
import type { ArchiveInfo, ArchiveStream, BackupSink, Injection, SinkCallOptions } from './types.js';
import { WritableSink, type WritableSinkOptions } from './writable.js';

/** Options for {@link TarFilesSink}. */
export interface TarFilesSinkOptions {
  /** The output directory. It must be empty or absent. */
  directory: string;
  /** Skip the final fsync (`--no-sync`). @default false */
  noSync?: boolean;
  /**
   * Files to add to `base.tar` for `-R` (the archive is parsed and rewritten on the fly; a
   * server-compressed `base.tar.*` is decompressed for it and compressed again with its method).
   */
  injection?: Injection;
  /**
   * Client-side compression (`-Z client-...`): each uncompressed archive is stored compressed, as
   * `base.tar.gz`, `pg_wal.tar.lz4`, `<oid>.tar.zst`, straight into the file ({@link DirectCompressor}:
   * gzip on worker threads, lz4 and zstd from this thread).
   * Archives the server already compressed are stored as they come. The spec is checked, and the library loaded, when the
   * sink is made.
   * @default no compression
   */
  compression?: CompressionInput | CompressionSpec;
  /** fsyncs in flight at once during {@link TarFilesSink.finish}. @default 8 */
  syncConcurrency?: number;
  /** Bytes gathered before one `writev`. @default 65536 */
  writeBatchBytes?: number;
}

/** File mode of the archives: pg_basebackup creates them 0600 whatever the cluster's group access. */
const ARCHIVE_MODE = 0o600;

/**
 * Writes a tar-format backup into a directory.
 *
 * @example
 * ```ts
 * const sink = new TarFilesSink({ directory: '/backups/tar' });
 * await sink.writeArchive({ name: 'base.tar', tablespacePath: '', terminated: serverMajor >= 15 }, bytes);
 * await sink.finish();
 * ```
 */
export class TarFilesSink implements BackupSink {
  private readonly tracker: OutputTracker;
  private targetReady: Promise<void> | undefined;
  private finished = false;

  private readonly compression: CompressionSpec | undefined;

  /** @throws ConfigError / CompressionError for an invalid compression spec or a missing library. */
  constructor(private readonly options: TarFilesSinkOptions) {
    this.tracker = new OutputTracker({ syncEarly: !options.noSync });
    const spec = resolveCompression(options.compression);
    if (spec.algorithm !== 'none') {
      if (spec.location === 'server') {
        throw new ConfigError(
          "TarFilesSink compresses on the client: server-side compression is asked of the server (the backup's compression option)",
        );
      }
      checkCompressionAvailable(spec, 'compress');
      this.compression = spec;
    }
  }

  /** Paths this sink created whose parent existed before: what {@link TarFilesSink.cleanup} removes. */
  get created(): readonly string[] {
    return this.tracker.created;
  }

  /** Checks, creating nothing, that the output directory is empty or absent. */
  async verifyTarget(): Promise<void> {
    await checkEmptyOrAbsent(this.options.directory);
  }

  async writeArchive(info: ArchiveInfo, bytes: AsyncIterable<Buffer | Uint8Array>, options: SinkCallOptions = {}): Promise<void> {
    if (this.finished) throw new StateError('the sink is already finished: no more archives can be written');
    checkArchiveName(info.name);
    const inject = info.name.startsWith('base.tar') && hasInjection(this.options.injection);
    if (!inject && this.compression !== undefined && algorithmOf(info.name) === 'none') {
      await this.writeCompressed(info, bytes, this.compression, options);
      return;
    }
    // -R rewrites the uncompressed tar; client compression comes after; server-compressed bytes are kept.
    const stored = storedArchive(info, bytes, {
      ...(inject ? { injection: this.options.injection } : {}),
      compression: this.compression,
    });
    const check = stored.inline?.check;
    // Passed through as received (no compression, no rewrite): each batch written hands its receive buffers back.
    const release = stored.bytes === bytes ? releaseOf(bytes) : undefined;
    await this.writeArchiveFile(stored.name, stored.bytes, options.signal, (handle, path) => {
      const writer = new BatchedFileWriter(handle, path, this.options.writeBatchBytes ?? DEFAULT_BATCH_BYTES);
      return {
        chunk: (chunk) => {
          check?.push(chunk);
          writer.write(chunk);
          if (release !== undefined && writer.heldBytes === 0) release();
          return undefined;
        },
        end: async () => {
          check?.end();
          // Servers before 15 send no end-of-archive marker; pg_basebackup adds it, and so do we.
          // A rewritten or compressed archive was given one already.
          if (stored.inline?.terminate) writer.write(terminator());
          writer.flush();
        },
      };
    });
  }

  /**
   * An uncompressed archive compressed on the client: each chunk is checked, copied into the compressor
   * and handed back to the receive buffers; each compressed chunk is written with one synchronous call as
   * it comes out, in order. No stream between the socket and the file.
   */
  private async writeCompressed(
    info: ArchiveInfo,
    bytes: AsyncIterable<Buffer | Uint8Array>,
    spec: CompressionSpec,
    options: SinkCallOptions,
  ): Promise<void> {
    const compressor = new DirectCompressor(spec);
    const check = new TarStructureChecker();
    const release = releaseOf(bytes);
    await this.writeArchiveFile(compressedArchiveName(info.name, spec.algorithm), bytes, options.signal, (handle, path) => {
      const emit = (compressed: Uint8Array): void => writeAllSync(handle.fd, compressed, path);
      return {
        chunk: (chunk) => {
          check.push(chunk);
          // Once the compressor has taken the chunk (copied it) its receive buffer can be refilled.
          const wait = compressor.write(chunk, emit);
          if (wait !== undefined) return wait.then(release);
          release?.();
          return undefined;
        },
        end: async () => {
          check.end();
          // Servers before 15 send no end-of-archive marker; pg_basebackup adds it, and so do we.
          if (!info.terminated) await compressor.write(terminator(), emit);
          await compressor.end(emit);
        },
      };
    });
  }

  /**
   * Stores `source` as `<dir>/<fileName>` (mode 0600, tracked for cleanup and the final fsync): the
   * file is created only once the first byte has arrived; `start` gives what takes each chunk and what
   * ends the file.
   */
  private async writeArchiveFile(
    fileName: string,
    source: AsyncIterable<Buffer | Uint8Array>,
    signal: AbortSignal | undefined,
    start: (handle: FileHandle, path: string) => { chunk(chunk: Buffer): Promise<void> | undefined; end(): Promise<void> },
  ): Promise<void> {
    const iterator = source[Symbol.asyncIterator]();
    let first = await iterator.next();
    while (!first.done && first.value.length === 0) first = await iterator.next();
    await this.ensureTarget();
    const path = join(this.options.directory, fileName);
    let handle: FileHandle;
    try {
      handle = await open(path, 'wx', ARCHIVE_MODE);
    } catch (err) {
      await iterator.return?.();
      throw ioError(`could not create file "${path}"`, path, err);
    }
    this.tracker.file(path);
    try {
      const writer = start(handle, path);
      for (let r = first; !r.done; r = await iterator.next()) {
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
        const v = r.value;
        const wait = writer.chunk(Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        if (wait !== undefined) await wait;
      }
      await writer.end();
    } catch (err) {
      await iterator.return?.().catch(() => undefined);
      throw err;
    } finally {
      await handle.close();
    }
    this.tracker.complete(path);
  }

  /**
   * Opens `<dir>/<name>` (mode 0600, created, tracked for cleanup and the final fsync) as a Writable, for
   * producers that push rather than being pulled, such as the WAL writer's `pg_wal.tar`. The stream writes
   * each chunk before `write()` returns (a `SyncFileWritable`). `sync()` makes what the stream has
   * accepted durable (for flush positions reported to the server).
   *
   * @example
   * ```ts
   * const { output, sync } = await sink.openArchiveStream('pg_wal.tar');
   * const wal = new TarWalSink({ output, sync, markDone: true });
   * ```
   */
  async openArchiveStream(name: string): Promise<ArchiveStream & { sync: () => Promise<void> }> {
    if (this.finished) throw new StateError('the sink is already finished: no more archives can be written');
    checkArchiveName(name);
    await this.ensureTarget();
    const path = join(this.options.directory, name);
    let handle: FileHandle;
    try {
      handle = await open(path, 'wx', ARCHIVE_MODE);
    } catch (err) {
      throw ioError(`could not create file "${path}"`, path, err);
    }
    this.tracker.file(path);
    const output = new SyncFileWritable(handle, path);
    const sync = async (): Promise<void> => {
      try {
        // The stream may have closed its descriptor already: fsync by path covers it anyway.
        await fsyncFile(path);
      } catch (err) {
        throw ioError(`could not fsync "${path}"`, path, err);
      }
    };
    return { output, sync, writesAtOnce: true };
  }

  /** Writes `backup_manifest.tmp`, fsyncs it (unless `noSync`) and renames it to `backup_manifest`. */
  async writeManifest(bytes: AsyncIterable<Buffer | Uint8Array> | Buffer, options: SinkCallOptions = {}): Promise<void> {
    await this.ensureTarget();
    await writeManifestFile(this.options.directory, bytes, ARCHIVE_MODE, this.tracker, this.options, options.signal);
  }

  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (!this.options.noSync) await this.tracker.syncAll(this.options.syncConcurrency ?? 8);
  }

  async cleanup(): Promise<void> {
    await this.tracker.cleanup();
  }

  private ensureTarget(): Promise<void> {
    this.targetReady ??= (async () => {
      const exists = await checkEmptyOrAbsent(this.options.directory);
      if (!exists) await this.tracker.mkdirp(this.options.directory, 0o700);
    })();
    return this.targetReady;
  }
}

/**
 * Archive names come from the server (15+): like pg_basebackup, refuse names that are empty, start with
 * a dot, or contain a slash or backslash, so a name can never point outside the output directory.
 */
function checkArchiveName(name: string): void {
  if (name === '' || name.startsWith('.') || name.includes('/') || name.includes('\\') || name.includes('\0')) {
    throw new TarError(`refusing to write an archive named "${name}": archive names must be plain file names`);
  }
}

/**
 * The sink for `-D -`: the single `base.tar` to standard output, with the manifest injected into it when
 * `injectManifest` is set (as pg_basebackup does). Standard output is not ended.
 *
 * @example
 * ```ts
 * const sink = stdoutSink({ injectManifest: true });
 * ```
 */
export function stdoutSink(options: Omit<WritableSinkOptions, 'end'> = {}): WritableSink {
  return new WritableSink(process.stdout, { ...options, end: false });
}
