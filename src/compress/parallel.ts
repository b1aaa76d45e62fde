/**
 * Client-side compression of an archive stream: the input is cut into chunks, each chunk is compressed
 * independently (one gzip member, lz4 frame or zstd frame per chunk), and the results are emitted in
 * input order. The concatenation is one valid `.gz`, `.lz4` or `.zst` file for the command-line tools.
 * Chunks compress on worker threads (gzip by default, the others when asked), on this thread (lz4,
 * built-in zstd) or on libuv's thread pool (the zstd package, gzip with `threads: 0`); pg_basebackup compresses on one thread, and gzip's parallel chunks are
 * how we beat its wall time.
 *
 * Memory stays bounded: at most `maxInFlight` chunks are being compressed or waiting to be read, and a
 * write is not acknowledged while that many are, nor while the readable side is full, so a slow consumer
 * slows the producer (and, through the session, the socket).
 * @module
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import { createRequire } from 'node:module';
import { nodeZlib } from '../builtins.js';
import { CompressionError, PgBackupError } from '../errors.js';
import { chunkCodecConfig, hasBuiltinZstd } from './backends.js';
import { compressedBound, createChunkCodec, type ChunkCodec, type ChunkCodecConfig } from './codec.js';
import { effectiveLevel, resolveCompression, type CompressionInput, type CompressionSpec } from './spec.js';
import { defaultThreadCount, sharedCompressionPool, type ChunkResult, type CompressionPool } from './worker.js';

const require = createRequire(import.meta.url);

/**
 * Default chunk size per method. gzip's 32 KiB window and lz4's 64 KiB lose next to nothing at 256 KiB,
 * and zstd at its default level loses 0.2% of ratio on a base backup against 1 MiB chunks. Smaller
 * chunks keep each compressed result small enough to die in the young generation: with 1 MiB chunks the
 * results (and the socket buffers queued behind a chunk compressed on this thread) were promoted and only
 * full collections freed them, which cost both peak memory and CPU time.
 */
export const DEFAULT_CHUNK_BYTES: Readonly<Record<'gzip' | 'lz4' | 'zstd', number>> = Object.freeze({
  gzip: 256 * 1024,
  lz4: 256 * 1024,
  zstd: 256 * 1024,
});

/**
 * Chunks in flight by default when compressing without worker threads. gzip keeps libuv's thread pool
 * busy on every CPU, and the zstd package compresses one chunk there while the next one fills. lz4 and
 * built-in zstd compress synchronously on this thread, where a second chunk would only wait longer and
 * be promoted to the old generation (freed only by a full collection). Neither moves off this thread:
 * zlib's zstd stream on the pool costs 40–85% more CPU per byte than the one-shot handle write, and a
 * worker thread's transfers and second heap cost more CPU than the overlap gives back on two cores shared
 * with the server (docs/performance.md, "Overlapping client compression with receiving").
 */
function defaultInFlight(config: ChunkCodecConfig): number {
  if (config.algorithm === 'gzip') return 2 * defaultThreadCount();
  return config.algorithm === 'zstd' && !config.zstdBuiltin ? 2 : 1;
}

/**
 * The worker threads a client-side spec compresses on: the option when given, else zstd's `workers=N`,
 * else one per CPU for gzip and none for the others (see {@link CompressorOptions.threads}).
 * @throws CompressionError for a count that is not an integer ≥ 0.
 * @internal
 */
export function compressionThreads(spec: CompressionSpec, threads: number | undefined): number {
  const algorithm = spec.algorithm;
  const n = threads ?? (algorithm === 'zstd' ? spec.workers : undefined) ?? (algorithm === 'gzip' ? defaultThreadCount() : 0);
  if (!Number.isInteger(n) || n < 0) throw new CompressionError(`threads must be an integer ≥ 0, got ${n}`);
  return n;
}

/**
 * `chunkBytes` when it is a valid chunk size (64 KiB–64 MiB).
 * @throws CompressionError otherwise.
 * @internal
 */
export function checkChunkBytes(chunkBytes: number): number {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 64 * 1024 || chunkBytes > 64 << 20) {
    throw new CompressionError(`chunkBytes must be between 64 KiB and 64 MiB, got ${chunkBytes}`);
  }
  return chunkBytes;
}

/**
 * What a chunk codec threw, as the compressors report it: a PgBackupError as it is, anything else as
 * a CompressionError naming the method.
 * @internal
 */
