import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { compressedBound, createChunkCodec, type ChunkCodecConfig } from '../../../src/compress/codec.js';
import { hasBuiltinZstd } from '../../../src/compress/backends.js';
import { Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';
import { ParallelCompressor } from '../../../src/compress/parallel.js';
import { CompressionPool } from '../../../src/compress/worker.js';
import { xxhash32 } from '../../../src/compress/xxhash32.js';
import { splits } from '../helpers/splits.js';
import { mixedData, referenceDecompress } from './fixtures.js';

const require = createRequire(import.meta.url);
const base = { level: 1, longDistance: false, zstdBuiltin: false } as const;

async function run(
  config: ChunkCodecConfig,
  input: Uint8Array,
  outputBytes = compressedBound(input.length),
  req: NodeJS.Require = require,
): Promise<Buffer> {
  const codec = createChunkCodec(req, config);
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
  const jsOnly = requireWithout('missing');
  for (const [name, input] of LZ4_CASES) {
    it(`${name}: our decoder and lz4 -d give the input back`, async () => {
      const frame = await run({ ...base, algorithm: 'lz4' }, input, undefined, jsOnly);
      expect(lz4Decode(frame).equals(input)).toBe(true);
      expect(referenceDecompress('lz4', frame).equals(input)).toBe(true);
      // Never much larger than the input: incompressible blocks are stored.
      expect(frame.length).toBeLessThanOrEqual(input.length + 7 + 4 * (Math.ceil(input.length / (4 << 20)) + 2));
    });
  }

  it('writes frames like pg_basebackup: no content or block checksum, the smallest block maximum, a valid header checksum', async () => {
    for (const [bytes, bd] of [
      [0, 4],
      [1 << 16, 4],
      [(1 << 16) + 1, 5],
      [1 << 18, 5],
      [1 << 20, 6],
      [(1 << 20) + 1, 7],
    ] as const) {
      const input = mixedData(bytes, bd);
      const frame = await run({ ...base, algorithm: 'lz4' }, input, undefined, jsOnly);
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
    const frame = await run({ ...base, algorithm: 'lz4' }, input, 100, jsOnly);
    expect(lz4Decode(frame).equals(input)).toBe(true);
  });

  it('reads a view at any offset (unaligned: no word compares)', async () => {
    const backing = Buffer.concat([mixedData(300_001, 9), Buffer.alloc(50_000, 'pattern')]);
    for (const offset of [1, 2, 3, 4]) {
      const input = backing.subarray(offset);
      expect(lz4Decode(await run({ ...base, algorithm: 'lz4' }, input, undefined, jsOnly)).equals(input)).toBe(true);
    }
  });
});

/** A `require` that cannot load lz4-wasm-nodejs in the given way (everything else resolves as usual). */
function requireWithout(how: 'missing' | 'broken'): NodeJS.Require {
  let dir: string | undefined;
  if (how === 'broken') {
    // A package directory whose .wasm is not WebAssembly.
    const d = mkdtempSync(join(tmpdir(), 'pgbb-lz4-wasm-broken-'));
    writeFileSync(join(d, 'lz4_wasm_nodejs_bg.wasm'), 'not WebAssembly');
    afterAll(() => rmSync(d, { recursive: true, force: true }));
    dir = d;
  }
  const resolve = (id: string): string => {
    if (id !== 'lz4-wasm-nodejs') return require.resolve(id);
    if (dir === undefined) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    return join(dir, 'lz4_wasm_nodejs.js');
  };
  return Object.assign((id: string): unknown => require(id), require, {
    resolve: Object.assign(resolve, { paths: require.resolve.paths }),
  });
}

async function frameWith(req: NodeJS.Require, input: Uint8Array): Promise<Buffer> {
  const codec = createChunkCodec(req, { ...base, algorithm: 'lz4' });
  const output = new Uint8Array(compressedBound(input.length));
  const r = await codec(input, output);
  return Buffer.from(typeof r === 'number' ? output.subarray(0, r) : r);
}

describe('lz4 chunk codec with the WebAssembly block compressor (optional package lz4-wasm-nodejs)', () => {
  const input = mixedData(3 << 20, 11);

  it("is installed here, and its blocks differ from the JavaScript compressor's (so the tests below see which one ran)", async () => {
    expect(require.resolve('lz4-wasm-nodejs')).toMatch(/lz4-wasm-nodejs/);
    const wasm = await frameWith(require, input);
    const js = await frameWith(requireWithout('missing'), input);
    expect(wasm.equals(js)).toBe(false);
    // Both LZ4's fast matching: the same ratio within 1%.
    expect(Math.abs(wasm.length - js.length)).toBeLessThan(js.length / 100);
  });

  for (const [name, data] of LZ4_CASES) {
    it(`${name}: our decoder (every split) and lz4 -d give the input back`, async () => {
      const frame = await frameWith(require, data);
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
    const frame = await frameWith(require, random);
    // Header, then one 4 MiB block maximum (BD 7): one stored block, the end mark.
    expect(frame.length).toBe(7 + 4 + random.length + 4);
    expect(frame.readUInt32LE(7)).toBe((0x80000000 | random.length) >>> 0);
    expect(frame.subarray(11, 11 + random.length).equals(random)).toBe(true);
  });

  it('is used by the worker threads too (the package resolved from the library, not the current directory)', async () => {
    const chunk = 64 * 1024;
    const pool = new CompressionPool(1);
    const cwd = process.cwd();
    try {
      process.chdir(tmpdir());
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
      for (let i = 0; i < input.length; i += chunk) expected.push(await frameWith(require, input.subarray(i, i + chunk)));
      expect(Buffer.concat(out).equals(Buffer.concat(expected))).toBe(true);
    } finally {
      process.chdir(cwd);
      await pool.close();
    }
  });

  for (const how of ['missing', 'broken'] as const) {
    const req = requireWithout(how);
    it(`falls back to the JavaScript compressor when the package is ${how}`, async () => {
      const frame = await frameWith(req, input);
      expect(lz4Decode(frame).equals(input)).toBe(true);
      expect(referenceDecompress('lz4', frame).equals(input)).toBe(true);
      expect(frame.equals(await frameWith(require, input))).toBe(false);
      expect(frame.equals(await frameWith(requireWithout('missing'), input))).toBe(true);
    });
  }
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
