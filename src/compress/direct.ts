/**
 * Client-side compression straight into the caller's writes, without streams: the tar-files sink's
 * path from the socket to the file. Bytes written are copied into input buffers kept for the
 * compressor's life; each full chunk is compressed into an output buffer, also kept, and handed to the
 * caller's `emit` in input order, which must use it before returning (write it to a file). So the caller
 * may reuse what it wrote as soon as `write()` is done (receive buffers are handed back at once), and
 * nothing is allocated per chunk on our side.
 *
 * Where the chunks compress, by default as {@link ParallelCompressor} does: gzip on one worker thread
 * per CPU (deflate needs every core to beat pg_basebackup), lz4 and Node's built-in zstd synchronously
 * on this thread, the zstd package on libuv's pool. With worker threads or the package, chunks are in
 * flight while the next one fills, and a write waits for the oldest once the window is full.
 *
 * The output is what {@link ParallelCompressor} writes with the same chunk size: one gzip member, lz4
 * frame or zstd frame per chunk, whose concatenation the command-line tools and our decoders read as one
 * stream. The parallel compressor's stream, queue and per-chunk copy for its readable side are what this
 * saves (docs/performance.md).
 * @module
 */
import { createRequire } from 'node:module';
import { CompressionError, PgBackupError } from '../errors.js';
import { chunkCodecConfig } from './backends.js';
import { compressedBound, createChunkCodec, type ChunkCodec, type ChunkCodecConfig } from './codec.js';
import { checkChunkBytes, chunkCompressionFailure, compressionThreads, DEFAULT_CHUNK_BYTES } from './parallel.js';
import { resolveCompression, type CompressionInput, type CompressionSpec } from './spec.js';
import { defaultThreadCount, sharedCompressionPool, type CompressionPool } from './worker.js';

const require = createRequire(import.meta.url);

/**
 * Chunk size for the zstd package: each call pays a trip through libuv's pool and a result buffer of
 * the package's own, which 1 MiB chunks pay a quarter as often. Here the chunk buffers are kept, so their
 * size costs no garbage; Node's built-in zstd, called in place, does better with the default 256 KiB.
 */
export const ZSTD_PACKAGE_CHUNK_BYTES = 1024 * 1024;

/** Options of {@link DirectCompressor}. */
export interface DirectCompressorOptions {
  /**
   * Worker threads to compress on; 0 compresses from this thread (lz4 and built-in zstd synchronously,
   * the zstd package on libuv's pool, gzip there too unless {@link DirectCompressorOptions.maxInFlight} is 1).
   * @default gzip: one per CPU (`defaultThreadCount`); zstd: the spec's `workers`, else 0; lz4: 0
   */
  threads?: number;
  /**
   * Bytes of input per independently compressed chunk (64 KiB–64 MiB).
   * @default 1 MiB for the zstd package ({@link ZSTD_PACKAGE_CHUNK_BYTES}), else 256 KiB ({@link DEFAULT_CHUNK_BYTES})
   */
  chunkBytes?: number;
  /**
   * Chunks being compressed at once when compression is asynchronous (worker threads, libuv's pool); a
   * synchronous codec has one. Without worker threads, 1 also keeps gzip on this thread: with a single
   * chunk in flight the pool's round trip would overlap nothing.
   * @default two per worker thread; without workers, gzip two per CPU, others 2
   */
  maxInFlight?: number;
  /**
   * The pool to run on.
   * @default the process-wide pool
   * @internal
   */
  pool?: CompressionPool;
}

/** One chunk's buffers, and its compression while it runs asynchronously. */
interface Slot {
  input: Uint8Array<ArrayBuffer>;
  output: Uint8Array<ArrayBuffer>;
  /** The compressed bytes, or the failure (never rejects, so an abandoned chunk raises nothing). */
  result?: Promise<Uint8Array | PgBackupError> | undefined;
}

/** Compresses a slot's first `length` bytes: a synchronous result, or a promise of one. */
type Compress = (slot: Slot, length: number) => Uint8Array | Promise<Uint8Array>;

