import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TarWalSink, walTarHeader } from '../../../src/wal/tar-sink.js';

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
    expect(h.toString('ascii', 124, 135)).toBe((SEG).toString(8).padStart(11, '0'));
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
    expect(readdirSync(join(out, 'archive_status')).sort())
      .toEqual(['00000002.history.done', '000000020000000000000003.done']);
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
    const released: (() => void)[] = [];
    let received = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        released.push(cb);
      },
    });
    const sink = new TarWalSink({ output: slow, end: false });
    const open = sink.openSegment({ name: '000000010000000000000001', segmentSize: SEG, startOffset: 0 });
    // The header (512 bytes) fits under the high-water mark.
    await open;
    let resolved = false;
    const w = sink.write(pattern(4096, 4)).then(() => { resolved = true; });
    await new Promise((r) => setTimeout(r, 20));
    expect(resolved).toBe(false);
    while (released.length > 0) released.shift()!();
    await new Promise((r) => setTimeout(r, 5));
    while (released.length > 0) released.shift()!();
    await w;
    expect(resolved).toBe(true);
    expect(received).toBe(512 + 4096);
    // flush() waits until every chunk was acknowledged.
    let flushed = false;
    const f = sink.flush().then(() => { flushed = true; });
    await new Promise((r) => setTimeout(r, 5));
    expect(flushed).toBe(true);
    await f;
  });

  it('flush() resolves only after the output acknowledged the bytes, then calls sync', async () => {
    const pending: (() => void)[] = [];
    const out = new Writable({ highWaterMark: 1 << 20, write(_c, _e, cb) { pending.push(cb); } });
    let synced = 0;
    const sink = new TarWalSink({ output: out, end: false, sync: async () => { synced++; } });
    await sink.openSegment({ name: '000000010000000000000001', segmentSize: SEG, startOffset: 0 });
    await sink.write(pattern(100, 5));
    let flushed = false;
    const f = sink.flush().then(() => { flushed = true; });
    await new Promise((r) => setTimeout(r, 10));
    expect(flushed).toBe(false);
    expect(synced).toBe(0);
    while (pending.length > 0) { pending.shift()!(); await new Promise((r) => setImmediate(r)); }
    await f;
    expect(synced).toBe(1);
  });

  it('rejects writes when the output fails, and abort() destroys an owned output', async () => {
    const out = new Writable({ write(_c, _e, cb) { cb(new Error('disk on fire')); } });
    const sink = new TarWalSink({ output: out });
    await sink.openSegment({ name: '000000010000000000000001', segmentSize: SEG, startOffset: 0 }).catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    await expect(sink.write(Buffer.alloc(10))).rejects.toMatchObject({ code: 'ERR_PGBB_IO', message: expect.stringContaining('disk on fire') });
    await sink.abort();
    expect(out.destroyed).toBe(true);
  });
});
