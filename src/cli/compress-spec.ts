/**
 * `-Z/--compress` and `-z/--gzip`: the compression specification grammar now lives in the library
 * (src/compress/spec.ts); the CLI takes it through the public surface.
 * @module
 */
export { NO_COMPRESSION, parseCompressOption } from '../entries/compress.js';
export type { CompressionAlgorithm, CompressionLocation, CompressionSpec } from '../entries/compress.js';
