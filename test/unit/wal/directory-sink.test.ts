import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryWalSink } from '../../../src/wal/directory-sink.js';

const SEG = 1024 * 1024;
const NAME = '000000010000000000000003';
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgbb-dirsink-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('DirectoryWalSink', () => {
  it("zeroFill 'before-flush': a .partial at full size without zeros written, the rest allocated before a mid-segment flush", async () => {
    const sink = new DirectoryWalSink({ directory: dir, zeroFill: 'before-flush' });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    const partial = join(dir, `${NAME}.partial`);
    expect(statSync(partial).size).toBe(SEG);
    // No zeros were written: the WAL will be, and writing both doubles the page-cache and disk writes.
    expect(statSync(partial).blocks * 512).toBeLessThan(SEG / 2);
    await sink.write(pattern(4096, 8));
    await sink.flush();
    // The rest of the segment was zero-filled before the flush could be reported durable.
    expect(statSync(partial).blocks * 512).toBeGreaterThanOrEqual(SEG);
    const content = readFileSync(partial);
    expect(content.subarray(0, 4096).equals(pattern(4096, 8))).toBe(true);
    expect(content.subarray(4096).every((x) => x === 0)).toBe(true);
    await sink.write(pattern(SEG - 4096, 9));
    await sink.closeSegment('complete');
    expect(
      readFileSync(join(dir, NAME))
        .subarray(4096)
        .equals(pattern(SEG - 4096, 9)),
    ).toBe(true);
  });

  it('abort waits for a flush in progress before it closes the file (a closed descriptor could be reused under the fsync)', async () => {
    const sink = new DirectoryWalSink({ directory: dir });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(4096, 11));
    const order: string[] = [];
    const flushing = sink.flush().then(
      () => order.push('flushed'),
      (err: Error) => order.push(`flush failed: ${err.message}`),
    );
    await sink.abort();
    order.push('aborted');
    await flushing;
    expect(order).toEqual(['flushed', 'aborted']);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("zeroFill 'before-flush' with fsync off never zero-fills: a segment written through is written once", async () => {
    const sink = new DirectoryWalSink({ directory: dir, fsync: false, zeroFill: 'before-flush' });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(4096, 10));
    await sink.flush();
    expect(statSync(join(dir, `${NAME}.partial`)).blocks * 512).toBeLessThan(SEG / 2);
    await sink.closeSegment('partial');
    const content = readFileSync(join(dir, `${NAME}.partial`));
    expect(content.length).toBe(SEG);
    expect(content.subarray(4096).every((x) => x === 0)).toBe(true);
  });

  it('writes a zero-filled .partial, then renames it complete with mode 0600 and a .done', async () => {
    const wal = join(dir, 'pg_wal');
    const sink = new DirectoryWalSink({ directory: wal, markDone: true });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    const partial = join(wal, `${NAME}.partial`);
    expect(statSync(partial).size).toBe(SEG);
    // By default every block is written (zeros) before any WAL, as pg_basebackup does.
    expect(statSync(partial).blocks * 512).toBeGreaterThanOrEqual(SEG);
    expect(statSync(partial).mode & 0o777).toBe(0o600);
    expect(statSync(wal).mode & 0o777).toBe(0o700);
    const a = pattern(300_000, 1);
    const b = pattern(SEG - 300_000, 2);
    await sink.write(a);
    await sink.flush();
    expect(readFileSync(partial).subarray(0, a.length).equals(a)).toBe(true);
    await sink.write(b);
    await sink.closeSegment('complete');
    await sink.finish();
    expect(readdirSync(wal).sort()).toEqual([NAME, 'archive_status']);
    expect(readFileSync(join(wal, NAME)).equals(Buffer.concat([a, b]))).toBe(true);
    expect(statSync(join(wal, NAME)).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(wal, 'archive_status'))).toEqual([`${NAME}.done`]);
  });

  it('keeps an incomplete segment as .partial, padded with zeros to the full size', async () => {
    const sink = new DirectoryWalSink({ directory: dir, markDone: true });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    const data = pattern(5000, 3);
    await sink.write(data);
    await sink.closeSegment('partial');
    await sink.finish();
    const content = readFileSync(join(dir, `${NAME}.partial`));
    expect(content.length).toBe(SEG);
    expect(content.subarray(0, 5000).equals(data)).toBe(true);
    expect(content.subarray(5000).every((x) => x === 0)).toBe(true);
    // No .done for something incomplete.
    expect(readdirSync(join(dir, 'archive_status'))).toEqual([]);
  });

  it("'padded' gives an incomplete segment its final name (pg_basebackup's last segment), without .done", async () => {
    const sink = new DirectoryWalSink({ directory: dir, markDone: true });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(1000, 4));
    await sink.closeSegment('padded');
    expect(readdirSync(dir).sort()).toEqual([NAME, 'archive_status']);
    const content = readFileSync(join(dir, NAME));
    expect(content.length).toBe(SEG);
    expect(content.subarray(1000).every((x) => x === 0)).toBe(true);
    expect(readdirSync(join(dir, 'archive_status'))).toEqual([]);
  });

  it("partialSuffix '' writes under the final name from the start", async () => {
    const sink = new DirectoryWalSink({ directory: dir, partialSuffix: '' });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    expect(readdirSync(dir)).toEqual([NAME]);
    await sink.write(pattern(SEG, 5));
    await sink.closeSegment('complete');
    expect(readdirSync(dir)).toEqual([NAME]);
    expect(readFileSync(join(dir, NAME)).equals(pattern(SEG, 5))).toBe(true);
  });

  it('resumes a full-size .partial left by an earlier run and refuses a short one', async () => {
    const existing = pattern(SEG, 6);
    writeFileSync(join(dir, `${NAME}.partial`), existing);
    const sink = new DirectoryWalSink({ directory: dir });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 4096 });
    const data = pattern(100, 7);
    await sink.write(data);
    await sink.flush();
    await sink.closeSegment('partial');
    const content = readFileSync(join(dir, `${NAME}.partial`));
    expect(content.subarray(0, 4096).equals(existing.subarray(0, 4096))).toBe(true);
    expect(content.subarray(4096, 4196).equals(data)).toBe(true);
    // A flush in a resumed file zero-fills nothing: what lies past the write position stays, as with pg_receivewal.
    expect(content.subarray(4196).equals(existing.subarray(4196))).toBe(true);

    writeFileSync(join(dir, '000000010000000000000004.partial'), Buffer.alloc(10));
    await expect(sink.openSegment({ name: '000000010000000000000004', segmentSize: SEG, startOffset: 0 })).rejects.toMatchObject({
      code: 'ERR_PGBB_IO',
      message: expect.stringContaining('has 10 bytes, should be 0 or 1048576'),
    });
  });

  it('refuses writes past the segment end, a second open segment, and complete on a short segment', async () => {
    const sink = new DirectoryWalSink({ directory: dir });
    await expect(sink.write(Buffer.alloc(1))).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: SEG - 10 });
    await expect(sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 })).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
    await expect(sink.write(Buffer.alloc(11))).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
    await sink.write(Buffer.alloc(5));
    await expect(sink.closeSegment('complete')).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
  });

  it('writes timeline history files atomically, with .done when marking', async () => {
    const sink = new DirectoryWalSink({ directory: dir, markDone: true });
    const content = Buffer.from('1\t0/3000158\tno recovery target specified\n');
    await sink.writeHistoryFile('00000002.history', content);
    expect(readFileSync(join(dir, '00000002.history')).equals(content)).toBe(true);
    expect(statSync(join(dir, '00000002.history')).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'archive_status'))).toEqual(['00000002.history.done']);
    await expect(sink.writeHistoryFile('../evil', content)).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
  });

  it('abort() removes the incomplete segment by default', async () => {
    const sink = new DirectoryWalSink({ directory: dir });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(10, 8));
    await sink.abort(new Error('x'));
    await sink.abort();
    expect(readdirSync(dir)).toEqual([]);
    await expect(sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 })).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
  });

  it("abort() with onAbort 'keep' leaves the .partial for a later resume", async () => {
    const sink = new DirectoryWalSink({ directory: dir, onAbort: 'keep' });
    await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(10, 9));
    await sink.abort();
    expect(readdirSync(dir)).toEqual([`${NAME}.partial`]);
    expect(
      readFileSync(join(dir, `${NAME}.partial`))
        .subarray(0, 10)
        .equals(pattern(10, 9)),
    ).toBe(true);
  });

  it('prepare() with a group-readable server: 0750 directories, 0640 files, whatever the umask', async () => {
    const wal = join(dir, 'pg_wal');
    const seen: boolean[] = [];
    const sink = new DirectoryWalSink({
      directory: wal,
      markDone: true,
      beforePrepare: async (s) => {
        seen.push(s.groupReadable);
      },
    });
    const old = process.umask(0o077);
    try {
      await sink.prepare({ groupReadable: true, segmentSize: SEG });
      expect(seen).toEqual([true]);
      expect(statSync(wal).mode & 0o777).toBe(0o750);
      expect(statSync(join(wal, 'archive_status')).mode & 0o777).toBe(0o750);
      await sink.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
      expect(statSync(join(wal, `${NAME}.partial`)).mode & 0o777).toBe(0o640);
      await sink.write(pattern(SEG, 4));
      await sink.closeSegment('complete');
      await sink.writeHistoryFile('00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'));
      await sink.finish();
    } finally {
      process.umask(old);
    }
    expect(statSync(join(wal, NAME)).mode & 0o777).toBe(0o640);
    expect(statSync(join(wal, '00000002.history')).mode & 0o777).toBe(0o640);
    expect(statSync(join(wal, 'archive_status', `${NAME}.done`)).mode & 0o777).toBe(0o640);
    // Once a segment was written, the modes can no longer change.
    await expect(sink.prepare({ groupReadable: false, segmentSize: SEG })).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
  });

  it('prepare() keeps explicit modes and the strict defaults for a server without group access', async () => {
    const strict = new DirectoryWalSink({ directory: join(dir, 'a') });
    await strict.prepare({ groupReadable: false, segmentSize: SEG });
    await strict.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    expect(statSync(join(dir, 'a', `${NAME}.partial`)).mode & 0o777).toBe(0o600);
    await expect(strict.prepare({ groupReadable: true, segmentSize: SEG })).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
    await strict.abort();
    const explicit = new DirectoryWalSink({ directory: join(dir, 'b'), fileMode: 0o600, directoryMode: 0o700 });
    await explicit.prepare({ groupReadable: true, segmentSize: SEG });
    await explicit.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
    expect(statSync(join(dir, 'b')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'b', `${NAME}.partial`)).mode & 0o777).toBe(0o600);
    await explicit.abort();
  });
});
