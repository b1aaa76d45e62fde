// The compressed segment sink's files, byte for byte: each is the segment cut into chunks of the
// method's default size counted from the segment's start, each chunk compressed on its own by the
// method's one-chunk codec, the results concatenated (an empty segment: one empty member or frame).
// That is what the sink wrote before its chunk loop moved into DirectCompressor, and `reference`
// below computes it from the whole segment at once, so a change in where chunks are cut or how they
// are compressed shows here, whatever the splits of the writes. A codec failure is injected through
// createChunkCodec (the one factory every compressor calls) to check the typed error.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { CompressedSegmentSink } from '../../../src/archive/compressed-sink.js';
import { chunkCodecConfig } from '../../../src/compress/backends.js';
import type * as CodecModule from '../../../src/compress/codec.js';
import { DEFAULT_CHUNK_BYTES } from '../../../src/compress/parallel.js';
import { resolveCompression } from '../../../src/compress/spec.js';
import { CompressionError } from '../../../src/errors.js';
import { mixedData } from '../compress/fixtures.js';
import { chunked, splits } from '../helpers/splits.js';

/** When armed, the `failAt`-th chunk compressed (counted from arming) fails, thrown or rejected. */
const injected = vi.hoisted(() => ({ failAt: 0, calls: 0, async: false, holdAt: 0, release: undefined as (() => void) | undefined }));

vi.mock(import('../../../src/compress/codec.js'), async (importOriginal) => {
  const actual = await importOriginal();
  const createChunkCodec: typeof CodecModule.createChunkCodec = (req, config, pool) => {
    const codec = actual.createChunkCodec(req, config, pool);
    return (input, output) => {
      if (injected.holdAt > 0 && ++injected.calls === injected.holdAt) {
        // Held until the test releases it: a chunk still on libuv's pool when the sink is aborted.
        return new Promise<Uint8Array | number>((resolve) => {
          injected.release = () => resolve(codec(input, output));
        });
      }
      if (injected.failAt > 0 && ++injected.calls === injected.failAt) {
        const err = new Error('boom');
        if (injected.async) return Promise.reject(err);
        throw err;
      }
      return codec(input, output);
    };
  };
  return { ...actual, createChunkCodec };
});

const { createChunkCodec, compressedBound } = await vi.importActual<typeof CodecModule>('../../../src/compress/codec.js');
const require = createRequire(import.meta.url);

type Method = 'gzip' | 'lz4' | 'zstd';
const METHODS: Method[] = ['gzip', 'lz4', 'zstd'];
const EXT = { gzip: '.gz', lz4: '.lz4', zstd: '.zst' } as const;
const SEG = 1024 * 1024;
const NAME = '000000010000000000000007';
const NEXT = '000000010000000000000008';

/** The file the sink writes for a segment of `bytes`, computed from the whole segment. */
async function reference(method: Method, bytes: Buffer): Promise<Buffer> {
  const chunk = DEFAULT_CHUNK_BYTES[method];
  const codec = createChunkCodec(require, chunkCodecConfig(resolveCompression(method)));
  const parts: Buffer[] = [];
  const pieces = bytes.length === 0 ? [bytes] : chunked(bytes, chunk);
  for (const piece of pieces) {
    const output = new Uint8Array(compressedBound(chunk));
    const r = await codec(piece, output);
    parts.push(Buffer.from(typeof r === 'number' ? output.subarray(0, r) : r));
  }
  return Buffer.concat(parts);
}

function newSink(method: Method): { dir: string; sink: CompressedSegmentSink } {
  const dir = join(mkdtempSync(join(tmpdir(), 'pgbb-csink-')), 'wal');
  return { dir, sink: new CompressedSegmentSink({ directory: dir, compression: resolveCompression(method), fsync: false }) };
}

async function writeAll(sink: CompressedSegmentSink, pieces: Buffer[]): Promise<void> {
  for (const p of pieces) await sink.write(p);
}

const data = mixedData(SEG, 3);
const chunkOf = (method: Method) => DEFAULT_CHUNK_BYTES[method];