/** Where chunks compress. */
interface Backend {
  compress: Compress;
  /** An input buffer in the codec's own memory, for the first slot (see `ChunkCodec.inputBuffer`). */
  inputBuffer?: ((bytes: number) => Uint8Array<ArrayBuffer> | null) | undefined;
}

/**
 * A chunked compressor that writes through a callback.
 *
 * @example
 * ```ts
 * const gzip = new DirectCompressor('gzip:1');
 * const emit = (out: Uint8Array) => writeSync(fd, out);
 * for await (const chunk of tarBytes) await gzip.write(chunk, emit);
 * await gzip.end(emit);
 * ```
 */
export class DirectCompressor {
  /** The validated spec. */
  readonly spec: CompressionSpec;
  /** Worker threads used (0: this thread and libuv's pool). */
  readonly threads: number;
  /** Input bytes per chunk. */
  readonly chunkBytes: number;
  /** Most chunks compressing at once (asynchronous compression). */
  readonly maxInFlight: number;
  readonly #compress: Compress;
  readonly #inputBuffer: Backend['inputBuffer'];
  #filling: Slot;
  readonly #inFlight: Slot[] = [];
  readonly #spare: Slot[] = [];
  #filled = 0;
  #chunks = 0;
  #ended = false;
  #bytesIn = 0;
  #bytesOut = 0;

  /** @throws ConfigError / CompressionError for an invalid spec, `none`, a server spec, or a missing library. */
  constructor(spec: CompressionInput | CompressionSpec, options: DirectCompressorOptions = {}) {
    this.spec = resolveCompression(spec);
    const algorithm = this.spec.algorithm;
    if (algorithm === 'none' || this.spec.location === 'server') {
      throw new CompressionError(`"${this.spec.location}-${algorithm}" is not a client-side compression method`, { algorithm });
    }
    const config = chunkCodecConfig(this.spec);
    const threads = compressionThreads(this.spec, options.threads);
    const packageZstd = algorithm === 'zstd' && !config.zstdBuiltin;
    const chunkBytes = checkChunkBytes(
      options.chunkBytes ?? (packageZstd && threads === 0 ? ZSTD_PACKAGE_CHUNK_BYTES : DEFAULT_CHUNK_BYTES[algorithm]),
    );
    const maxInFlight = options.maxInFlight ?? (threads > 0 ? 2 * threads : algorithm === 'gzip' ? 2 * defaultThreadCount() : 2);
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      throw new CompressionError(`maxInFlight must be an integer ≥ 1, got ${maxInFlight}`);
    this.threads = threads;
    this.chunkBytes = chunkBytes;
    this.maxInFlight = maxInFlight;
    const backend: Backend =
      threads > 0
        ? { compress: onWorkers(options.pool ?? sharedCompressionPool(threads), threads, config) }
        : onThisThread(config, maxInFlight > 1);
    this.#compress = backend.compress;
    this.#inputBuffer = backend.inputBuffer;
    this.#filling = this.#slot();
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
   * Takes `bytes` and emits, in order, each chunk whose compression is done, compressed. Returns
   * `undefined` when `bytes` were all taken (copied: the caller may reuse them at once), or a promise,
   * when a chunk must finish compressing first, after which they were: keep `bytes` until it settles.
   * `emit`'s argument is valid only until `emit` returns; what `emit` throws is thrown (or rejected) here.
   * @throws CompressionError when compression fails, or after end().
   */
  write(bytes: Uint8Array, emit: (compressed: Uint8Array) => void): Promise<void> | undefined {
    if (this.#ended) throw new CompressionError('write after end: the compressor has finished');
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, this.chunkBytes - this.#filled);
      this.#filling.input.set(n === bytes.length ? bytes : bytes.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      this.#bytesIn += n;
      if (this.#filled < this.chunkBytes) continue;
      const wait = this.#submit(emit);
      if (wait !== undefined) {
        const rest = bytes.subarray(at);
        return wait.then(() => (rest.length > 0 ? this.write(rest, emit) : undefined));
      }
    }
    return undefined;
  }

  /**
   * Compresses the last (partial) chunk and emits everything still in flight, in order; an empty input
   * still makes one empty member or frame (a zero-byte file is not valid gzip).
   */
  async end(emit: (compressed: Uint8Array) => void): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#filled > 0 || this.#chunks === 0) {
      const wait = this.#submit(emit);
      if (wait !== undefined) await wait;
    }
    while (this.#inFlight.length > 0) await this.#emitOldest(emit);
  }

  /**
   * Starts a new stream on the same buffers and codec: after end(), or to drop the current stream
   * part-way (the chunk being filled is forgotten, chunks in flight are never emitted). The byte counts
   * start again from zero. Call it when no write() or end() is pending.
   */
  reset(): void {
    this.#ended = false;
    this.#filled = 0;
    this.#chunks = 0;
    this.#bytesIn = 0;
    this.#bytesOut = 0;
    // A chunk still compressing owns its buffers (a worker may hold them): its slot is not reused.
    this.#inFlight.length = 0;
  }

  /** Compresses the filled chunk: emitted at once when synchronous, else put in flight (waiting for the oldest when full). */
  #submit(emit: (compressed: Uint8Array) => void): Promise<void> | undefined {
    const slot = this.#filling;
    const length = this.#filled;
    this.#filled = 0;
    this.#chunks++;
    let r: Uint8Array | Promise<Uint8Array>;
    try {
      r = this.#compress(slot, length);
    } catch (err) {
      throw this.#failure(err);
    }
    if (!(r instanceof Promise)) {
      // Synchronous codecs never have chunks in flight: order is kept.
      this.#emit(r, emit);
      return undefined;
    }
    slot.result = r.catch((err: unknown) => this.#failure(err));
    this.#inFlight.push(slot);
    this.#filling = this.#spare.pop() ?? this.#slot();
    return this.#inFlight.length >= this.maxInFlight ? this.#emitOldest(emit) : undefined;
  }

  async #emitOldest(emit: (compressed: Uint8Array) => void): Promise<void> {
    const slot = this.#inFlight[0]!;
    const result = await slot.result!;
    this.#inFlight.shift();
    slot.result = undefined;
    if (result instanceof PgBackupError) throw result;
    this.#emit(result, emit);
    this.#spare.push(slot);
  }

