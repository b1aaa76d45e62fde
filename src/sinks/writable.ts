/**
 * The generic sink: one tar archive into any Node Writable (a socket, an upload stream, `process.stdout`
 * for `-D -`), with backpressure. Like pg_basebackup writing to standard output, it takes a single
 * archive (no tablespaces, no separate `pg_wal.tar`) and can inject the manifest into it.
 * @module
 */
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { checkCompressionAvailable } from '../compress/backends.js';
import { ParallelCompressor } from '../compress/parallel.js';
import { resolveCompression, type CompressionInput, type CompressionSpec } from '../compress/spec.js';
import { AbortError, ConfigError, IoError, StateError, TargetError } from '../errors.js';
import { TarStructureChecker } from '../tar/check.js';
import { BackpressureWriter, entryHeader, padding, terminator } from '../tar/writer.js';
import { hasInjection, rewriteArchive } from './inject.js';
import { releaseOf } from './release.js';
import type { ArchiveInfo, BackupSink, Injection, SinkCallOptions } from './types.js';

/**
 * Whether `w` keeps none of the chunks written to it. A stream that says how many bytes of them it still
 * holds (a numeric `heldBytes`, for one that gathers chunks into larger writes) keeps none at 0; else a
 * stream writing to a file descriptor (a numeric `fd`: `process.stdout`, a file stream) with nothing
 * queued has handed each one to the kernel. A PassThrough, a compressor or any other stream may keep them.
 */
function keepsNoChunk(w: Writable): boolean {
  if (w.writableLength !== 0) return false;
  const held = (w as { heldBytes?: unknown }).heldBytes;
  if (held !== undefined) return held === 0;
  return typeof (w as { fd?: unknown }).fd === 'number';
}

function asBuffer(piece: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
}

/** Options for {@link WritableSink}. */
export interface WritableSinkOptions {
  /** Files to add for `-R` (the archive is parsed and rewritten on the fly). */
  injection?: Injection;
  /**
   * A manifest will follow the archive and goes into it as `backup_manifest` (what pg_basebackup does for
   * `-D -`): the end-of-archive marker is held back until {@link WritableSink.writeManifest}. The manifest
   * is buffered whole, since its size goes in the tar header before its bytes.
   * @default false
   */
  injectManifest?: boolean;
  /**
   * End the Writable in {@link WritableSink.finish}; when false, `finish` makes a zero-length write
   * and waits for its callback instead (a Writable that gathers writes flushes them then). Leave false
   * for `process.stdout`. The default
   * is `true`, as for `BackupArchive.pipeTo`: a sink is usually given a stream made for the one
   * archive. runBackup's `StreamOutput.end` defaults to `false` instead, because its stream is
   * typically `process.stdout`. The sink never destroys the Writable: {@link WritableSink.cleanup}
   * only stops writing to it.
   * @default true
   */
  end?: boolean;
  /** File mode of the injected `backup_manifest` entry. @default 0o600 */
  manifestMode?: number;
  /**
   * Client-side compression of everything written (`pgbb backup -D - -Ft -z`): the Writable receives a
   * `.tar.gz` / `.tar.lz4` / `.tar.zst` stream, compressed in parallel chunks (see `ParallelCompressor`), the manifest and
   * `-R` files injected before compression. The spec is checked, and its library loaded, when the sink is made.
   * @default no compression
   */
  compression?: CompressionInput | CompressionSpec;
}

/**
 * Writes one tar archive (normally `base.tar`) to a Writable.
 *
 * @example
 * ```ts
 * const sink = new WritableSink(uploadStream, { injectManifest: true });
 * await sink.writeArchive({ name: 'base.tar', tablespacePath: '', terminated: true }, bytes);
 * await sink.writeManifest(manifestBytes);
 * await sink.finish();
 * ```
 */
export class WritableSink implements BackupSink {
  private readonly out: BackpressureWriter;
  private archives = 0;
  private terminatorPending = false;
  private finished = false;
  private readonly compressor: ParallelCompressor | undefined;

