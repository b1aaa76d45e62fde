/**
 * Client-side compression on the calling thread, synchronously, for the methods whose chunk codec is
 * synchronous there: lz4 (always) and zstd where Node has it built in (unless zstd worker threads were
 * asked for). Bytes written are copied into one input buffer kept for the compressor's life; each full
 * chunk is compressed into one output buffer, also kept, and handed to the caller's `emit`, which must
 * use it before returning (write it to a file). So the caller may reuse whatever it wrote as soon as
 * `write()` returns (receive buffers are handed back at once), and nothing is allocated per chunk.
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
import { compressedBound, createChunkCodec, type ChunkCodec, type ChunkCodecConfig } from './codec.js';
import { DEFAULT_CHUNK_BYTES } from './parallel.js';
import { resolveCompression, type CompressionInput, type CompressionSpec } from './spec.js';

const require = createRequire(import.meta.url);

/** Options of {@link InlineCompressor}. */
export interface InlineCompressorOptions {
  /** Bytes of input per independently compressed chunk (64 KiB–64 MiB). @default 256 KiB ({@link DEFAULT_CHUNK_BYTES}) */
  chunkBytes?: number;
}

/**
 * Whether `spec` compresses synchronously on this thread (lz4; zstd built into this Node, without
 * `workers`), so that an {@link InlineCompressor} can take it.
 */
export function compressesInline(spec: CompressionSpec): boolean {
  if (spec.location === 'server') return false;
  if (spec.algorithm === 'lz4') return true;
  if (spec.algorithm !== 'zstd' || spec.workers !== undefined) return false;
  return chunkCodecConfig(spec).zstdBuiltin;
}

/**
 * A synchronous chunked compressor.
 *
 * @example
 * ```ts
 * const lz4 = new InlineCompressor('lz4');
 * for await (const chunk of tarBytes) lz4.write(chunk, (out) => writeSync(fd, out));
 * lz4.end((out) => writeSync(fd, out));
 * ```
 */
export class InlineCompressor {
  /** The validated spec. */
  readonly spec: CompressionSpec;
  /** Input bytes per chunk. */
  readonly chunkBytes: number;
  readonly #codec: ChunkCodec;
  readonly #input: Uint8Array;
  readonly #output: Uint8Array;
  #filled = 0;
  #chunks = 0;
  #ended = false;
  #bytesIn = 0;
  #bytesOut = 0;

  /** @throws ConfigError / CompressionError for an invalid spec, or one that does not compress inline ({@link compressesInline}). */
  constructor(spec: CompressionInput | CompressionSpec, options: InlineCompressorOptions = {}) {
    this.spec = resolveCompression(spec);
    if (this.spec.algorithm === 'none' || !compressesInline(this.spec)) {
      throw new CompressionError(`"${this.spec.algorithm}" does not compress synchronously on this thread: use ParallelCompressor`, {
        algorithm: this.spec.algorithm,
      });
    }
    const config: ChunkCodecConfig = chunkCodecConfig(this.spec);
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES[config.algorithm];
    if (!Number.isInteger(chunkBytes) || chunkBytes < 64 * 1024 || chunkBytes > 64 << 20) {
      throw new CompressionError(`chunkBytes must be between 64 KiB and 64 MiB, got ${chunkBytes}`);
    }
    this.chunkBytes = chunkBytes;
    this.#codec = createChunkCodec(require, config);
    this.#input = new Uint8Array(chunkBytes);
    this.#output = new Uint8Array(compressedBound(chunkBytes));
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
   * Takes `bytes` (copied: the caller may reuse them once this returns) and emits each chunk it fills,
   * compressed. `emit`'s argument is valid only until `emit` returns.
   * @throws CompressionError when the codec fails, or after end().
   */
  write(bytes: Uint8Array, emit: (compressed: Uint8Array) => void): void {
    if (this.#ended) throw new CompressionError('write after end: the compressor has finished');
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, this.chunkBytes - this.#filled);
      this.#input.set(n === bytes.length ? bytes : bytes.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === this.chunkBytes) this.#compress(emit);
    }
    this.#bytesIn += bytes.length;
  }

  /** Emits the last (partial) chunk; an empty input still makes one empty frame, which the tools accept. */
  end(emit: (compressed: Uint8Array) => void): void {
    if (this.#ended) return;
    if (this.#filled > 0 || this.#chunks === 0) this.#compress(emit);
    this.#ended = true;
  }

  #compress(emit: (compressed: Uint8Array) => void): void {
    let r: ReturnType<ChunkCodec>;
    try {
      r = this.#codec(this.#input.subarray(0, this.#filled), this.#output);
    } catch (err) {
      throw this.#failure(err);
    }
    if (typeof r === 'object' && 'then' in r) {
      // Ruled out by compressesInline(): an asynchronous codec here is a bug, not a data problem.
      throw this.#failure(new Error('the codec answered asynchronously'));
    }
    const out = typeof r === 'number' ? this.#output.subarray(0, r) : r;
    this.#filled = 0;
    this.#chunks++;
    this.#bytesOut += out.length;
    emit(out);
  }

  #failure(err: unknown): PgBackupError {
    if (err instanceof PgBackupError) return err;
    return new CompressionError(`${this.spec.algorithm} compression failed: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      algorithm: this.spec.algorithm,
    });
  }
}
