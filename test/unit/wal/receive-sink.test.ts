// The compressed segment sink: .gz/.lz4/.zst written as NAME.EXT.partial, renamed when complete,
// decompressing to exactly the bytes written; flush() never claims durability; modes 0600; every store's
// sink lets the streamer reuse its receive buffers.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CompressedSegmentSink } from '../../../src/archive/compressed-sink.js';
import { DirectoryWalStore } from '../../../src/archive/store.js';
import { decompressArchive } from '../../../src/compress/archive.js';
import { resolveCompression } from '../../../src/compress/spec.js';

const SEG = 1024 * 1024;
const NAME = '000000010000000000000007';

async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  yield readFileSync(path);
}

function segmentBytes(): Buffer {
  const b = Buffer.alloc(SEG);
  for (let i = 0; i < SEG; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
}

describe('CompressedSegmentSink', () => {
  it('writes a gzip segment as .gz.partial, then .gz when complete', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pgbb-rsink-')), 'wal');
    const sink = new CompressedSegmentSink({ directory: dir, compression: resolveCompression('gzip'), fsync: false });
    const data = segmentBytes();
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    expect(readdirSync(dir)).toEqual([`${NAME}.gz.partial`]);
    for (let at = 0; at < SEG; at += 7777) await sink.write(data.subarray(at, Math.min(SEG, at + 7777)));
    expect(await sink.flush()).toBe(false);
    await sink.closeSegment('complete');
    await sink.finish();
    expect(readdirSync(dir)).toEqual([`${NAME}.gz`]);
    expect(gunzipSync(readFileSync(join(dir, `${NAME}.gz`))).equals(data)).toBe(true);
    expect(statSync(join(dir, `${NAME}.gz`)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('keeps an incomplete lz4 segment as .lz4.partial, and the store measures complete ones decompressed', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pgbb-rsink-')), 'wal');
    const store = new DirectoryWalStore({ directory: dir, compression: 'lz4', fsync: false });
    await store.prepare();
    const data = segmentBytes();
    let sink = store.openSink();
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(data.subarray(0, 100_000));
    await sink.closeSegment('partial');
    await sink.finish();
    expect(readdirSync(dir)).toEqual([`${NAME}.lz4.partial`]);
    sink = store.openSink();
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(data);
    await sink.closeSegment('complete');
    await sink.finish();
    const files = await store.list();
    expect(files.map((f) => f.name)).toEqual([`${NAME}.lz4`]);
    expect(await store.uncompressedBytes(files[0]!)).toBe(SEG);
  });

  it.each(['lz4', 'gzip'] as const)(
    'compresses segments larger than a chunk, one after another, to exactly their bytes (%s)',
    async (method) => {
      const dir = join(mkdtempSync(join(tmpdir(), 'pgbb-rsink-')), 'wal');
      const big = 4 * SEG; // four compression chunks
      const sink = new CompressedSegmentSink({ directory: dir, compression: resolveCompression(method), fsync: false });
      const names = ['000000010000000000000004', '000000010000000000000005', '000000010000000000000006'];
      const contents: Buffer[] = [];
      for (const [i, name] of names.entries()) {
        const data = Buffer.alloc(big);
        for (let at = 0; at < big; at += 4) data.writeUInt32LE((at * (2654435761 + i)) >>> 0, at);
        // The last one stops part-way, inside its third chunk.
        const length = i === names.length - 1 ? 2 * SEG + 12_345 : big;
        contents.push(data.subarray(0, length));
        await sink.openSegment({ name, segmentSize: big, startOffset: 0 });
        for (let at = 0; at < length; at += 131_000) await sink.write(data.subarray(at, Math.min(length, at + 131_000)));
        await sink.closeSegment(i === names.length - 1 ? 'partial' : 'complete');
      }
      await sink.finish();
      const ext = method === 'lz4' ? '.lz4' : '.gz';
      expect(readdirSync(dir).sort()).toEqual([`${names[0]}${ext}`, `${names[1]}${ext}`, `${names[2]}${ext}.partial`]);
      for (const [i, name] of names.entries()) {
        const file = `${name}${ext}${i === names.length - 1 ? '.partial' : ''}`;
        const parts: Buffer[] = [];
        for await (const c of decompressArchive(fileChunks(join(dir, file)), `${name}${ext}`)) parts.push(Buffer.from(c));
        expect(Buffer.concat(parts).equals(contents[i]!), file).toBe(true);
      }
    },
  );

  it('writes a valid empty file for a segment closed before any WAL', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pgbb-rsink-')), 'wal');
    const sink = new CompressedSegmentSink({ directory: dir, compression: resolveCompression('gzip'), fsync: false });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.closeSegment('partial');
    expect(gunzipSync(readFileSync(join(dir, `${NAME}.gz.partial`))).length).toBe(0);
  });

  it('removes a stale .partial of another compression once the segment is complete', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pgbb-rsink-')), 'wal');
    const gz = new DirectoryWalStore({ directory: dir, compression: 'gzip', fsync: false });
    await gz.prepare();
    let sink = gz.openSink();
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(Buffer.alloc(10));
    await sink.abort(new Error('cut'));
    expect(readdirSync(dir)).toEqual([`${NAME}.gz.partial`]);
    sink = new DirectoryWalStore({ directory: dir, fsync: false }).openSink();
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(segmentBytes());
    await sink.closeSegment('complete');
    expect(readdirSync(dir)).toEqual([NAME]);
  });

  it("every store's sink is done with each message's bytes once written, so the receive buffers are handed back", () => {
    // Without the flag the streamer leaves every receive buffer to the garbage collector: the plain
    // directory's wrapper once dropped it, and a gigabyte of WAL took 2,743 fresh 512 KiB buffers.
    for (const compression of ['none', 'gzip', 'lz4', 'zstd'] as const) {
      const dir = join(mkdtempSync(join(tmpdir(), 'pgbb-rsink-')), 'wal');
      expect(new DirectoryWalStore({ directory: dir, compression, fsync: false }).openSink().writesDataAtOnce, compression).toBe(true);
    }
  });
});