  /** @throws ConfigError / CompressionError for an invalid compression spec or a missing library. */
  constructor(
    private readonly writable: Writable,
    private readonly options: WritableSinkOptions = {},
  ) {
    const spec = resolveCompression(options.compression);
    if (spec.algorithm === 'none') {
      this.out = new BackpressureWriter(writable);
      return;
    }
    if (spec.location === 'server') {
      throw new ConfigError(
        "WritableSink compresses on the client: server-side compression is asked of the server (the backup's compression option)",
      );
    }
    checkCompressionAvailable(spec, 'compress');
    const compressor = new ParallelCompressor(spec);
    compressor.pipe(writable, { end: options.end ?? true });
    // A failing or vanished destination must fail the writes, not leave the compressor waiting for drain.
    const fail = (err?: Error): void => {
      if (!compressor.destroyed) compressor.destroy(err ?? new IoError('the output stream closed before all data was written'));
    };
    writable.on('error', fail);
    writable.once('close', () => {
      if (!compressor.readableEnded) fail(writable.errored ?? undefined);
    });
    this.compressor = compressor;
    this.out = new BackpressureWriter(compressor);
  }

  /** Bytes written so far (before compression). */
  get bytesWritten(): number {
    return this.out.bytesWritten;
  }

  async writeArchive(info: ArchiveInfo, bytes: AsyncIterable<Buffer | Uint8Array>, options: SinkCallOptions = {}): Promise<void> {
    if (this.finished) throw new StateError('the sink is already finished: no more archives can be written');
    if (this.archives > 0) {
      throw new TargetError(
        `a single output stream holds one archive; "${info.name}" would be the second: back up without extra tablespaces or WAL streaming, or write to a directory`,
      );
    }
    this.archives++;
    if (this.compressor && !info.name.endsWith('.tar')) {
      throw new TargetError(`"${info.name}" is already compressed (by the server): drop the sink's client-side compression`);
    }
    const holdTerminator = this.options.injectManifest ?? false;
    const rewrite = hasInjection(this.options.injection);
    if ((holdTerminator || rewrite) && !info.name.endsWith('.tar')) {
      throw new TargetError(
        `cannot inject files into the compressed archive "${info.name}": compress on the client after injection, or write to a directory`,
      );
    }
    if (rewrite) {
      // -R changes an entry: the archive is parsed and rewritten entry by entry.
      for await (const chunk of rewriteArchive(bytes, this.options.injection ?? {}, { terminate: !holdTerminator })) {
        if (options.signal?.aborted) throw new AbortError(undefined, { cause: options.signal.reason });
        if (chunk.length > 0) await this.out.write(chunk);
      }
    } else if (info.name.endsWith('.tar')) {
      await this.#passThrough(bytes, holdTerminator, options.signal);
      // PostgreSQL 13/14 send no end-of-archive marker; a held-back one is written after the manifest.
      if (!holdTerminator && !info.terminated) await this.out.write(terminator());
    } else {
      for await (const piece of bytes) {
        if (options.signal?.aborted) throw new AbortError(undefined, { cause: options.signal.reason });
        if (piece.length > 0) await this.out.write(asBuffer(piece));
      }
    }
    this.terminatorPending = holdTerminator;
  }

