/**
 * Compression: specifications in pg_basebackup's `-Z`/`--compress` grammar, parallel compressors
 * for gzip, lz4 and zstd (as a stream, or writing through a callback with {@link DirectCompressor}),
 * streaming decompressors, helpers for compressed archive names, and
 * {@link compressionSupport} to see which methods this installation can use.
 *
 * @example
 * ```ts
 * import { createReadStream, createWriteStream } from 'node:fs';
 * import { pipeline } from 'node:stream/promises';
 * import { createCompressor, decompressorFor, resolveCompression } from 'pg-basebackup/compress';
 *
 * const spec = resolveCompression({ algorithm: 'zstd', level: 5 });
 * await pipeline(createReadStream('base.tar'), createCompressor(spec), createWriteStream('base.tar.zst'));
 * await pipeline(createReadStream('base.tar.zst'), decompressorFor('base.tar.zst'), createWriteStream('copy.tar'));
 * ```
 * @module pg-basebackup/compress
 */
export {
  algorithmFromFileName,
  COMPRESSION_ALGORITHMS,
  COMPRESSION_LEVEL_RANGE,
  COMPRESSION_SUFFIX,
  compressedArchiveName,
  DEFAULT_COMPRESSION_LEVEL,
  NO_COMPRESSION,
  parseCompressOption,
  resolveCompression,
  uncompressedArchiveName,
  validateCompressionSpec,
} from '../compress/spec.js';
export type {
  CompressionAlgorithm,
  CompressionInput,
  CompressionLocation,
  CompressionOptions,
  CompressionSpec,
} from '../compress/spec.js';
export { createCompressor, DEFAULT_CHUNK_BYTES, ParallelCompressor, type CompressorOptions } from '../compress/parallel.js';
export { DirectCompressor, ZSTD_PACKAGE_CHUNK_BYTES, type DirectCompressorOptions } from '../compress/direct.js';
export { algorithmOf, decompressorFor, type DecompressorOptions } from '../compress/decompress.js';
export {
  compressArchive,
  compressedOutput,
  decompressArchive,
  type CompressedOutputOptions,
} from '../compress/archive.js';
export { DEFAULT_MAX_THREADS, defaultThreadCount } from '../compress/worker.js';
export { compressionSupport, type CompressionSupport } from '../compress/backends.js';
