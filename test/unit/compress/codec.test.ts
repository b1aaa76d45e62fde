import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CHUNK_CODEC_SOURCE, compressedBound, createChunkCodec, type ChunkCodecConfig } from '../../../src/compress/codec.js';
import { hasBuiltinZstd } from '../../../src/compress/backends.js';
import { Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';
import { ParallelCompressor } from '../../../src/compress/parallel.js';
import { CompressionPool } from '../../../src/compress/worker.js';
import { xxhash32 } from '../../../src/compress/xxhash32.js';
import { splits } from '../helpers/splits.js';
import { mixedData, referenceDecompress } from './fixtures.js';

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
  execFileSync('lz4', ['-t'], { input: frame, stdio: ['pipe', 'ignore', 'pipe'] });
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
  [
    'repeated 24-byte records with one changed byte',
    Buffer.concat(Array.from({ length: 3000 }, (_, i) => Buffer.from(`record ${String(i % 10)} ....... value\n`))),
  ],
  ...[13, 14, 15, 16, 17, 18, 19, 20].map((n): [string, Buffer] => [`${n} zero bytes`, Buffer.alloc(n)]),
  ['zeros 9 MiB (three blocks)', Buffer.alloc(9 << 20)],
  ['mixed 5 MiB', mixedData(5 << 20, 5)],
];

