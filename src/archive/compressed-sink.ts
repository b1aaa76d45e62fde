/**
 * A {@link WalSink} writing each segment compressed (`NAME.gz.partial` → `NAME.gz`, likewise
 * `.lz4` and `.zst`), as pg_receivewal `--compress` does. A compressed file cannot be padded
 * nor resumed in place, so a segment is always written whole from its start, and a partly
 * written one is not durable until it is closed: {@link CompressedSegmentSink.flush} resolves
 * `false` and the flush position the server is told advances segment by segment.
 *
 * WAL is compressed by a {@link DirectCompressor} kept for the sink's life (its buffers and codec
 * serve every segment), in chunks of the compress module's default size counted from the segment's
 * start, each one an independent gzip member, lz4 frame or zstd frame (the tools and our
 * decompressors read the concatenation as one stream). It runs on this thread, one chunk at a time
 * (the zstd package's chunk on libuv's pool, awaited): no worker threads, whose default count is
 * sized for backups, for a stream that arrives at the server's WAL rate. One worker thread with two
 * chunks in flight was tried for catching up with a backlog: on two cores it did not shorten the wall
 * time and nearly doubled the CPU time (lz4).
 * @module
 */
import { fchmodSync, constants as fsConstants, openSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { DirectCompressor } from '../compress/direct.js';
import { DEFAULT_CHUNK_BYTES } from '../compress/parallel.js';
import type { CompressionSpec } from '../compress/spec.js';
import { IoError, PgBackupError, StateError } from '../errors.js';
import { closeQuietly, fsyncDescriptor, unlinkQuietly, writeAtSync } from '../sinks/descriptor.js';
import { fsyncDirectory } from '../sinks/fsync.js';
import { DirectoryWalSink } from '../wal/directory-sink.js';
import type { WalSegmentCloseMode, WalSegmentTarget, WalSink } from '../wal/sink.js';
import { archiveSegmentFileName, partialFileNames } from './names.js';

/** Options of {@link CompressedSegmentSink}. */
export interface CompressedSegmentSinkOptions {
  directory: string;
  /** The method and level (not `none`). */
  compression: CompressionSpec;
  /** fsync files and the directory. @default true */
  fsync?: boolean;
  /** @default 0o600 */
  fileMode?: number;
  /** @default 0o700 */
  directoryMode?: number;
}

interface OpenSegment {
  name: string;
  path: string;
  fd: number;
  /** Uncompressed bytes taken. */
  position: number;
  segmentSize: number;
  /** Compressed bytes written to the file. */
  fileBytes: number;
  /** Appends compressed bytes to the file (the compressor's `emit`). */
  emit: (compressed: Uint8Array) => void;
  /** Set by abort(): a chunk that comes back from libuv's pool after that must not reach a closed (or reused) descriptor. */
  closed: boolean;
}

function ioError(what: string, path: string, cause: unknown): IoError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new IoError(`could not ${what} "${path}": ${reason}`, { cause, path, syscallCode: code });
}

/** Compressed WAL segments in a directory. */
export class CompressedSegmentSink implements WalSink {
  /** `data` is copied into the chunk being compressed. */
  readonly writesDataAtOnce = true;
  readonly directory: string;
  readonly #spec: CompressionSpec;
  readonly #fsync: boolean;
  readonly #fileMode: number;
  /** History files and directory syncs are the plain sink's business. */
  readonly #plain: DirectoryWalSink;
  #segment: OpenSegment | undefined;
  #aborted = false;
  /** The directory was created (by the plain sink). */
  #directoryReady = false;
  readonly #chunkBytes: number;
  /** Made at the first write or close, so that a sink never used loads no codec. */
  #compressor: DirectCompressor | undefined;

