/**
 * What a tar sink stores for one archive, composed from the server's bytes: `-R` injection applied to
 * the uncompressed tar (a server-compressed `base.tar.*` is decompressed, rewritten and compressed again
 * with its own method), an uncompressed archive checked header by header and given the end-of-archive
 * marker 13/14 do not send, then client-side compression when the sink was asked for it. A
 * server-compressed archive without injection is kept byte for byte.
 * @module
 */
import { compressArchive, decompressArchive } from '../compress/archive.js';
import { algorithmOf } from '../compress/decompress.js';
import { compressedArchiveName, resolveCompression, type CompressionSpec } from '../compress/spec.js';
import { TarStructureChecker } from '../tar/check.js';
import { terminator } from '../tar/writer.js';
import { rewriteArchive } from './inject.js';
import type { ArchiveInfo, Injection } from './types.js';

/** How {@link storedArchive} composes an archive. */
export interface StoredArchiveOptions {
  /** Files to inject; the archive is parsed and rewritten when given. */
  injection?: Injection | undefined;
  /** End a rewritten archive with the end-of-archive marker (false when more entries follow). @default true */
  terminate?: boolean;
  /** Client-side compression of an uncompressed archive; `undefined` or method `none` stores it as it is. */
  compression?: CompressionSpec | undefined;
}

/**
 * The archive to store. When `inline` is set the caller pushes each chunk of `bytes` through
 * `inline.check` and appends the marker if `inline.terminate` (the hot, uncompressed path, kept free of
 * extra async layers); otherwise `bytes` are final.
 */
export interface StoredArchive {
  /** File name to store under (`base.tar.gz` for client gzip). */
  name: string;
  bytes: AsyncIterable<Buffer | Uint8Array>;
  inline?: { check: TarStructureChecker; terminate: boolean };
}

/** Composes what a tar sink stores for `info`. Throws at once if a needed compression library is missing. */
export function storedArchive(info: ArchiveInfo, bytes: AsyncIterable<Buffer | Uint8Array>, options: StoredArchiveOptions): StoredArchive {
  const incoming = algorithmOf(info.name);
  const compression = options.compression?.algorithm === 'none' ? undefined : options.compression;
  if (options.injection) {
    const tar = incoming === 'none' ? bytes : decompressArchive(bytes, incoming);
    const rewritten = rewriteArchive(tar, options.injection, { terminate: options.terminate ?? true });
    if (incoming !== 'none') return { name: info.name, bytes: compressArchive(rewritten, resolveCompression(incoming)) };
    if (!compression) return { name: info.name, bytes: rewritten };
    return { name: compressedArchiveName(info.name, compression.algorithm), bytes: compressArchive(rewritten, compression) };
  }
  // Compressed by the server: kept as it came (its integrity is the decompressor's, at restore or verify).
  if (incoming !== 'none') return { name: info.name, bytes };
  const check = new TarStructureChecker();
  if (!compression) return { name: info.name, bytes, inline: { check, terminate: !info.terminated } };
  return {
    name: compressedArchiveName(info.name, compression.algorithm),
    bytes: compressArchive(checkedTar(bytes, check, !info.terminated), compression),
  };
}

/** Passes an uncompressed tar through its structure check, adding the end-of-archive marker if asked. */
export async function* checkedTar(
  bytes: AsyncIterable<Buffer | Uint8Array>,
  check: TarStructureChecker,
  terminate: boolean,
): AsyncGenerator<Buffer | Uint8Array, void, undefined> {
  for await (const v of bytes) {
    const chunk = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    check.push(chunk);
    yield chunk;
  }
  check.end();
  if (terminate) yield terminator();
}