describe.each(METHODS)('CompressedSegmentSink bytes (%s)', (method) => {
  const ext = EXT[method];
  const chunk = chunkOf(method);

  it('a complete segment is the reference at every split of the writes, chunk-sized writes included', async () => {
    const expected = await reference(method, data);
    const feeds: [string, Buffer[]][] = [
      ...splits(data, { byteByByteMax: 0, seeds: [1, 2, 3] }),
      ['chunk-sized writes', chunked(data, chunk)],
      ['half-chunk writes', chunked(data, chunk / 2)],
      ['one byte short of each chunk boundary, then across', chunked(data, chunk - 1)],
    ];
    for (const [name, pieces] of feeds) {
      const { dir, sink } = newSink(method);
      await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
      await writeAll(sink, pieces);
      expect(await sink.flush(), name).toBe(false);
      await sink.closeSegment('complete');
      await sink.finish();
      expect(readdirSync(dir), name).toEqual([`${NAME}${ext}`]);
      expect(readFileSync(join(dir, `${NAME}${ext}`)).equals(expected), name).toBe(true);
    }
  });

  it('a segment closed part-way: mid-chunk, on a chunk boundary, and empty', async () => {
    for (const length of [2 * chunk + 12_345, 2 * chunk, 1, 0]) {
      const bytes = data.subarray(0, length);
      const { dir, sink } = newSink(method);
      await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
      await writeAll(sink, chunked(bytes, 100_000));
      await sink.closeSegment('partial');
      await sink.finish();
      const file = `${NAME}${ext}.partial`;
      expect(readdirSync(dir), `${length}`).toEqual([file]);
      expect(readFileSync(join(dir, file)).equals(await reference(method, bytes)), `${length}`).toBe(true);
    }
  });

  it('segments one after another through one sink: each starts its chunks afresh', async () => {
    const { dir, sink } = newSink(method);
    const first = data.subarray(0, 3 * chunk + 777); // ends mid-chunk, closed as partial
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await writeAll(sink, chunked(first, 65_537));
    await sink.closeSegment('partial');
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await writeAll(sink, chunked(data, 70_001));
    await sink.closeSegment('complete');
    const second = Buffer.from(data).reverse();
    await sink.openSegment({ name: NEXT, segmentSize: SEG, startOffset: 0 });
    await writeAll(sink, chunked(second, 33_333));
    await sink.closeSegment('complete');
    await sink.finish();
    expect(readdirSync(dir).sort()).toEqual([`${NAME}${ext}`, `${NEXT}${ext}`]);
    expect(readFileSync(join(dir, `${NAME}${ext}`)).equals(await reference(method, data))).toBe(true);
    expect(readFileSync(join(dir, `${NEXT}${ext}`)).equals(await reference(method, second))).toBe(true);
  });

  it('an abort mid-segment keeps the .partial with the whole chunks written, not the one being gathered', async () => {
    const { dir, sink } = newSink(method);
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await writeAll(sink, chunked(data.subarray(0, 2 * chunk + 12_345), 50_000));
    await sink.abort(new Error('cut'));
    const file = `${NAME}${ext}.partial`;
    expect(readdirSync(dir)).toEqual([file]);
    expect(readFileSync(join(dir, file)).equals(await reference(method, data.subarray(0, 2 * chunk)))).toBe(true);
    await expect(sink.openSegment({ name: NEXT, segmentSize: SEG, startOffset: 0 })).rejects.toThrow(/aborted/);
  });
});

describe('CompressedSegmentSink when the codec fails', () => {
  for (const [method, async] of [
    ['gzip', false],
    ['lz4', false],
    ['zstd', true],
  ] as const) {
    it(`${method} (${async ? 'rejected' : 'thrown'}): a write rejects with CompressionError, the chunks before it stay written`, async () => {
      const chunk = chunkOf(method);
      const { dir, sink } = newSink(method);
      Object.assign(injected, { failAt: 3, calls: 0, async });
      try {
        await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
        const err = await writeAll(sink, chunked(data, 100_000)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(CompressionError);
        expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION', algorithm: method });
        expect((err as Error).message).toBe(`${method} compression failed: boom`);
        await sink.abort(err);
        const file = `${NAME}${EXT[method]}.partial`;
        expect(readdirSync(dir)).toEqual([file]);
        expect(readFileSync(join(dir, file)).equals(await reference(method, data.subarray(0, 2 * chunk)))).toBe(true);
      } finally {
        injected.failAt = 0;
      }
    });
  }

  it('a chunk that comes back after abort() is not written: the descriptor is closed (and may be reused)', async () => {
    const chunk = chunkOf('zstd');
    const { dir, sink } = newSink('zstd');
    Object.assign(injected, { holdAt: 3, calls: 0 });
    try {
      await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
      const pending = writeAll(sink, chunked(data, 100_000)).then(
        () => undefined,
        (e: unknown) => e,
      );
      await vi.waitFor(() => expect(injected.release).toBeDefined());
      await sink.abort(new Error('stop'));
      injected.release!();
      expect(await pending).toMatchObject({ message: 'the WAL sink was aborted' });
      const file = `${NAME}.zst.partial`;
      expect(readdirSync(dir)).toEqual([file]);
      expect(readFileSync(join(dir, file)).equals(await reference('zstd', data.subarray(0, 2 * chunk)))).toBe(true);
    } finally {
      Object.assign(injected, { holdAt: 0, release: undefined });
    }
  });

  it('a failure compressing the last chunk: closeSegment rejects and the segment is not renamed complete', async () => {
    const { dir, sink } = newSink('gzip');
    Object.assign(injected, { failAt: 4, calls: 0, async: false });
    try {
      await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
      await writeAll(sink, chunked(data.subarray(0, 3 * chunkOf('gzip') + 5), 100_000));
      await expect(sink.closeSegment('partial')).rejects.toMatchObject({
        code: 'ERR_PGBB_COMPRESSION',
        message: 'gzip compression failed: boom',
      });
      expect(readdirSync(dir)).toEqual([`${NAME}.gz.partial`]);
      // The sink carries on with the next segment, from a clean chunk.
      await sink.openSegment({ name: NEXT, segmentSize: SEG, startOffset: 0 });
      await writeAll(sink, chunked(data, 99_999));
      await sink.closeSegment('complete');
      expect(readFileSync(join(dir, `${NEXT}.gz`)).equals(await reference('gzip', data))).toBe(true);
    } finally {
      injected.failAt = 0;
    }
  });
});