  /**
   * Writes an uncompressed archive as it comes, checked header by header (a corrupt one fails the
   * backup). With `holdMarker`, its end-of-archive marker (and any zero bytes after it) is left out,
   * so that the manifest can follow: the checker says where the marker starts, and only a header
   * block still incomplete at the end of a chunk (which may be the marker) is held, copied, until the
   * next chunk settles it.
   */
  async #passThrough(bytes: AsyncIterable<Buffer | Uint8Array>, holdMarker: boolean, signal: AbortSignal | undefined): Promise<void> {
    const check = new TarStructureChecker();
    let held: Buffer | undefined; // bytes [written, written + held.length) not yet written
    let written = 0;
    // Each chunk is written (or what is held, copied) before the next is asked for: once the
    // destination keeps none, the receive buffers may be refilled.
    const release = releaseOf(bytes);
    const writable = this.out.writable;
    for await (const piece of bytes) {
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      if (piece.length === 0) continue;
      const chunk = asBuffer(piece);
      check.push(chunk);
      if (!holdMarker) {
        await this.out.write(chunk);
        if (release !== undefined && keepsNoChunk(writable)) release();
        continue;
      }
      let n = check.contentEnd - written; // bytes of held + chunk that are archive content
      written += n;
      if (held !== undefined) {
        const k = Math.min(n, held.length);
        if (k > 0) await this.out.write(held.subarray(0, k));
        n -= k;
        held = k < held.length ? held.subarray(k) : undefined;
      }
      if (n > 0) await this.out.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      // From the marker on only zero bytes may follow (the checker makes sure): nothing to hold.
      if (check.markerOffset === undefined && n < chunk.length) {
        const rest = chunk.subarray(n);
        held = held === undefined ? Buffer.from(rest) : Buffer.concat([held, rest]);
      }
      if (release !== undefined && keepsNoChunk(writable)) release();
    }
    // Throws when the archive stops inside a header or body, so a held partial block is never lost silently.
    check.end();
  }

  async writeManifest(bytes: AsyncIterable<Buffer | Uint8Array> | Buffer, options: SinkCallOptions = {}): Promise<void> {
    if (!this.terminatorPending) {
      throw new StateError('the manifest goes inside the archive: create the sink with injectManifest and write the archive first');
    }
    let manifest: Buffer;
    if (Buffer.isBuffer(bytes)) {
      manifest = bytes;
    } else {
      const parts: Buffer[] = [];
      for await (const p of bytes) {
        if (options.signal?.aborted) throw new AbortError(undefined, { cause: options.signal.reason });
        parts.push(Buffer.isBuffer(p) ? p : Buffer.from(p));
      }
      manifest = Buffer.concat(parts);
    }
    await this.out.write(
      entryHeader({
        name: 'backup_manifest',
        size: manifest.length,
        mode: this.options.manifestMode ?? 0o600,
        mtime: Math.floor(Date.now() / 1000),
      }),
    );
    if (manifest.length > 0) await this.out.write(manifest);
    const pad = padding(manifest.length);
    if (pad.length > 0) await this.out.write(pad);
    await this.out.write(terminator());
    this.terminatorPending = false;
  }

  /** Writes a held-back end-of-archive marker (no manifest came), then ends the Writable if asked to. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.terminatorPending) {
      await this.out.write(terminator());
      this.terminatorPending = false;
    }
    if (this.compressor) {
      // Every byte compressed and handed to the Writable; then, as without compression, its end or a
      // zero-length write that completes after every earlier one.
      await this.out.end();
      await finished(this.compressor);
      if (this.options.end ?? true) {
        if (!this.writable.writableFinished) await finished(this.writable, { readable: false });
      } else {
        await this.#barrier();
      }
      return;
    }
    if (this.options.end ?? true) {
      await this.out.end();
      return;
    }
    try {
      await this.#barrier();
    } finally {
      this.out.release();
    }
  }

  /**
   * A zero-length write, whose callback comes once the Writable has handled every byte before it: a
   * Writable that gathers writes (pgbb's standard output) writes them out for it, so that the backup is
   * reported done only once its bytes are.
   */
  #barrier(): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.writable.write(Buffer.alloc(0), (err) =>
        err
          ? reject(err instanceof IoError ? err : new IoError(`writing the backup output failed: ${err.message}`, { cause: err }))
          : resolve(),
      ),
    );
  }

  /** Nothing to remove: bytes already sent cannot be taken back. Stops listening to the Writable. */
  async cleanup(): Promise<void> {
    this.out.release();
    if (this.compressor && !this.compressor.destroyed) {
      this.compressor.unpipe(this.writable);
      this.compressor.destroy();
    }
  }
}
