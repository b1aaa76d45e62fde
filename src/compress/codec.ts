/**
 * One-chunk compressors: each call turns a chunk into one complete, independent gzip member, lz4 frame
 * or zstd frame. Concatenations of these are valid streams for `gzip -d`, `lz4 -d` and `zstd -d` (RFC
 * 1952 §2.2 allows several members; the lz4 and zstd formats allow several frames), which is what lets
 * chunks be compressed on several threads at once.
 *
 * The compressor is written once, as JavaScript source text ({@link CHUNK_CODEC_SOURCE}): worker threads
 * run it with `eval`, and this thread compiles the same text. Source text, rather than a function's
 * `toString()`, because bundlers rewrite functions (esbuild's `keepNames` inserts calls to a helper the
 * worker would not have), and the package then needs no separate worker file in its build.
 * @module
 */

/** What a chunk compressor needs to know; plain data, posted to workers as is. */
export interface ChunkCodecConfig {
  /** The method. */
  algorithm: 'gzip' | 'lz4' | 'zstd';
  /** The level the library takes (see `effectiveLevel`). lz4-napi has one level (fast) and ignores it. */
  level: number;
  /** zstd: long-distance matching (built-in zstd only; the package has no parameter for it). */
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
 * `function (req, config) → (input) → output`: the compressor for one {@link ChunkCodecConfig}; `req` is
 * `require`. lz4 frames carry a content checksum and zstd frames a checksum, as the tools write by default,
 * so that `lz4 -d`, `zstd -d` and our decoders detect corruption.
 */
export const CHUNK_CODEC_SOURCE = `function (req, config) {
  var zlib = req('node:zlib');
  if (config.algorithm === 'gzip') {
    var gzipOptions = { level: config.level };
    return function (input) { return zlib.gzipSync(input, gzipOptions); };
  }
  if (config.algorithm === 'lz4') {
    var lz4 = req(config.lz4Module || 'lz4-napi');
    var frameOptions = { contentChecksum: true };
    return function (input) {
      var b = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      return lz4.compressFrameSync(b, frameOptions);
    };
  }
  if (config.zstdBuiltin) {
    var c = zlib.constants;
    var params = {};
    params[c.ZSTD_c_compressionLevel] = config.level;
    params[c.ZSTD_c_checksumFlag] = 1;
    if (config.longDistance) params[c.ZSTD_c_enableLongDistanceMatching] = 1;
    var zstdOptions = { params: params };
    return function (input) { return zlib.zstdCompressSync(input, zstdOptions); };
  }
  var zstd = req(config.zstdModule || '@mongodb-js/zstd');
  return function (input) {
    var b = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    return zstd.compress(b, config.level);
  };
}`;

type CodecFactory = (req: (id: string) => unknown, config: ChunkCodecConfig) => ChunkCodec;
let factory: CodecFactory | undefined;

/**
 * Builds the compressor for one configuration on this thread (`req` is a `createRequire(...)`).
 * @throws whatever loading the library throws (the callers check the packages first).
 */
export function createChunkCodec(req: (id: string) => unknown, config: ChunkCodecConfig): ChunkCodec {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  factory ??= new Function(`return (${CHUNK_CODEC_SOURCE});`)() as CodecFactory;
  return factory(req, config);
}
