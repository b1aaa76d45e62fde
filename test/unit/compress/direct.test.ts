// DirectCompressor: chunked compression written through a callback, in order. Its output must be what
// the parallel compressor makes with the same threads and chunk size (so both read the same
// everywhere), whatever the splits of the input, and the caller may reuse what it wrote as soon as
// write() is done.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { hasBuiltinZstd } from '../../../src/compress/backends.js';
import { DirectCompressor, type DirectCompressorOptions } from '../../../src/compress/direct.js';
import { Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';
import { ParallelCompressor } from '../../../src/compress/parallel.js';
import { CompressionPool } from '../../../src/compress/worker.js';
import { CompressionError } from '../../../src/errors.js';
import { splits } from '../helpers/splits.js';
import { COMPRESS_SPLITS, mixedData, referenceDecompress } from './fixtures.js';

const CHUNK = 64 * 1024;
const pool = new CompressionPool(2);
afterAll(() => pool.close());

/** Everything the compressor emits for `pieces`, each emitted view copied at once (it is reused). */
async function direct(
  spec: string,
  pieces: Buffer[],
  options: DirectCompressorOptions = {},
): Promise<{ out: Buffer; emitted: number; c: DirectCompressor }> {
  const c = new DirectCompressor(spec, { chunkBytes: CHUNK, pool, ...options });
  const parts: Buffer[] = [];
  const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
  for (const p of pieces) await c.write(p, emit);
  await c.end(emit);
  return { out: Buffer.concat(parts), emitted: parts.length, c };
}

async function parallel(spec: string, data: Buffer, threads: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([data]),
    new ParallelCompressor(spec, { threads, chunkBytes: CHUNK, pool }),
    new Writable({
      write(b: Buffer, _e, cb) {
        out.push(b);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

function lz4Decode(bytes: Buffer): Buffer {
  const d = new Lz4FrameDecoder();
  const out = d.push(bytes);
  d.end();
  return Buffer.concat(out);
}

describe('DirectCompressor (lz4)', () => {
  const data = mixedData(5 * CHUNK + 12_345);

  it('writes what ParallelCompressor writes, one frame per chunk, at every split of the input', async () => {
    const expected = await parallel('lz4', data, 0);
    for (const [name, pieces] of splits(data, COMPRESS_SPLITS)) {
      const { out, emitted, c } = await direct('lz4', pieces);
      expect(out.equals(expected), name).toBe(true);
      expect(emitted, name).toBe(6);
      expect(c.bytesIn, name).toBe(data.length);
      expect(c.bytesOut, name).toBe(out.length);
    }
    expect(lz4Decode(expected).equals(data)).toBe(true);
    expect(referenceDecompress('lz4', expected).equals(data)).toBe(true);
  });

  it('copies what it is given: the caller may overwrite a chunk as soon as write() returns, which it does without a promise', () => {
    const c = new DirectCompressor('lz4', { chunkBytes: CHUNK });
    const scratch = Buffer.alloc(1000);
    const parts: Buffer[] = [];
    const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
    for (let at = 0; at < data.length; at += scratch.length) {
      const n = data.copy(scratch, 0, at, at + scratch.length);
      expect(c.write(scratch.subarray(0, n), emit)).toBeUndefined();
      scratch.fill(0xee);
    }
    void c.end(emit);
    expect(lz4Decode(Buffer.concat(parts)).equals(data)).toBe(true);
  });

  it('makes one empty frame from an empty input, and end() twice emits nothing more', async () => {
    const c = new DirectCompressor('lz4');
    const parts: Buffer[] = [];
    const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
    await c.write(Buffer.alloc(0), emit);
    await c.end(emit);
    await c.end(emit);
    expect(parts).toHaveLength(1);
    expect(lz4Decode(parts[0]!).length).toBe(0);
    expect(referenceDecompress('lz4', parts[0]!).length).toBe(0);
    expect(() => c.write(Buffer.from('x'), emit)).toThrow(CompressionError);
  });

  it('passes an error thrown by emit (a failed write) to the caller unchanged', () => {
    const c = new DirectCompressor('lz4', { chunkBytes: CHUNK });
    const failure = new Error('ENOSPC');
    expect(() =>
      c.write(data, () => {
        throw failure;
      }),
    ).toThrow(failure);
  });
});

describe("DirectCompressor on worker threads, libuv's pool and zstd", () => {
  const data = mixedData(7 * CHUNK + 777);
  for (const [spec, threads] of [
    ['gzip:1', 2],
    ['gzip', 0],
    ['zstd:workers=2', undefined],
    ['zstd', undefined],
  ] as const) {
    const where =
      threads === undefined ? (spec.includes('workers') ? 'its worker threads' : 'the default thread') : `${threads} worker threads`;
    it(`${spec} on ${where}: what ParallelCompressor writes, in order, read by the tool`, async () => {
      const c = new DirectCompressor(spec, { chunkBytes: CHUNK, pool, ...(threads === undefined ? {} : { threads }) });
      const expected = await parallel(spec, data, c.threads);
      for (const [name, pieces] of splits(data, { ...COMPRESS_SPLITS, seeds: [1, 2] })) {
        const { out, emitted } = await direct(spec, pieces, threads === undefined ? {} : { threads });
        expect(out.equals(expected), name).toBe(true);
        expect(emitted, name).toBe(8);
      }
      expect(referenceDecompress(spec.startsWith('gzip') ? 'gzip' : 'zstd', expected).equals(data)).toBe(true);
    });
  }

  it('defaults: gzip on one worker per CPU, zstd on its workers or none, lz4 none; the zstd package in 1 MiB chunks', () => {
    expect(new DirectCompressor('gzip').threads).toBeGreaterThan(0);
    expect(new DirectCompressor('zstd:workers=3').threads).toBe(3);
    expect(new DirectCompressor('zstd').threads).toBe(0);
    expect(new DirectCompressor('lz4').threads).toBe(0);
    expect(new DirectCompressor('lz4').chunkBytes).toBe(256 * 1024);
    expect(new DirectCompressor('zstd').chunkBytes).toBe(hasBuiltinZstd() ? 256 * 1024 : 1024 * 1024);
  });

  it('a write waits for the oldest chunk once the window is full, and keeps its bytes until then', async () => {
    const c = new DirectCompressor('gzip:1', { chunkBytes: CHUNK, threads: 1, maxInFlight: 2, pool });
    const input = mixedData(4 * CHUNK);
    const parts: Buffer[] = [];
    const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
    expect(c.write(input.subarray(0, CHUNK), emit)).toBeUndefined();
    const scratch = Buffer.from(input.subarray(CHUNK, 3 * CHUNK));
    const wait = c.write(scratch, emit);
    expect(wait).toBeInstanceOf(Promise);
    expect(parts).toHaveLength(0);
    await wait;
    expect(parts.length).toBeGreaterThanOrEqual(1);
    scratch.fill(0);
    await c.write(input.subarray(3 * CHUNK), emit);
    await c.end(emit);
    expect(referenceDecompress('gzip', Buffer.concat(parts)).equals(input)).toBe(true);
  });

  it('gzip without workers and one chunk in flight compresses on this thread: each full chunk is emitted within write()', () => {
    const c = new DirectCompressor('gzip:1', { chunkBytes: CHUNK, threads: 0, maxInFlight: 1 });
    const parts: Buffer[] = [];
    const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
    expect(c.write(data.subarray(0, 2 * CHUNK + 5), emit)).toBeUndefined();
    expect(parts).toHaveLength(2);
    expect(c.write(data.subarray(2 * CHUNK + 5), emit)).toBeUndefined();
    void c.end(emit);
    expect(parts).toHaveLength(8);
    expect(referenceDecompress('gzip', Buffer.concat(parts)).equals(data)).toBe(true);
  });

  it('reset() starts a new stream on the same buffers: after end(), or dropping a stream part-way', async () => {
    for (const [spec, options] of [
      ['gzip:1', { threads: 1, maxInFlight: 2 }],
      ['zstd', { threads: 0, maxInFlight: 1 }],
      ['lz4', {}],
    ] as const) {
      const { out: expected } = await direct(spec, [data], options);
      const c = new DirectCompressor(spec, { chunkBytes: CHUNK, pool, ...options });
      let parts: Buffer[] = [];
      const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
      await c.write(data.subarray(0, 3 * CHUNK + 100), emit);
      c.reset(); // part-way: the 100 bytes gathered (and any chunk in flight) are dropped
      parts = [];
      for (const [round, piece] of [data.subarray(0, 777), data.subarray(777)].entries()) {
        await c.write(piece, emit);
        if (round === 0) continue;
        await c.end(emit);
      }
      expect(Buffer.concat(parts).equals(expected), spec).toBe(true);
      expect(c.bytesIn, spec).toBe(data.length);
      c.reset(); // after end(): writes are taken again, and an empty stream is one empty member or frame
      parts = [];
      await c.end(emit);
      expect(parts, spec).toHaveLength(1);
      expect(referenceDecompress(c.spec.algorithm as 'gzip' | 'lz4' | 'zstd', parts[0]!).length).toBe(0);
    }
  });

  it('refuses none and server specs, and bad sizes', () => {
    expect(() => new DirectCompressor('none')).toThrow(CompressionError);
    expect(() => new DirectCompressor('server-lz4')).toThrow(CompressionError);
    expect(() => new DirectCompressor('lz4', { chunkBytes: 1000 })).toThrow(/chunkBytes/);
    expect(() => new DirectCompressor('gzip', { maxInFlight: 0 })).toThrow(/maxInFlight/);
    expect(() => new DirectCompressor('gzip', { threads: -1 })).toThrow(/threads/);
  });
});
