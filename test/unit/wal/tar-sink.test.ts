import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TarWalSink, walTarHeader } from '../../../src/wal/tar-sink.js';
import { deferred, settle } from '../helpers/deferred.js';

const SEG = 1024 * 1024;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgbb-tarsink-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 17 + seed) & 0xff;
  return b;
}

function extract(tarPath: string): string {
  const out = join(dir, 'x');
  mkdirSync(out);
  execFileSync('tar', ['-xf', tarPath, '-C', out]);
  return out;
}

describe('walTarHeader', () => {
  it('is a valid ustar header with a correct checksum', () => {
    const h = walTarHeader('000000010000000000000001', SEG, new Date(1_700_000_000_000));
    expect(h.length).toBe(512);
    expect(h.toString('ascii', 257, 263)).toBe('ustar\0');
    expect(h.toString('ascii', 124, 135)).toBe(SEG.toString(8).padStart(11, '0'));
    const stored = Number.parseInt(h.toString('ascii', 148, 154), 8);
    const copy = Buffer.from(h);
    copy.fill(0x20, 148, 156);
    expect(stored).toBe(copy.reduce((a, b) => a + b, 0));
  });
});

describe('TarWalSink', () => {
  it('writes segments, a padded last segment, history files, .done entries and a terminator GNU tar reads', async () => {
    const tarPath = join(dir, 'pg_wal.tar');
    const sink = new TarWalSink({ output: createWriteStream(tarPath), markDone: true });
    await sink.writeHistoryFile('00000002.history', Buffer.from('1\t0/3000000\tbefore\n'));
    const full = pattern(SEG, 1);
    await sink.openSegment({ name: '000000020000000000000003', segmentSize: SEG, startOffset: 0 });
    await sink.write(full.subarray(0, 1000));
    await sink.write(full.subarray(1000));
    await sink.closeSegment('complete');
    const tail = pattern(7777, 2);
    await sink.openSegment({ name: '000000020000000000000004', segmentSize: SEG, startOffset: 0 });
    await sink.write(tail);
    await sink.flush();
    await sink.closeSegment('padded');
    await sink.finish();

    const size = statSync(tarPath).size;
    expect(size % 512).toBe(0);
    const raw = readFileSync(tarPath);
    expect(raw.subarray(size - 1024).every((x) => x === 0)).toBe(true);

    const listing = execFileSync('tar', ['-tvf', tarPath]).toString();
    expect(listing).toMatch(/-rw------- .*00000002\.history\n/);
    const names = execFileSync('tar', ['-tf', tarPath]).toString().trim().split('\n');
    expect(names).toEqual([
      '00000002.history',
      'archive_status/00000002.history.done',
      '000000020000000000000003',
      'archive_status/000000020000000000000003.done',
      '000000020000000000000004',
    ]);
    const out = extract(tarPath);
    expect(readFileSync(join(out, '000000020000000000000003')).equals(full)).toBe(true);
    const last = readFileSync(join(out, '000000020000000000000004'));
    expect(last.length).toBe(SEG);
    expect(last.subarray(0, tail.length).equals(tail)).toBe(true);
    expect(last.subarray(tail.length).every((x) => x === 0)).toBe(true);
    expect(readFileSync(join(out, '00000002.history'), 'utf8')).toBe('1\t0/3000000\tbefore\n');
    expect(readdirSync(join(out, 'archive_status')).sort()).toEqual(['00000002.history.done', '000000020000000000000003.done']);
  });

  it('writes no .done entries unless asked, and honours a prefix', async () => {
    const tarPath = join(dir, 'w.tar');
    const sink = new TarWalSink({ output: createWriteStream(tarPath), prefix: 'pg_wal/' });
    await sink.openSegment({ name: '000000010000000000000001', segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(SEG, 3));
    await sink.closeSegment('complete');
    await sink.finish();
    expect(execFileSync('tar', ['-tf', tarPath]).toString().trim().split('\n')).toEqual(['pg_wal/000000010000000000000001']);
  });

  it('applies backpressure: write() waits for the output to drain', async () => {
    const acks = deferred();
    let received = 0;
    let acked = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        void acks.promise.then(() => {
          acked += chunk.length;
          cb();
        });
      },
    });
    const sink = new TarWalSink({ output: slow, end: false });
    // The header (512 bytes) fits under the high-water mark.
    await sink.openSegment({ name: '000000010000000000000001', segmentSize: SEG, startOffset: 0 });
    let ackedWhenWritten: number | undefined;
    const w = sink.write(pattern(4096, 4)).then(() => {
      ackedWhenWritten = acked;
    });
    await settle();
    expect(ackedWhenWritten).toBeUndefined();
    acks.resolve();
    await w;
    // It resolved once the output drained, not before.
    expect(ackedWhenWritten).toBe(512 + 4096);
    expect(received).toBe(512 + 4096);
    // flush() waits until every chunk was acknowledged: here they all were.
    await sink.flush();
    expect(slow.writableLength).toBe(0);
  });

  it('flush() resolves only after the output acknowledged the bytes, then calls sync', async () => {
    const acks = deferred();
    let acked = 0;
    const out = new Writable({
      highWaterMark: 1 << 20,
      write(c: Buffer, _e, cb) {
        void acks.promise.then(() => {
          acked += c.length;
          cb();
        });
      },
    });
    let ackedWhenSynced: number | undefined;
    const sink = new TarWalSink({
      output: out,
      end: false,
      sync: async () => {
        ackedWhenSynced = acked;
      },
    });
    await sink.openSegment({ name: '000000010000000000000001', segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(100, 5));
    let ackedWhenFlushed: number | undefined;
    const f = sink.flush().then(() => {
      ackedWhenFlushed = acked;
    });
    await settle();
    expect(ackedWhenSynced).toBeUndefined();
    expect(ackedWhenFlushed).toBeUndefined();
    acks.resolve();
    await f;
    expect(ackedWhenSynced).toBe(512 + 100);
    expect(ackedWhenFlushed).toBe(512 + 100);
  });

  it('rejects writes when the output fails, and abort() destroys an owned output', async () => {
    const out = new Writable({
      write(_c, _e, cb) {
        cb(new Error('disk on fire'));
      },
    });
    const sink = new TarWalSink({ output: out });
    await sink.openSegment({ name: '000000010000000000000001', segmentSize: SEG, startOffset: 0 }).catch(() => undefined);
    await expect(sink.write(Buffer.alloc(10))).rejects.toMatchObject({
      code: 'ERR_PGBB_IO',
      message: expect.stringContaining('disk on fire'),
    });
    await sink.abort();
    expect(out.destroyed).toBe(true);
  });
});
