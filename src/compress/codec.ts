/**
 * One-chunk compressors: each call turns a chunk into one complete, independent gzip member, lz4 frame
 * or zstd frame. Concatenations of these are valid streams for `gzip -d`, `lz4 -d` and `zstd -d` (RFC
 * 1952 §2.2 allows several members; the lz4 and zstd formats allow several frames), which is what lets
 * chunks be compressed on several threads at once.
 *
 * {@link createChunkCodec} must stay self-contained (no reference to anything outside its body, `require`
 * passed in): the worker pool runs its source text inside each worker thread, so that the package needs
 * no separate worker file in its build.
 * @module
 */

/** What a chunk compressor needs to know; plain data, posted to workers as is. */
export interface ChunkCodecConfig {
  /** The method. */
  algorithm: 'gzip' | 'lz4' | 'zstd';
  /** The level the library takes (see `effectiveLevel`). */
  level: number;
  /** zstd: long-distance matching (built-in zstd only). */
  longDistance: boolean;
  /** zstd: use Node's built-in zstd (22.15+) rather than the package. */
  zstdBuiltin: boolean;
  /** Resolved path of the lz4 package's entry (lz4-napi), for `require` in a worker. */
  lz4Module?: string;
  /** Resolved path of the zstd package's entry (@mongodb-js/zstd), when the built-in is missing. */
  zstdModule?: string;
}

/** A chunk compressor: synchronous for gzip, lz4 and built-in zstd, asynchronous for the zstd package. */
export type ChunkCodec = (input: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/**
 * Builds the compressor for one configuration. `req` is `require` (in a worker) or `createRequire(...)`.
 * Kept free of outside references: see the module comment.
 */
export function createChunkCodec(req: (id: string) => unknown, config: ChunkCodecConfig): ChunkCodec {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const zlib = req('node:zlib') as any;
  const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  if (config.algorithm === 'gzip') {
    const options = { level: config.level };
    return (input) => zlib.gzipSync(input, options) as Buffer;
  }
  if (config.algorithm === 'lz4') {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const lz4 = req(config.lz4Module ?? 'lz4-napi') as any;
    // The content checksum lets `lz4 -d` (and our decoder) detect corruption, as the lz4 tool's own frames do.
    const options = { contentChecksum: true };
    return (input) => lz4.compressFrameSync(asBuffer(input), options) as Buffer;
  }
  if (config.zstdBuiltin) {
    const c = zlib.constants;
    const params: Record<number, number> = {
      [c.ZSTD_c_compressionLevel]: config.level,
      // A checksum per frame, as the zstd tool writes by default.
      [c.ZSTD_c_checksumFlag]: 1,
    };
    if (config.longDistance) params[c.ZSTD_c_enableLongDistanceMatching] = 1;
    const options = { params };
    return (input) => zlib.zstdCompressSync(input, options) as Buffer;
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const zstd = req(config.zstdModule ?? '@mongodb-js/zstd') as any;
  return (input) => zstd.compress(asBuffer(input), config.level) as Promise<Buffer>;
}