  #emit(out: Uint8Array, emit: (compressed: Uint8Array) => void): void {
    this.#bytesOut += out.length;
    emit(out);
  }

  #slot(): Slot {
    // lz4 on this thread: the one slot (the codec is synchronous) fills the WebAssembly compressor's
    // memory directly, which saves copying every chunk in.
    const input = this.#inputBuffer?.(this.chunkBytes) ?? new Uint8Array(this.chunkBytes);
    return { input, output: new Uint8Array(compressedBound(this.chunkBytes)) };
  }

  #failure(err: unknown): PgBackupError {
    return chunkCompressionFailure(this.spec.algorithm, err);
  }
}

/**
 * This thread's codec; gzip on libuv's pool when several chunks may be in flight, to keep every core
 * busy (`overlap`).
 */
function onThisThread(config: ChunkCodecConfig, overlap: boolean): Backend {
  const codec: ChunkCodec = createChunkCodec(require, config, config.algorithm === 'gzip' && overlap);
  const compress: Compress = (slot, length) => {
    const r = codec(slot.input.subarray(0, length), slot.output);
    if (r instanceof Promise) return r.then((v) => (typeof v === 'number' ? slot.output.subarray(0, v) : v));
    return typeof r === 'number' ? slot.output.subarray(0, r) : r;
  };
  return { compress, inputBuffer: codec.inputBuffer };
}

/** A worker's codec: both buffers travel there and back, and the slot takes them back for its next chunk. */
function onWorkers(pool: CompressionPool, threads: number, config: ChunkCodecConfig): Compress {
  pool.ensureSize(threads);
  const key = JSON.stringify(config);
  return async (slot, length) => {
    const r = await pool.compress(key, config, slot.input.buffer, length, slot.output.buffer);
    slot.input = new Uint8Array(r.input);
    slot.output = new Uint8Array(r.output ?? new ArrayBuffer(compressedBound(r.input.byteLength)));
    return r.bytes;
  };
}
