import { createHash, randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  createChecksum,
  parseChecksumAlgorithm,
  CHECKSUM_LENGTHS,
  MANIFEST_FILE_CHECKSUM_ALGORITHMS,
} from '../../../src/manifest/checksum.js';
import { crc32c, crc32cFinal, crc32cUpdate, CRC32C_INIT } from '../../../src/manifest/crc32c.js';
import { splits } from '../helpers/splits.js';

/** Bit-at-a-time reference, straight from the definition (reflected 0x82F63B78). */
function crc32cSlow(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  it('matches the published check values (RFC 3720 B.4 and the CRC catalogue)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
  });

  it('is not what node:zlib crc32 computes (that is the IEEE polynomial)', () => {
    const zcrc = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
    if (zcrc) expect(zcrc(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32c(Buffer.from('123456789'))).not.toBe(0xcbf43926);
  });

  it('agrees with the bitwise definition for every length 0..100 and any split, at any alignment', () => {
    const data = randomBytes(300);
    for (let len = 0; len <= 100; len++) {
      for (const off of [0, 1, 3, 5]) {
        const slice = data.subarray(off, off + len);
        const want = crc32cSlow(slice);
        expect(crc32c(slice)).toBe(want);
        const cut = Math.floor(len / 3);
        expect(crc32cFinal(crc32cUpdate(crc32cUpdate(CRC32C_INIT, slice, 0, cut), slice, cut))).toBe(want);
      }
    }
  });
});

describe('checksum contexts', () => {
  const data = Buffer.from('123456789');
  it('prints CRC32C as PostgreSQL does: the little-endian bytes of the uint32', () => {
    expect(createChecksum('CRC32C').update(data).hex()).toBe('839206e3');
  });
  it('SHA-2 digests are node:crypto digests, fed in pieces', () => {
    for (const alg of ['SHA224', 'SHA256', 'SHA384', 'SHA512'] as const) {
      for (const [how, chunks] of splits(data)) {
        const ctx = createChecksum(alg);
        for (const c of chunks) ctx.update(c);
        expect(ctx.hex(), how).toBe(createHash(alg.toLowerCase()).update(data).digest('hex'));
        expect(ctx.digest().length).toBe(CHECKSUM_LENGTHS[alg]);
      }
    }
  });
  it('NONE has an empty digest', () => {
    expect(createChecksum('NONE').update(data).hex()).toBe('');
  });
  it('parses algorithm names case-insensitively', () => {
    expect(parseChecksumAlgorithm('crc32c')).toBe('CRC32C');
    expect(parseChecksumAlgorithm('Sha512')).toBe('SHA512');
    expect(parseChecksumAlgorithm('md5')).toBeUndefined();
    expect(MANIFEST_FILE_CHECKSUM_ALGORITHMS).toHaveLength(6);
  });
});
