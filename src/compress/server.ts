/**
 * Server-side compression (PostgreSQL 15+): the BASE_BACKUP options that ask for it, the check that
 * refuses it on 13/14 before anything is sent or written, and the translation of the server's refusal
 * when it was built without the method. Pure.
 *
 * With `COMPRESSION`, the server names its archives `base.tar.gz`, `<oid>.tar.lz4`, `base.tar.zst`
 * (basebackup_gzip.c / _lz4.c / _zstd.c append the suffix in their `begin_archive`); the manifest is
 * never compressed. Tar output keeps those bytes as they are; plain output decompresses them.
 * @module
 */
import { CompressionError, ServerError } from '../errors.js';
import { compressionDetailText, type CompressionSpec } from './spec.js';

/** First server major that accepts `COMPRESSION` (the parenthesised BASE_BACKUP syntax came with it). */
export const SERVER_COMPRESSION_MIN_MAJOR = 15;

/** One BASE_BACKUP option, to be appended with the command builder's string-option form. */
export interface ServerCompressionOption {
  /** `COMPRESSION` or `COMPRESSION_DETAIL`. */
  name: 'COMPRESSION' | 'COMPRESSION_DETAIL';
  /** The literal value (unquoted). */
  value: string;
}

/**
 * Refuses server-side compression a server cannot do, before anything is sent or written.
 * Client-side specs pass.
 * @throws CompressionError for server-side compression on a server before 15.
 */
export function checkServerCompression(spec: CompressionSpec, serverMajor: number): void {
  if (spec.location !== 'server') return;
  if (serverMajor < SERVER_COMPRESSION_MIN_MAJOR) {
    const alt =
      spec.algorithm === 'none'
        ? 'drop the server- prefix'
        : `compress on the client instead (--compress=client-${spec.algorithm}${spec.detail ? `:${spec.detail}` : ''})`;
    throw new CompressionError(
      `the server (PostgreSQL ${serverMajor}) does not support server-side compression, which needs PostgreSQL ${SERVER_COMPRESSION_MIN_MAJOR} or later: ${alt}`,
      { algorithm: spec.algorithm },
    );
  }
}

/**
 * The options to append to BASE_BACKUP, after `TARGET`, as pg_basebackup does: `COMPRESSION 'method'`,
 * then `COMPRESSION_DETAIL '...'` when a detail was given. Empty for client-side compression.
 * pg_basebackup passes the detail through unparsed and lets the server judge it; so do we (the spec
 * was already validated with PostgreSQL's rules).
 * @throws CompressionError as {@link checkServerCompression}.
 * @example
 * ```ts
 * serverCompressionOptions(resolveCompression('server-zstd:level=9,workers=4'), 16);
 * // [{ name: 'COMPRESSION', value: 'zstd' }, { name: 'COMPRESSION_DETAIL', value: 'level=9,workers=4' }]
 * ```
 */
export function serverCompressionOptions(spec: CompressionSpec, serverMajor: number): ServerCompressionOption[] {
  checkServerCompression(spec, serverMajor);
  if (spec.location !== 'server') return [];
  const options: ServerCompressionOption[] = [{ name: 'COMPRESSION', value: spec.algorithm }];
  const detail = compressionDetailText(spec);
  if (detail !== undefined) options.push({ name: 'COMPRESSION_DETAIL', value: detail });
  return options;
}

/**
 * Turns the server's refusal of the requested compression into a {@link CompressionError} with advice,
 * keeping the {@link ServerError} as `cause`; returns `undefined` for any other error. The server
 * answers BASE_BACKUP with the ErrorResponse before its first result row, so nothing has been written.
 *
 * Recognised: `"<method> compression is not supported by this build"` (SQLSTATE 0A000) and
 * `"invalid compression specification: this build does not support compression with LZ4"` (a server
 * built without lz4 or zstd), other `"invalid compression specification: ..."` and `"unrecognized compression
 * algorithm"` (42601), and zstd's `"could not set compression worker count ..."` / `"could not enable
 * long-distance mode"` (libzstd without threads or too old).
 */
export function mapServerCompressionError(err: unknown, spec: CompressionSpec): CompressionError | undefined {
  if (!(err instanceof ServerError) || spec.location !== 'server') return undefined;
  const msg = err.serverMessage;
  const method = spec.algorithm;
  const clientAlt = `--compress=client-${method}${spec.detail ? `:${spec.detail}` : ''}`;
  let advice: string | undefined;
  // compression.c says "this build does not support compression with LZ4" (inside "invalid compression
  // specification: ..."); the basebackup sinks say "lz4 compression is not supported by this build".
  const unsupported =
    /(gzip|lz4|zstd) compression is not supported by this build|this build does not support compression with (gzip|lz4|zstd)/i.exec(msg);
  if (unsupported) {
    advice = `the server was built without ${(unsupported[1] ?? unsupported[2] ?? method).toLowerCase()} support, so it cannot compress with it: compress on the client (${clientAlt}) or choose another server-side method`;
  } else if (/^invalid compression specification|^unrecognized compression algorithm|^unrecognized compression option/.test(msg)) {
    advice = `the server refused the compression specification "${method}${spec.detail ? `:${spec.detail}` : ''}": fix it or compress on the client (${clientAlt})`;
  } else if (/^could not (set compression worker count|enable long-distance mode|set compression level)/.test(msg)) {
    advice = `the server's zstd library cannot do what was asked: drop "workers"/"long" from the detail, or compress on the client (${clientAlt})`;
  }
  if (advice === undefined) return undefined;
  return new CompressionError(`server-side ${method} compression failed: ${msg}`, { cause: err, algorithm: method, advice });
}