  constructor(options: CompressedSegmentSinkOptions) {
    if (options.compression.algorithm === 'none') throw new StateError('CompressedSegmentSink needs a compression method');
    this.directory = options.directory;
    this.#spec = options.compression;
    // Given, rather than the compressor's own default, which is larger for the zstd package.
    this.#chunkBytes = DEFAULT_CHUNK_BYTES[options.compression.algorithm];
    this.#fsync = options.fsync ?? true;
    this.#fileMode = options.fileMode ?? 0o600;
    this.#plain = new DirectoryWalSink({
      directory: options.directory,
      fsync: this.#fsync,
      fileMode: this.#fileMode,
      directoryMode: options.directoryMode ?? 0o700,
    });
  }

  async openSegment(target: WalSegmentTarget): Promise<void> {
    if (this.#aborted) throw new StateError('the WAL sink was aborted');
    if (this.#segment) throw new StateError(`segment ${this.#segment.name} is still open`);
    if (target.startOffset !== 0) throw new StateError('a compressed segment can only be written from its start');
    if (!this.#directoryReady) {
      await this.#plain.finish(); // creates the directory if needed
      this.#directoryReady = true;
    }
    const path = join(this.directory, archiveSegmentFileName(target.name, this.#spec.algorithm, true));
    let fd: number | undefined;
    try {
      // Truncated: a compressed .partial from an earlier run is rewritten from the segment start.
      // On this thread, as pg_receivewal does (sinks/descriptor.ts says why).
      fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, this.#fileMode);
      fchmodSync(fd, this.#fileMode);
    } catch (err) {
      if (fd !== undefined) closeQuietly(fd);
      throw ioError('create WAL file', path, err);
    }
    try {
      await this.#syncDirectory();
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
    // A segment's chunks count from its start, whatever became of the previous one.
    this.#compressor?.reset();
    const seg: OpenSegment = {
      name: target.name,
      path,
      fd,
      position: 0,
      segmentSize: target.segmentSize,
      fileBytes: 0,
      closed: false,
      emit: (compressed) => {
        if (seg.closed) throw new StateError('the WAL sink was aborted');
        try {
          writeAtSync(seg.fd, compressed, seg.fileBytes);
        } catch (err) {
          throw ioError('write WAL file', seg.path, err);
        }
        seg.fileBytes += compressed.length;
      },
    };
    this.#segment = seg;
  }

  async write(data: Buffer): Promise<void> {
    const seg = this.#segment;
    if (!seg) throw new StateError('no WAL segment is open');
    if (seg.position + data.length > seg.segmentSize) {
      throw new StateError(`write of ${data.length} bytes at offset ${seg.position} runs past the end of segment ${seg.name}`);
    }
    seg.position += data.length;
    await this.#direct().write(data, seg.emit);
  }

  #direct(): DirectCompressor {
    // No worker threads and one chunk in flight: every method compresses from this thread (module
    // documentation). The server streams WAL uncompressed, so a spec's location means nothing here.
    this.#compressor ??= new DirectCompressor(
      { ...this.#spec, location: 'client' },
      { threads: 0, maxInFlight: 1, chunkBytes: this.#chunkBytes },
    );
    return this.#compressor;
  }

  /** Nothing partial of a compressed segment is durable: see the module documentation. */
  flush(): Promise<false> {
    return Promise.resolve(false);
  }

  async closeSegment(mode: WalSegmentCloseMode): Promise<void> {
    const seg = this.#segment;
    if (!seg) throw new StateError('no WAL segment is open');
    if (mode === 'padded') throw new StateError('a compressed segment cannot be padded');
    if (mode === 'complete' && seg.position !== seg.segmentSize) {
      throw new StateError(`segment ${seg.name} is incomplete (${seg.position} of ${seg.segmentSize} bytes)`);
    }
    this.#segment = undefined;
    try {
      // The last partial chunk; an empty segment still gets one (empty) member or frame.
      await this.#direct().end(seg.emit);
      if (this.#fsync) await fsyncDescriptor(seg.fd);
    } catch (err) {
      throw err instanceof PgBackupError ? err : ioError('fsync', seg.path, err);
    } finally {
      seg.closed = true;
      closeQuietly(seg.fd);
    }
    if (mode === 'complete') {
      const finalPath = join(this.directory, archiveSegmentFileName(seg.name, this.#spec.algorithm, false));
      try {
        renameSync(seg.path, finalPath);
      } catch (err) {
        throw ioError('rename WAL file', seg.path, err);
      }
      removeStalePartials(this.directory, seg.name);
    }
    await this.#syncDirectory();
  }

  writeHistoryFile(name: string, content: Buffer): Promise<void> {
    return this.#plain.writeHistoryFile(name, content);
  }

  async finish(): Promise<void> {
    if (this.#segment) throw new StateError(`segment ${this.#segment.name} is still open`);
    await this.#plain.finish();
  }

  /** Stops writing; the `.partial` stays (a later run rewrites it from its start). */
  async abort(reason?: unknown): Promise<void> {
    if (this.#aborted) return;
    this.#aborted = true;
    const seg = this.#segment;
    this.#segment = undefined;
    if (seg) {
      seg.closed = true;
      closeQuietly(seg.fd);
    }
    await this.#plain.abort(reason);
  }

  async #syncDirectory(): Promise<void> {
    if (!this.#fsync) return;
    try {
      await fsyncDirectory(this.directory);
    } catch (err) {
      throw ioError('fsync', this.directory, err);
    }
  }
}

/**
 * Once a segment is complete, `.partial` files of it left by earlier runs with another
 * compression are superseded: remove them so that the archive holds one copy of each segment.
 */
export function removeStalePartials(directory: string, segment: string): void {
  // Mostly absent; one that cannot be removed only stays superseded.
  for (const name of partialFileNames(segment)) unlinkQuietly(join(directory, name));
}
