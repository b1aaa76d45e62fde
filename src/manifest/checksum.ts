/**
 * Streaming file checksums as backup manifests record them (PostgreSQL's `checksum_helper.c`):
 * NONE, CRC32C and SHA224/256/384/512. Pure (node:crypto only).
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { CRC32C_INIT, crc32cFinal, crc32cUpdate } from './crc32c.js';

/** A manifest checksum algorithm, spelled as the manifest's `Checksum-Algorithm` field spells it. */
export type ManifestFileChecksumAlgorithm = 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512';

/** Every algorithm, in PostgreSQL's order. */
export const MANIFEST_FILE_CHECKSUM_ALGORITHMS: readonly ManifestFileChecksumAlgorithm[] = [
  'NONE',
  'CRC32C',
  'SHA224',
  'SHA256',
  'SHA384',
  'SHA512',
];

/** Digest length in bytes of each algorithm (0 for NONE). */
export const CHECKSUM_LENGTHS: Readonly<Record<ManifestFileChecksumAlgorithm, number>> = {
  NONE: 0,
  CRC32C: 4,
  SHA224: 28,
  SHA256: 32,
  SHA384: 48,
  SHA512: 64,
};

/**
 * The canonical name for a user-given or manifest-given spelling; PostgreSQL compares names
 * case-insensitively (`pg_checksum_parse_type`). `undefined` when unknown.
 * @example
 * ```ts
 * parseChecksumAlgorithm('sha256') // 'SHA256'
 * ```
 */
export function parseChecksumAlgorithm(name: string): ManifestFileChecksumAlgorithm | undefined {
  const upper = name.toUpperCase();
  return (MANIFEST_FILE_CHECKSUM_ALGORITHMS as readonly string[]).includes(upper) ? (upper as ManifestFileChecksumAlgorithm) : undefined;
}

/** An incremental checksum: feed bytes with {@link ChecksumContext.update}, then take the digest once. */
export interface ChecksumContext {
  readonly algorithm: ManifestFileChecksumAlgorithm;
  /** Add bytes. Returns the context for chaining. */
  update(data: Uint8Array): ChecksumContext;
  /**
   * The digest bytes as PostgreSQL stores them (empty for NONE). For CRC32C these are the 4 bytes of
   * the `uint32` in little-endian order, because `pg_checksum_final` `memcpy`s the native integer and
   * manifests are produced on little-endian machines in practice: the CRC `0xE3069283` prints as
   * `839206e3`.
   */
  digest(): Buffer;
  /** {@link ChecksumContext.digest} as lowercase hex, as the manifest's `Checksum` field holds it. */
  hex(): string;
}

class CrcContext implements ChecksumContext {
  readonly algorithm = 'CRC32C' as const;
  private crc = CRC32C_INIT;
  update(data: Uint8Array): this {
    this.crc = crc32cUpdate(this.crc, data);
    return this;
  }
  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32LE(crc32cFinal(this.crc));
    return out;
  }
  hex(): string {
    return this.digest().toString('hex');
  }
}

class HashContext implements ChecksumContext {
  private readonly hash: Hash;
  private result: Buffer | undefined;
  constructor(readonly algorithm: 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512') {
    this.hash = createHash(algorithm.toLowerCase());
  }
  update(data: Uint8Array): this {
    this.hash.update(data);
    return this;
  }
  digest(): Buffer {
    this.result ??= this.hash.digest();
    return this.result;
  }
  hex(): string {
    return this.digest().toString('hex');
  }
}

class NoneContext implements ChecksumContext {
  readonly algorithm = 'NONE' as const;
  update(): this {
    return this;
  }
  digest(): Buffer {
    return Buffer.alloc(0);
  }
  hex(): string {
    return '';
  }
}

/**
 * A new streaming checksum context.
 * @example
 * ```ts
 * createChecksum('CRC32C').update(Buffer.from('123456789')).hex() // '839206e3'
 * ```
 */
export function createChecksum(algorithm: ManifestFileChecksumAlgorithm): ChecksumContext {
  switch (algorithm) {
    case 'NONE':
      return new NoneContext();
    case 'CRC32C':
      return new CrcContext();
    default:
      return new HashContext(algorithm);
  }
}
