import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressedBound, createChunkCodec, type ChunkCodecConfig } from '../../../src/compress/codec.js';
import { hasBuiltinZstd } from '../../../src/compress/backends.js';
import { Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';
import { xxhash32 } from '../../../src/compress/xxhash32.js';
import { mixedData, referenceDecompress, tool } from './fixtures.js';

const require = createRequire(import.meta.url);
const base = { level: 1, longDistance: false, zstdBuiltin: false } as const;

async function run(config: ChunkCodecConfig, input: Uint8Array, outputBytes = compressedBound(input.length)): Promise<Buffer> {
  const codec = createChunkCodec(require, config);
  const output = new Uint8Array(outputBytes);
  const r = await codec(input, output);
  return Buffer.from(typeof r === 'number' ? output.subarray(0, r) : r);
}

function lz4Decode(frame: Uint8Array): Buffer {
  const d = new Lz4FrameDecoder();
  const out = [...d.push(frame)];
  d.end();
  return Buffer.concat(out);
}

/** `lz4 -t` accepts the frame (it throws otherwise). */
function lz4Test(frame: Uint8Array): boolean {
  tool('lz4', ['-t'], frame);
  return true;
}

/** Inputs at the LZ4 block format's edges: empty, shorter than the 13-byte minimum, literal and match lengths across 15 and 15 + 255, blocks across 4 MiB. */
const LZ4_CASES: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['1 byte', Buffer.from('a')],
  ['12 bytes', Buffer.from('abcabcabcabc')],
  ['13 bytes', Buffer.from('abcabcabcabca')],
  ['short repeats', Buffer.from('hello hello hello hello hello hello')],
  ['14 then a match', Buffer.concat([randomBytes(14), Buffer.alloc(40, 1)])],
  ['270 literals then a 275-byte match', Buffer.concat([randomBytes(270), Buffer.alloc(275, 7), randomBytes(20)])],
  ['random 100 kB (stored block)', randomBytes(100_000)],
  // Matches at distances that are multiples of 4 (extended a word at a time) ending at every offset
  // near the block's end.
  ['8-byte period, odd length', Buffer.concat(Array.from({ length: 5000 }, () => randomBytes(8).subarray(0, 8))).subarray(0, 39_999)],
  ['repeated 24-byte records with one changed byte', Buffer.concat(Array.from({ length: 3000 }, (_, i) => Buffer.from(`record ${String(i % 10)} ....... value\n`)))],
  ...[13, 14, 15, 16, 17, 18, 19, 20].map((n): [string, Buffer] => [`${n} zero bytes`, Buffer.alloc(n)]),
  ['zeros 9 MiB (three blocks)', Buffer.alloc(9 << 20)],
  ['mixed 5 MiB', mixedData(5 << 20, 5)],
];

describe('lz4 chunk codec (our JavaScript frame writer)', () => {
  for (const [name, input] of LZ4_CASES) {
    it(`${name}: our decoder and lz4 -d give the input back`, async () => {
      const frame = await run({ ...base, algorithm: 'lz4' }, input);
      expect(lz4Decode(frame).equals(input)).toBe(true);
      expect(referenceDecompress('lz4', frame).equals(input)).toBe(true);
      // Never much larger than the input: incompressible blocks are stored.
      expect(frame.length).toBeLessThanOrEqual(input.length + 7 + 4 * (Math.ceil(input.length / (4 << 20)) + 2));
    });
  }

  it('writes frames like pg_basebackup: no content or block checksum, the smallest block maximum, a valid header checksum', async () => {
    for (const [bytes, bd] of [[0, 4], [1 << 16, 4], [(1 << 16) + 1, 5], [1 << 18, 5], [1 << 20, 6], [(1 << 20) + 1, 7]] as const) {
      const input = mixedData(bytes, bd);
      const frame = await run({ ...base, algorithm: 'lz4' }, input);
      expect([...frame.subarray(0, 6)]).toEqual([0x04, 0x22, 0x4d, 0x18, 0x60, bd << 4]);
      expect(frame[6]).toBe((xxhash32(frame.subarray(4, 6)) >>> 8) & 0xff);
      // The last four bytes are the end mark, not a checksum.
      expect(frame.readUInt32LE(frame.length - 4)).toBe(0);
      expect(lz4Decode(frame).equals(input)).toBe(true);
      expect(lz4Test(frame)).toBe(true);
    }
  });

  it('writes into a too small output buffer by returning its own', async () => {
    const input = randomBytes(10_000);
    const frame = await run({ ...base, algorithm: 'lz4' }, input, 100);
    expect(lz4Decode(frame).equals(input)).toBe(true);
  });

  it('reads a view at any offset (unaligned: no word compares)', async () => {
    const backing = Buffer.concat([mixedData(300_001, 9), Buffer.alloc(50_000, 'pattern')]);
    for (const offset of [1, 2, 3, 4]) {
      const input = backing.subarray(offset);
      expect(lz4Decode(await run({ ...base, algorithm: 'lz4' }, input)).equals(input)).toBe(true);
    }
  });
});

describe('gzip and zstd chunk codecs write into the output buffer', () => {
  const input = mixedData(1 << 20, 4);
  it('gzip: one member per call, the same codec reused', async () => {
    const codec = createChunkCodec(require, { ...base, algorithm: 'gzip' });
    const output = new Uint8Array(compressedBound(input.length));
    const members: Buffer[] = [];
    for (let i = 0; i < 3; i++) {
      const r = codec(input, output);
      expect(typeof r).toBe('number');
      members.push(Buffer.from(output.subarray(0, r as number)));
    }
    expect(gunzipSync(Buffer.concat(members)).equals(Buffer.concat([input, input, input]))).toBe(true);
  });

  it('gzip: an output buffer too small falls back to a result of its own', async () => {
    const out = await run({ ...base, algorithm: 'gzip' }, input, 1000);
    expect(gunzipSync(out).equals(input)).toBe(true);
  });

  it('zstd: frames decode with zstd -d', async () => {
    const config: ChunkCodecConfig = { ...base, algorithm: 'zstd', level: 3, zstdBuiltin: hasBuiltinZstd() };
    if (!config.zstdBuiltin) config.zstdModule = require.resolve('@mongodb-js/zstd');
    const a = await run(config, input);
    const b = await run(config, input.subarray(0, 1000), 10);
    expect(referenceDecompress('zstd', Buffer.concat([a, b])).equals(Buffer.concat([input, input.subarray(0, 1000)]))).toBe(true);
  });
});
