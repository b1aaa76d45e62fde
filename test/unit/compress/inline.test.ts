// InlineCompressor: chunked compression driven from this thread. Its output must be what the parallel
// compressor makes with the same chunk size (so both read the same everywhere), whatever the splits of
// the input, and the caller may reuse what it wrote as soon as write() is done.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { hasBuiltinZstd } from '../../../src/compress/backends.js';
import { compressesInline, InlineCompressor } from '../../../src/compress/inline.js';
import { Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';
import { ParallelCompressor } from '../../../src/compress/parallel.js';
import { resolveCompression } from '../../../src/compress/spec.js';
import { CompressionError } from '../../../src/errors.js';
import { splits } from '../helpers/splits.js';
import { COMPRESS_SPLITS, mixedData, referenceDecompress } from './fixtures.js';

const CHUNK = 64 * 1024;

/** Everything the compressor emits for `pieces`, each emitted view copied at once (it is reused). */
async function inline(spec: string, pieces: Buffer[], chunkBytes = CHUNK): Promise<{ out: Buffer; emitted: number; c: InlineCompressor }> {
  const c = new InlineCompressor(spec, { chunkBytes });
  const parts: Buffer[] = [];
  const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
  for (const p of pieces) await c.write(p, emit);
  await c.end(emit);
  return { out: Buffer.concat(parts), emitted: parts.length, c };
}

async function parallel(spec: string, data: Buffer, chunkBytes = CHUNK): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([data]),
    new ParallelCompressor(spec, { threads: 0, chunkBytes }),
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

describe('InlineCompressor (lz4)', () => {
  const data = mixedData(5 * CHUNK + 12_345);

  it('writes what ParallelCompressor writes, one frame per chunk, at every split of the input', async () => {
    const expected = await parallel('lz4', data);
    for (const [name, pieces] of splits(data, COMPRESS_SPLITS)) {
      const { out, emitted, c } = await inline('lz4', pieces);
      expect(out.equals(expected), name).toBe(true);
      expect(emitted, name).toBe(6);
      expect(c.bytesIn, name).toBe(data.length);
      expect(c.bytesOut, name).toBe(out.length);
    }
    expect(lz4Decode(expected).equals(data)).toBe(true);
    expect(referenceDecompress('lz4', expected).equals(data)).toBe(true);
  });

  it('copies what it is given: the caller may overwrite a chunk as soon as write() returns, which it does without a promise', () => {
    const c = new InlineCompressor('lz4', { chunkBytes: CHUNK });
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
    const c = new InlineCompressor('lz4');
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
    const c = new InlineCompressor('lz4', { chunkBytes: CHUNK });
    const failure = new Error('ENOSPC');
    expect(() =>
      c.write(data, () => {
        throw failure;
      }),
    ).toThrow(failure);
  });
});

describe('which specs compress inline', () => {
  it('lz4 and zstd; not zstd with worker threads asked, nor gzip, nor server specs', () => {
    expect(compressesInline(resolveCompression('lz4'))).toBe(true);
    expect(compressesInline(resolveCompression('zstd'))).toBe(true);
    expect(compressesInline(resolveCompression('gzip:1'))).toBe(false);
    expect(compressesInline(resolveCompression('server-lz4'))).toBe(false);
    expect(compressesInline(resolveCompression('zstd:workers=2'))).toBe(false);
    expect(() => new InlineCompressor('gzip')).toThrow(CompressionError);
    expect(() => new InlineCompressor('lz4', { chunkBytes: 1000 })).toThrow(/chunkBytes/);
  });

  it(`zstd (${hasBuiltinZstd() ? "Node's, synchronous" : 'the package, asynchronous'}): what ParallelCompressor writes, in order, read by the zstd tool`, async () => {
    const data = mixedData(7 * CHUNK + 777);
    const expected = await parallel('zstd', data);
    for (const [name, pieces] of splits(data, { ...COMPRESS_SPLITS, seeds: [1, 2] })) {
      const { out, emitted } = await inline('zstd', pieces);
      expect(out.equals(expected), name).toBe(true);
      expect(emitted, name).toBe(8);
    }
    expect(referenceDecompress('zstd', expected).equals(data)).toBe(true);
  });

  it.runIf(!hasBuiltinZstd())(
    'zstd from the package: a write waits for the oldest chunk once two are in flight, and keeps its bytes until then',
    async () => {
      const c = new InlineCompressor('zstd', { chunkBytes: CHUNK, maxInFlight: 2 });
      const data = mixedData(4 * CHUNK);
      const parts: Buffer[] = [];
      const emit = (b: Uint8Array) => parts.push(Buffer.from(b));
      expect(c.write(data.subarray(0, CHUNK), emit)).toBeUndefined();
      const scratch = Buffer.from(data.subarray(CHUNK, 3 * CHUNK));
      const wait = c.write(scratch, emit);
      expect(wait).toBeInstanceOf(Promise);
      await wait;
      expect(parts.length).toBeGreaterThanOrEqual(1);
      scratch.fill(0);
      await c.write(data.subarray(3 * CHUNK), emit);
      await c.end(emit);
      expect(referenceDecompress('zstd', Buffer.concat(parts)).equals(data)).toBe(true);
    },
  );
});
