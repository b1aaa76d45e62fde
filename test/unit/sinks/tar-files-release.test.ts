// TarFilesSink and ArchiveChunks.release(): an archive stored as received hands its receive buffers
// back after each batch is written (so a backup's memory stays flat), and only then; one it compresses
// after every chunk, which the compressor copied. Either way the file holds exactly the archive.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Lz4FrameDecoder } from '../../../src/compress/lz4-frame.js';
import { TarFilesSink } from '../../../src/sinks/tar-files.js';
import { baseTar, tempDir } from './fixtures.js';
import { reusingSource } from './reusing-source.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
const BASE = { name: 'base.tar', tablespacePath: '', terminated: true };

describe('TarFilesSink with a releasing source', () => {
  it('releases after each batch it wrote, never while a batch holds chunks, and the file is the archive', async () => {
    const archive = baseTar();
    const dir = join(tempDir(), 'out');
    roots.push(dir);
    const source = reusingSource(archive, 700);
    const sink = new TarFilesSink({ directory: dir, noSync: true, writeBatchBytes: 2100 });
    await sink.writeArchive(BASE, source);
    await sink.finish();
    expect(readFileSync(join(dir, 'base.tar')).equals(archive)).toBe(true);
    const chunks = Math.ceil(archive.length / 700);
    // A batch is written every third chunk: only then may the buffers be refilled.
    expect(source.releases).toBe(Math.floor(chunks / 3));
    expect(source.buffers.size).toBeLessThan(chunks);
  });

  it('releases after every chunk of an archive it compresses on this thread (lz4), and adds the marker 13/14 leave out', async () => {
    const body = baseTar({ terminated: false });
    const dir = join(tempDir(), 'out');
    roots.push(dir);
    const source = reusingSource(body, 700);
    const sink = new TarFilesSink({ directory: dir, noSync: true, compression: 'lz4' });
    await sink.writeArchive({ ...BASE, terminated: false }, source);
    await sink.finish();
    const decoder = new Lz4FrameDecoder();
    const out = Buffer.concat(decoder.push(readFileSync(join(dir, 'base.tar.lz4'))));
    decoder.end();
    expect(out.equals(baseTar())).toBe(true);
    expect(out.equals(body)).toBe(false);
    expect(source.releases).toBe(Math.ceil(body.length / 700));
    // Every chunk reused the one scratch buffer.
    expect(source.buffers.size).toBe(1);
  });

  it('releases after every chunk of an archive it compresses on worker threads (gzip), and the file decompresses to the archive', async () => {
    const archive = baseTar();
    const dir = join(tempDir(), 'out');
    roots.push(dir);
    const source = reusingSource(archive, 700);
    const sink = new TarFilesSink({ directory: dir, noSync: true, compression: 'gzip' });
    await sink.writeArchive(BASE, source);
    await sink.finish();
    expect(gunzipSync(readFileSync(join(dir, 'base.tar.gz'))).equals(archive)).toBe(true);
    expect(source.releases).toBe(Math.ceil(archive.length / 700));
    expect(source.buffers.size).toBe(1);
  });
});
