// WritableSink and ArchiveChunks.release(): the sink releases the chunks only when its destination
// keeps none of them (a file-descriptor stream with nothing queued), and a source that refills its
// buffer on release() still yields an intact archive.
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WritableSink } from '../../../src/sinks/writable.js';
import { baseTar } from './fixtures.js';
import { reusingSource } from './reusing-source.js';

const BASE = { name: 'base.tar', tablespacePath: '', terminated: true };

/** A destination writing synchronously to a "file descriptor" (as process.stdout to a file does). */
function fdWritable(): { writable: Writable; data: () => Buffer } {
  const parts: Buffer[] = [];
  const writable = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        parts.push(Buffer.from(chunk)); // what the kernel would have taken
        cb();
      },
    }),
    { fd: 99 },
  );
  return { writable, data: () => Buffer.concat(parts) };
}

describe('WritableSink with a releasing source', () => {
  it('releases after each chunk written to a file-descriptor stream, and the archive is intact', async () => {
    const archive = baseTar();
    for (const holdMarker of [false, true]) {
      const out = fdWritable();
      const source = reusingSource(archive, 700);
      const sink = new WritableSink(out.writable, { injectManifest: holdMarker, end: false });
      await sink.writeArchive(BASE, source);
      await sink.finish();
      expect(out.data().equals(archive), `injectManifest: ${holdMarker}`).toBe(true);
      expect(source.releases).toBe(Math.ceil(archive.length / 700));
      expect(source.buffers.size).toBe(1);
    }
  });

  it('releases to a stream that gathers chunks only once it holds none (heldBytes 0)', async () => {
    const archive = baseTar();
    const written: Buffer[] = [];
    let batch: Buffer[] = [];
    const flush = (): void => {
      written.push(Buffer.from(Buffer.concat(batch)));
      batch = [];
    };
    let releasedWhileHeld = 0;
    const writable = new Writable({
      write(chunk: Buffer, _enc, cb) {
        batch.push(chunk); // a view, kept until the batch is written
        if (batch.length === 3) flush();
        cb();
      },
      final(cb) {
        flush();
        cb();
      },
    });
    Object.defineProperty(writable, 'heldBytes', { get: () => batch.reduce((n, b) => n + b.length, 0) });
    const source = reusingSource(archive, 700);
    const release = source.release.bind(source);
    source.release = () => {
      if (batch.length > 0) releasedWhileHeld++;
      release();
    };
    const sink = new WritableSink(writable);
    await sink.writeArchive(BASE, source);
    await sink.finish();
    expect(Buffer.concat(written).equals(archive)).toBe(true);
    expect(releasedWhileHeld).toBe(0);
    expect(source.releases).toBe(Math.floor(Math.ceil(archive.length / 700) / 3));
  });

  it('never releases to a stream that may keep the chunks (a PassThrough), and the archive is intact', async () => {
    const archive = baseTar();
    const out = new PassThrough();
    const parts: Buffer[] = [];
    const ended = new Promise((r) => out.once('end', r));
    const source = reusingSource(archive, 700);
    const sink = new WritableSink(out, { end: true });
    const written = sink.writeArchive(BASE, source).then(() => sink.finish());
    out.on('data', (c: Buffer) => parts.push(c));
    await written;
    await ended;
    expect(Buffer.concat(parts).equals(archive)).toBe(true);
    expect(source.releases).toBe(0);
  });
});
