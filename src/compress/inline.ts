/**
 * Client-side compression driven from the calling thread without streams or worker threads, for the
 * methods that need no parallel threads to keep up: lz4 (synchronous, here), zstd where Node has it
 * built in (synchronous, here) and zstd from its package (on libuv's thread pool, a chunk or two in
 * flight while the next one fills). Bytes written are copied into input buffers kept for the
 * compressor's life; each full chunk is compressed into an output buffer, also kept, and handed to the
 * caller's `emit`, which must use it before returning (write it to a file). So the caller may reuse what
 * it wrote as soon as `write()` is done (receive buffers are handed back at once), and nothing is
 * allocated per chunk on our side.
 *
 * The output is what {@link ParallelCompressor} writes with the same chunk size: one independent lz4
 * frame or zstd frame per chunk, whose concatenation the command-line tools and our decoders read as one
 * stream. The parallel compressor's stream, queue and per-chunk copy for its readable side are what this
 * saves (docs/performance.md).
 * @module
 */
import { createRequire } from 'node:module';
import { CompressionError, PgBackupError } from '../errors.js';
import { chunkCodecConfig } from './backends.js';
import { compressedBound, createChunkCodec, type ChunkCodec } from './codec.js';
import { DEFAULT_CHUNK_BYTES } from './parallel.js';
import { resolveCompression, type CompressionInput, type CompressionSpec } from './spec.js';

const require = createRequire(import.meta.url);

/**
 * Chunk size for the zstd package: each call pays a trip through libuv's pool and a result buffer of
 * the package's own, which 1 MiB chunks pay a quarter as often. Here the chunk buffers are kept, so their
 * size costs no garbage; Node's built-in zstd, called in place, does better with the default 256 KiB.
 */
export const ZSTD_PACKAGE_CHUNK_BYTES = 1024 * 1024;

/** Options of {@link InlineCompressor}. */
export interface InlineCompressorOptions {
  /**
   * Bytes of input per independently compressed chunk (64 KiB–64 MiB).
   * @default 1 MiB for the zstd package ({@link ZSTD_PACKAGE_CHUNK_BYTES}), else 256 KiB ({@link DEFAULT_CHUNK_BYTES})
   */
  chunkBytes?: number;
  /**
   * Chunks being compressed at once when the codec is asynchronous (the zstd package, on libuv's thread
   * pool); a synchronous codec has one. @default 2
   */
  maxInFlight?: number;
}

/**
 * Whether `spec` is compressed by an {@link InlineCompressor} rather than on worker threads: client lz4,
 * and client zstd unless zstd worker threads (`workers=N`) were asked for. gzip's deflate needs every
 * core to beat pg_basebackup, which worker threads give it.
 */
export function compressesInline(spec: CompressionSpec): boolean {
  if (spec.location === 'server') return false;
  return spec.algorithm === 'lz4' || (spec.algorithm === 'zstd' && spec.workers === undefined);
}

/** One chunk's buffers, and its compression while it runs asynchronously. */
interface Slot {
  input: Uint8Array;
  output: Uint8Array;
  /** The compressed bytes, or the failure (never rejects, so an abandoned chunk raises nothing). */
  result?: Promise<Uint8Array | PgBackupError> | undefined;
}

/**
 * A chunked compressor for the calling thread.
 *
 * @example
 * ```ts
 * const zstd = new InlineCompressor('zstd');
 * const emit = (out: Uint8Array) => writeSync(fd, out);
 * for await (const chunk of tarBytes) await zstd.write(chunk, emit);
 * await zstd.end(emit);
 * ```
 */
export class InlineCompressor {
  /** The validated spec. */
  readonly spec: CompressionSpec;
  /** Input bytes per chunk. */
  readonly chunkBytes: number;
  /** Most chunks compressing at once (asynchronous codecs). */
  readonly maxInFlight: number;
  readonly #codec: ChunkCodec;
  #filling: Slot;
  readonly #inFlight: Slot[] = [];
  readonly #spare: Slot[] = [];
  #filled = 0;
  #chunks = 0;
  #ended = false;
  #bytesIn = 0;
  #bytesOut = 0;

  /** @throws ConfigError / CompressionError for an invalid spec, one not compressed inline ({@link compressesInline}), or a missing library. */
  constructor(spec: CompressionInput | CompressionSpec, options: InlineCompressorOptions = {}) {
    this.spec = resolveCompression(spec);
    if (this.spec.algorithm === 'none' || !compressesInline(this.spec)) {
      throw new CompressionError(`"${this.spec.algorithm}" is not compressed inline: use ParallelCompressor`, {
        algorithm: this.spec.algorithm,
      });
    }
    const config = chunkCodecConfig(this.spec);
    const chunkBytes =
      options.chunkBytes ??
      (config.algorithm === 'zstd' && !config.zstdBuiltin ? ZSTD_PACKAGE_CHUNK_BYTES : DEFAULT_CHUNK_BYTES[config.algorithm]);
    if (!Number.isInteger(chunkBytes) || chunkBytes < 64 * 1024 || chunkBytes > 64 << 20) {
      throw new CompressionError(`chunkBytes must be between 64 KiB and 64 MiB, got ${chunkBytes}`);
    }
    const maxInFlight = options.maxInFlight ?? 2;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      throw new CompressionError(`maxInFlight must be an integer ≥ 1, got ${maxInFlight}`);
    this.chunkBytes = chunkBytes;
    this.maxInFlight = maxInFlight;
    this.#codec = createChunkCodec(require, config);
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
   * @throws CompressionError when the codec fails, or after end().
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
   * still makes one empty frame, which the tools accept.
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

  /** Compresses the filled chunk: emitted at once by a synchronous codec, else put in flight (waiting for the oldest when full). */
  #submit(emit: (compressed: Uint8Array) => void): Promise<void> | undefined {
    const slot = this.#filling;
    const input = slot.input.subarray(0, this.#filled);
    this.#filled = 0;
    this.#chunks++;
    let r: ReturnType<ChunkCodec>;
    try {
      r = this.#codec(input, slot.output);
    } catch (err) {
      throw this.#failure(err);
    }
    if (!(r instanceof Promise)) {
      if (this.#inFlight.length > 0) throw this.#failure(new Error('the codec answered synchronously after answering asynchronously'));
      this.#emit(typeof r === 'number' ? slot.output.subarray(0, r) : r, emit);
      return undefined;
    }
    slot.result = r.then(
      (v) => (typeof v === 'number' ? slot.output.subarray(0, v) : v),
      (err: unknown) => this.#failure(err),
    );
    this.#inFlight.push(slot);
    this.#filling = this.#spare.pop() ?? this.#slot();
    return this.#inFlight.length >= this.maxInFlight ? this.#emitOldest(emit) : undefined;
  }

  async #emitOldest(emit: (compressed: Uint8Array) => void): Promise<void> {
    const slot = this.#inFlight[0]!;
    const result = await slot.result!;
    this.#inFlight.shift();
    slot.result = undefined;
    this.#spare.push(slot);
    if (result instanceof PgBackupError) throw result;
    this.#emit(result, emit);
  }

  #emit(out: Uint8Array, emit: (compressed: Uint8Array) => void): void {
    this.#bytesOut += out.length;
    emit(out);
  }

  #slot(): Slot {
    return { input: new Uint8Array(this.chunkBytes), output: new Uint8Array(compressedBound(this.chunkBytes)) };
  }

  #failure(err: unknown): PgBackupError {
    if (err instanceof PgBackupError) return err;
    return new CompressionError(`${this.spec.algorithm} compression failed: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      algorithm: this.spec.algorithm,
    });
  }
}