export function chunkCompressionFailure(algorithm: string, err: unknown): PgBackupError {
  if (err instanceof PgBackupError) return err;
  return new CompressionError(`${algorithm} compression failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    algorithm,
  });
}

/** Options of {@link ParallelCompressor} and {@link createCompressor}. */
export interface CompressorOptions {
  /**
   * Worker threads to compress on; 0 uses none: lz4 and Node's built-in zstd compress on the calling
   * thread, gzip and the zstd package on libuv's thread pool. A worker is a V8 isolate of its own
   * (several megabytes before any work), and each chunk's trip there and back costs a transfer and
   * garbage collections in both isolates, which is why lz4 and zstd use none by default. gzip uses one
   * per CPU: deflate's work dwarfs those costs, and the workers' synchronous compression into reused
   * buffers took 15% less CPU than zlib's asynchronous streams on libuv's pool, for about 16 MB more
   * peak memory (docs/performance.md). For zstd, `workers=N` in the spec sets this when the option is
   * not given.
   * @default gzip: one per CPU (`defaultThreadCount`); lz4 and zstd: 0
   */
  threads?: number;
  /** Bytes of input per independently compressed chunk (64 KiB–64 MiB). @default 256 KiB ({@link DEFAULT_CHUNK_BYTES}) */
  chunkBytes?: number;
  /** Chunks being compressed or waiting to be read, at most. @default two per worker thread; without workers, gzip two per CPU (`defaultThreadCount`), the zstd package 2, others 1 */
  maxInFlight?: number;
  /**
   * The pool to run on (tests and benchmarks give their own).
   * @default the process-wide pool
   * @internal
   */
  pool?: CompressionPool;
}

interface Pending {
  seq: number;
  done: boolean;
  result?: ChunkResult;
  error?: Error;
}

/**
 * A Duplex: write uncompressed bytes, read compressed ones (gzip members, lz4 frames or zstd frames, one
 * per chunk, in order).
 *
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises';
 * await pipeline(createReadStream('base.tar'), new ParallelCompressor('gzip:1'), createWriteStream('base.tar.gz'));
 * ```
 */
export class ParallelCompressor extends Duplex {
  /** The validated spec this compressor follows. */
  readonly spec: CompressionSpec;
  /** Threads used (0: the calling thread). */
  readonly threads: number;
  /** Input bytes per chunk. */
  readonly chunkBytes: number;
  /** Most chunks in flight. */
  readonly maxInFlight: number;
  readonly #config: ChunkCodecConfig;
  readonly #key: string;
  readonly #pool: CompressionPool | undefined;
  readonly #inline: ChunkCodec | undefined;
  #current: Uint8Array | undefined;
  /** Input and output buffers back from the workers, for the next chunks: a steady stream allocates none. */
  readonly #spareInputs: ArrayBuffer[] = [];
  readonly #spareOutputs: ArrayBuffer[] = [];
  readonly #outputBytes: number;
  #filled = 0;
  readonly #pending: Pending[] = [];
  #seq = 0;
  #pushedSeq = 0;
  #readableFull = false;
  #writeCallback: ((err?: Error | null) => void) | undefined;
  /** The write being taken in, and how far. */
  #parked: { chunk: Buffer; at: number } | undefined;
  #finalCallback: ((err?: Error | null) => void) | undefined;
  /** flush() calls: done once the first `bytes` written are taken into chunks (`seq` set, -1 until then) and chunk `seq` is pushed. */
  #flushWaiters: { bytes: number; seq: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  /** Bytes copied into chunks so far. */
  #taken = 0;
  #bytesIn = 0;
  #bytesOut = 0;

  /**
   * @throws ConfigError for an invalid spec; CompressionError when the method is `none` or its library is
   * missing (so nothing has been written yet).
   */
  constructor(spec: CompressionInput | CompressionSpec, options: CompressorOptions = {}, streamOptions: DuplexOptions = {}) {
    super({ ...streamOptions, decodeStrings: true, objectMode: false });
    this.spec = resolveCompression(spec);
    if (this.spec.algorithm === 'none') throw new CompressionError('cannot compress with method "none"');
    refuseServerSpec(this.spec);
    const algorithm = this.spec.algorithm;
    this.#config = chunkCodecConfig(this.spec);
    this.#key = JSON.stringify(this.#config);
    const threads = compressionThreads(this.spec, options.threads);
    this.threads = threads;
    const chunkBytes = checkChunkBytes(options.chunkBytes ?? DEFAULT_CHUNK_BYTES[algorithm]);
    this.chunkBytes = chunkBytes;
    this.#outputBytes = compressedBound(chunkBytes);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? (threads === 0 ? defaultInFlight(this.#config) : threads * 2));
    if (threads === 0) {
      this.#inline = createChunkCodec(require, this.#config, true);
    } else {
      this.#pool = options.pool ?? sharedCompressionPool(threads);
      this.#pool.ensureSize(threads);
    }
  }

  /** Uncompressed bytes written so far. */
  get bytesIn(): number {
    return this.#bytesIn;
  }

  /** Compressed bytes emitted so far. */
  get bytesOut(): number {
    return this.#bytesOut;
  }

  /**
   * Compresses what has been written so far (ending the current chunk early) and resolves once all of
   * it has been pushed to the readable side. For writers that must make data durable mid-stream, such
   * as streamed WAL.
   */
  flush(): Promise<void> {
    if (this.destroyed) return Promise.reject(new CompressionError('the compressor was destroyed'));
    // Everything written so far: taken into chunks, or still in the write being taken in or queued
    // behind it (writableLength counts both, the one being taken in whole).
    const bytes = this.#taken + this.writableLength - (this.#parked?.at ?? 0);
    return new Promise((resolve, reject) => {
      this.#flushWaiters.push({ bytes, seq: -1, resolve, reject });
      this.#fill();
      this.#drain();
    });
  }

  /** Ends the current chunk early for flush() calls whose bytes are all taken, and notes which chunk ends them. */
  #markFlushes(): void {
    for (const w of this.#flushWaiters) {
      if (w.seq !== -1 || w.bytes > this.#taken) continue;
      if (this.#filled > 0) this.#submit();
      w.seq = this.#seq;
    }
    this.#resolveFlushes();
  }

  #resolveFlushes(): void {
    const done = (w: { seq: number }) => w.seq !== -1 && w.seq <= this.#pushedSeq;
    if (!this.#flushWaiters.some(done)) return;
    const ready = this.#flushWaiters.filter(done);
    this.#flushWaiters = this.#flushWaiters.filter((w) => !done(w));
    for (const w of ready) w.resolve();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#bytesIn += chunk.length;
    this.#parked = { chunk, at: 0 };
    this.#writeCallback = callback;
    this.#fill();
  }

  /**
   * Copies the parked write into chunks, submitting each full one while fewer than `maxInFlight` are out;
   * a large write waits part-way rather than submitting all its chunks at once. Acknowledges the write
   * once it is all taken and the pipeline has room.
   */
  #fill(): void {
    for (;;) {
      if (this.#flushWaiters.length > 0) this.#markFlushes();
      if (this.#filled === this.chunkBytes) {
        if (this.#pending.length >= this.maxInFlight) break;
        this.#submit();
      }
      const parked = this.#parked;
      if (parked === undefined) break;
      if (parked.at === parked.chunk.length) {
        this.#parked = undefined;
        break;
      }
      this.#current ??= new Uint8Array(this.#spareInputs.pop() ?? new ArrayBuffer(this.chunkBytes));
      const n = Math.min(parked.chunk.length - parked.at, this.chunkBytes - this.#filled);
      this.#current.set(parked.chunk.subarray(parked.at, parked.at + n), this.#filled);
      this.#filled += n;
      this.#taken += n;
      parked.at += n;
    }
    if (this.#writeCallback && this.#canAccept()) {
      const cb = this.#writeCallback;
      this.#writeCallback = undefined;
      cb();
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    // An empty input still makes one (empty) member or frame: a zero-byte file is not valid gzip.
    if (this.#filled > 0 || this.#seq === 0) this.#submit();
    this.#finalCallback = callback;
    this.#drain();
  }

  override _read(): void {
    this.#readableFull = false;
    this.#drain();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#pending.length = 0;
    this.#current = undefined;
    this.#spareInputs.length = 0;
    this.#spareOutputs.length = 0;
    const reason = err ?? new CompressionError('the compressor was destroyed');
    for (const w of this.#flushWaiters.splice(0)) w.reject(reason);
    this.#writeCallback = undefined;
    this.#parked = undefined;
    this.#finalCallback = undefined;
    callback(err);
  }

  #canAccept(): boolean {
    return this.#parked === undefined && this.#pending.length < this.maxInFlight && !this.#readableFull && this.#filled < this.chunkBytes;
  }

  #submit(): void {
    const input = (this.#current?.buffer as ArrayBuffer | undefined) ?? this.#spareInputs.pop() ?? new ArrayBuffer(0);
    const length = this.#filled;
    this.#current = undefined;
    this.#filled = 0;
    const entry: Pending = { seq: ++this.#seq, done: false };
    this.#pending.push(entry);
    const output = this.#spareOutputs.pop() ?? new ArrayBuffer(this.#outputBytes);
    const run = this.#inline
      ? this.#runInline(input, length, output)
      : this.#pool!.compress(this.#key, this.#config, input, length, output);
    run
      .then(
        (result) => {
          entry.result = result;
        },
        (err: unknown) => {
          entry.error = chunkCompressionFailure(this.spec.algorithm, err);
        },
      )
      .finally(() => {
        entry.done = true;
        this.#drain();
      });
  }

  async #runInline(input: ArrayBuffer, length: number, output: ArrayBuffer): Promise<ChunkResult> {
    await Promise.resolve();
    const r = await this.#inline!(new Uint8Array(input, 0, length), new Uint8Array(output));
    return { bytes: typeof r === 'number' ? new Uint8Array(output, 0, r) : r, input, output };
  }

  #drain(): void {
    if (this.destroyed) return;
    while (!this.#readableFull) {
      const head = this.#pending[0];
      if (head === undefined || !head.done) break;
      this.#pending.shift();
      if (head.error) {
        this.destroy(head.error);
        return;
      }
      const { bytes, input, output } = head.result!;
      this.#bytesOut += bytes.length;
      this.#pushedSeq = head.seq;
      // A copy of exactly the compressed size goes downstream, and the worker's buffers are reused:
      // handing out the (mostly empty) output buffer would make memory depend on when the consumer's
      // garbage is collected.
      const buf = Buffer.allocUnsafe(bytes.length);
      buf.set(bytes);
      if (input.byteLength === this.chunkBytes && this.#spareInputs.length < this.maxInFlight) this.#spareInputs.push(input);
      if (output?.byteLength === this.#outputBytes && this.#spareOutputs.length < this.maxInFlight) this.#spareOutputs.push(output);
      if (!this.push(buf)) this.#readableFull = true;
    }
    this.#resolveFlushes();
    this.#fill();
    if (this.#finalCallback && this.#pending.length === 0) {
      const cb = this.#finalCallback;
      this.#finalCallback = undefined;
      this.push(null);
      cb();
    }
  }
}

/**
 * A compressing stream for a client-side spec. Without `threads`, a {@link ParallelCompressor} with its
 * defaults; with `threads: 0` given, a plain streaming compressor (zlib's gzip or built-in zstd: one member
 * or frame for the whole input; lz4: chunked frames on the calling thread), right for small inputs.
 * @throws ConfigError / CompressionError as {@link ParallelCompressor}.
 * @example
 * ```ts
 * const gz = createCompressor('gzip', { threads: 0 }); // plain zlib gzip stream
 * ```
 */
export function createCompressor(spec: CompressionInput | CompressionSpec, options: CompressorOptions = {}): Duplex {
  const resolved = resolveCompression(spec);
  refuseServerSpec(resolved);
  const threads = options.threads ?? (resolved.algorithm === 'zstd' ? resolved.workers : undefined);
  if (threads === 0 && resolved.algorithm === 'gzip') {
    return nodeZlib().createGzip({ level: effectiveLevel(resolved) });
  }
  if (threads === 0 && resolved.algorithm === 'zstd' && hasBuiltinZstd()) {
    const zlib = nodeZlib();
    const c = zlib.constants as unknown as Record<string, number>;
    const params: Record<number, number> = { [c.ZSTD_c_compressionLevel!]: resolved.level, [c.ZSTD_c_checksumFlag!]: 1 };
    if (resolved.longDistance) params[c.ZSTD_c_enableLongDistanceMatching!] = 1;
    const create = (zlib as unknown as { createZstdCompress: (o: object) => Duplex }).createZstdCompress;
    return create({ params });
  }
  return new ParallelCompressor(resolved, options);
}

/** A server-side spec compressed here too would compress twice: the caller mixed the two up. */
function refuseServerSpec(spec: CompressionSpec): void {
  if (spec.location === 'server') {
    throw new CompressionError(
      `"server-${spec.algorithm}" asks the server to compress: the archives arrive compressed, ` +
        'so do not compress them again here (use a client-side spec, or none)',
      { algorithm: spec.algorithm },
    );
  }
}