describe('lz4 chunk codec (our JavaScript frame writer)', () => {
  for (const [name, input] of LZ4_CASES) {
    it(`${name}: our decoder and lz4 -d give the input back`, async () => {
      const frame = await run({ ...base, algorithm: 'lz4', lz4Blocks: 'js' }, input);
      expect(lz4Decode(frame).equals(input)).toBe(true);
      expect(referenceDecompress('lz4', frame).equals(input)).toBe(true);
      // Never much larger than the input: incompressible blocks are stored.
      expect(frame.length).toBeLessThanOrEqual(input.length + 7 + 4 * (Math.ceil(input.length / (4 << 20)) + 2));
    });
  }

  it('writes frames like pg_basebackup: no content or block checksum, blocks of at most 64 KiB, a valid header checksum', async () => {
    for (const bytes of [0, 1 << 16, (1 << 16) + 1, 1 << 18, 1 << 20, (1 << 20) + 1]) {
      const input = mixedData(bytes, bytes & 0xff);
      const frame = await run({ ...base, algorithm: 'lz4', lz4Blocks: 'js' }, input);
      // FLG 0x60 (version 1, independent blocks), BD 0x40 (64 KiB block maximum, liblz4's default).
      expect([...frame.subarray(0, 6)]).toEqual([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
      expect(frame[6]).toBe((xxhash32(frame.subarray(4, 6)) >>> 8) & 0xff);
      const blocks = blocksOf(frame);
      expect(blocks.length).toBe(Math.ceil(bytes / (1 << 16)));
      expect(blocks.every((b) => b.bytes <= 1 << 16)).toBe(true);
      // The last four bytes are the end mark, not a checksum.
      expect(frame.readUInt32LE(frame.length - 4)).toBe(0);
      expect(lz4Decode(frame).equals(input)).toBe(true);
      expect(lz4Test(frame)).toBe(true);
    }
  });

  for (const blocks of ['js', 'wasm'] as const) {
    it(`writes into a too small output buffer by returning its own (${blocks} blocks)`, async () => {
      const input = randomBytes(10_000);
      const frame = await run({ ...base, algorithm: 'lz4', lz4Blocks: blocks }, input, 100);
      expect(lz4Decode(frame).equals(input)).toBe(true);
    });

    it(`reads a view at any offset (${blocks} blocks; JavaScript: unaligned, no word compares)`, async () => {
      const backing = Buffer.concat([mixedData(300_001, 9), Buffer.alloc(50_000, 'pattern')]);
      for (const offset of [1, 2, 3, 4]) {
        const input = backing.subarray(offset);
        expect(lz4Decode(await run({ ...base, algorithm: 'lz4', lz4Blocks: blocks }, input)).equals(input)).toBe(true);
      }
    });
  }
});

/**
 * `count` records of `payload` random bytes, each behind the same `header` bytes: LZ4 finds only the
 * headers, so the saving is about header / (header + payload), as in WAL of random bytes in heap or
 * TOAST tuples.
 */
function randomWithHeaders(count: number, payload: number, header: number): Buffer {
  const h = randomBytes(header);
  return Buffer.concat(Array.from({ length: count }, () => Buffer.concat([h, randomBytes(payload)])));
}

/** The blocks of a frame (7-byte header, no checksums): whether each is stored, and its size in the frame. */
function blocksOf(frame: Buffer): { stored: boolean; bytes: number; at: number }[] {
  const out: { stored: boolean; bytes: number; at: number }[] = [];
  for (let at = 7; ; ) {
    const word = frame.readUInt32LE(at);
    if (word === 0) return out;
    const bytes = word & 0x7fffffff;
    out.push({ stored: word >= 0x80000000, bytes, at: at + 4 });
    at += 4 + bytes;
  }
}

/** Every block stored (the size word with its high bit set, then the bytes as they were). */
function isStoredFrame(frame: Buffer, input: Buffer): boolean {
  const blocks = blocksOf(frame);
  return blocks.every((b) => b.stored) && Buffer.concat(blocks.map((b) => frame.subarray(b.at, b.at + b.bytes))).equals(input);
}

describe('lz4 chunk codec with our WebAssembly block compressor (lz4-block.wat)', () => {
  const wasm = { ...base, algorithm: 'lz4' } as const;
  const js = { ...wasm, lz4Blocks: 'js' } as const;
  const input = mixedData(3 << 20, 11);

  it("is the default, and its blocks differ from the JavaScript compressor's (so the tests below see which one ran)", async () => {
    const w = await run(wasm, input);
    const j = await run(js, input);
    expect(w.equals(j)).toBe(false);
    // Both LZ4's fast matching: the same ratio within 1%.
    expect(Math.abs(w.length - j.length)).toBeLessThan(j.length / 100);
  });

  const edges: [string, Buffer][] = [
    ...LZ4_CASES,
    // The window: a match 65 535 bytes back is allowed, 65 536 is not (offsets are 16 bits).
    ...[65_535, 65_536, 65_537].map((period): [string, Buffer] => {
      const r = randomBytes(period);
      return [`a ${period}-byte period`, Buffer.concat([r, r, r.subarray(0, 1000)])];
    }),
    ['a match running to the block end', Buffer.concat([randomBytes(100), Buffer.alloc(300_000, 9)])],
    // Literal runs of every length from 1 to 40 between matches (up to 16 are copied as two words).
    [
      'literal runs of 1 to 40 bytes',
      Buffer.concat(Array.from({ length: 2000 }, (_, i) => Buffer.concat([randomBytes(1 + (i % 40)), Buffer.alloc(8, 'x')]))),
    ],
    ['matches ending at every byte offset', Buffer.concat(Array.from({ length: 400 }, (_, i) => Buffer.alloc(20 + (i % 19), i & 255)))],
  ];
  for (const [name, data] of edges) {
    it(`${name}: our decoder (every split) and lz4 -d give the input back`, async () => {
      const frame = await run(wasm, data);
      for (const [how, pieces] of splits(frame, { byteByByteMax: 2048 })) {
        const d = new Lz4FrameDecoder();
        const out = pieces.flatMap((p) => [...d.push(p)]);
        d.end();
        expect(Buffer.concat(out).equals(data), how).toBe(true);
      }
      expect(referenceDecompress('lz4', frame).equals(data)).toBe(true);
      expect(lz4Test(frame)).toBe(true);
    });
  }

  it("stores incompressible blocks (the block size's high bit set, the bytes as they were)", async () => {
    const random = randomBytes((1 << 20) + 5);
    const frame = await run(wasm, random);
    // Header, then 17 blocks of at most 64 KiB, all stored, the end mark.
    expect(blocksOf(frame).length).toBe(17);
    expect(isStoredFrame(frame, random)).toBe(true);
  });

  it('stores a block that shrinks by less than 1/20 over its first 32 KiB, and compresses one that shrinks by more', async () => {
    // About 2.4% and 12% of each record is the repeated header.
    const barely = randomWithHeaders(128, 2000, 48);
    const some = randomWithHeaders(240, 1000, 128);
    const barelyFrame = await run(wasm, barely);
    expect(isStoredFrame(barelyFrame, barely)).toBe(true);
    // The JavaScript compressor has no probe: it does shrink it, a little.
    const barelyJs = await run(js, barely);
    expect(barelyJs.length).toBeLessThan(barely.length);
    expect(barelyJs.length).toBeGreaterThan(barely.length * 0.95);
    const someFrame = await run(wasm, some);
    expect(someFrame.length).toBeLessThan(some.length * 0.93);
    expect(lz4Decode(someFrame).equals(some)).toBe(true);
    // A block shorter than the probe is compressed whatever it saves.
    const short = barely.subarray(0, 30_000);
    const shortFrame = await run(wasm, short);
    expect(shortFrame.length).toBeLessThan(short.length);
    expect(lz4Decode(shortFrame).equals(short)).toBe(true);
  });

  it('after a block it stored, probes the next one over its first 8 KiB only', async () => {
    // 8 KiB that barely compress, then zeros: compressed when it starts a chunk (the 32 KiB probe sees the
    // zeros), stored when it follows a stored block (the 8 KiB probe sees only the first part).
    const late = Buffer.concat([randomWithHeaders(4, 2000, 48), Buffer.alloc(56 << 10)]);
    const alone = blocksOf(await run(wasm, late));
    expect(alone.map((b) => b.stored)).toEqual([false]);
    const barely = randomWithHeaders(32, 2000, 48);
    const input = Buffer.concat([barely, late, late]);
    const frame = await run(wasm, input);
    // The third block follows a stored one too, but the one before it: stored, so probed short as well.
    expect(blocksOf(frame).map((b) => b.stored)).toEqual([true, true, true]);
    expect(lz4Decode(frame).equals(input)).toBe(true);
    // A compressed block resets the probe: late after compressible bytes is compressed again.
    const after = Buffer.concat([Buffer.alloc(1 << 16, 7), late]);
    expect(blocksOf(await run(wasm, after)).map((b) => b.stored)).toEqual([false, false]);
  });

  it('compresses in place from the input buffer it hands out: the same frames as from a copy, blocks of 4 MiB included', async () => {
    const data = Buffer.concat([mixedData(5 << 20, 3), randomWithHeaders(1000, 2000, 48), Buffer.alloc(3 << 20, 5)]);
    const codec = createChunkCodec(require, wasm);
    const own = codec.inputBuffer?.(data.length);
    expect(own).toBeInstanceOf(Uint8Array);
    expect(codec.inputBuffer?.(data.length)).toBeNull();
    const output = new Uint8Array(compressedBound(data.length));
    for (const length of [data.length, 1 << 20, 100_000, 12]) {
      own!.set(data.subarray(0, length));
      const r = codec(own!.subarray(0, length), output);
      const frame = Buffer.from(output.subarray(0, r as number));
      expect(frame.equals(await run(wasm, data.subarray(0, length))), String(length)).toBe(true);
      expect(lz4Decode(frame).equals(data.subarray(0, length))).toBe(true);
      // The input is left as it was.
      expect(Buffer.from(own!.subarray(0, length)).equals(data.subarray(0, length))).toBe(true);
    }
    expect(createChunkCodec(require, js).inputBuffer).toBeUndefined();
  });

  it('writes the same frames on worker threads', async () => {
    const chunk = 64 * 1024;
    const pool = new CompressionPool(1);
    try {
      const c = new ParallelCompressor('lz4', { threads: 1, chunkBytes: chunk, pool });
      const out: Buffer[] = [];
      await pipeline(
        Readable.from([input]),
        c,
        new Writable({
          write(b: Buffer, _e, cb) {
            out.push(b);
            cb();
          },
        }),
      );
      const expected: Buffer[] = [];
      for (let i = 0; i < input.length; i += chunk) expected.push(await run(wasm, input.subarray(i, i + chunk)));
      expect(Buffer.concat(out).equals(Buffer.concat(expected))).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('falls back to the JavaScript compressor where WebAssembly cannot run (node --jitless)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgbb-lz4-jitless-'));
    try {
      writeFileSync(join(dir, 'input'), input);
      writeFileSync(
        join(dir, 'run.cjs'),
        `const fs = require('node:fs');
const factory = new Function('return (' + ${JSON.stringify(CHUNK_CODEC_SOURCE)} + ');')();
const codec = factory(require, { algorithm: 'lz4', level: 1, longDistance: false, zstdBuiltin: false }, undefined, false);
const input = fs.readFileSync(process.argv[2]);
const output = new Uint8Array(${compressedBound(input.length)});
const r = codec(input, output);
process.stdout.write(typeof r === 'number' ? output.subarray(0, r) : r);
`,
      );
      const frame = execFileSync(process.execPath, ['--jitless', join(dir, 'run.cjs'), join(dir, 'input')], {
        maxBuffer: 1 << 26,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(frame.equals(await run(js, input))).toBe(true);
      expect(lz4Decode(frame).equals(input)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
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

  it('gzip on the thread pool: four chunks in flight, then four more on the same streams, each one member', async () => {
    const codec = createChunkCodec(require, { ...base, algorithm: 'gzip' }, true);
    const parts = [0, 1, 2, 3].map((i) => input.subarray(i * 200_000, i * 200_000 + 150_000 + i));
    for (let round = 0; round < 2; round++) {
      const outputs = parts.map((p) => new Uint8Array(compressedBound(p.length)));
      const results = await Promise.all(parts.map((p, i) => codec(p, outputs[i]!)));
      results.forEach((r, i) => {
        expect(typeof r).toBe('number');
        expect(gunzipSync(outputs[i]!.subarray(0, r as number)).equals(parts[i]!)).toBe(true);
      });
    }
    // An output buffer too small: the member comes back in memory of its own.
    const small = await codec(parts[0]!, new Uint8Array(100));
    expect(small).toBeInstanceOf(Uint8Array);
    expect(gunzipSync(small as Uint8Array).equals(parts[0]!)).toBe(true);
  });

  it('zstd: frames decode with zstd -d', async () => {
    const config: ChunkCodecConfig = { ...base, algorithm: 'zstd', level: 3, zstdBuiltin: hasBuiltinZstd() };
    if (!config.zstdBuiltin) config.zstdModule = require.resolve('@mongodb-js/zstd');
    const a = await run(config, input);
    const b = await run(config, input.subarray(0, 1000), 10);
    expect(referenceDecompress('zstd', Buffer.concat([a, b])).equals(Buffer.concat([input, input.subarray(0, 1000)]))).toBe(true);
  });
});
