// Where an archive resumes (pg_receivewal's FindStreamingStart, compressed files included) and
// how archive file names parse.
import { describe, expect, it } from 'vitest';
import { archiveSegmentFileName, parseArchiveFileName } from '../../../src/archive/names.js';
import { findArchiveStart, type ArchiveFile } from '../../../src/archive/start.js';
import { formatLsn } from '../../../src/lsn.js';

const MB = 1024 * 1024;
const SEG = 16 * MB;

async function start(files: ArchiveFile[], sizes: Record<string, number> = {}, skipped: string[] = []) {
  return findArchiveStart(files, {
    segmentSize: SEG,
    uncompressedBytes: async (f) => {
      const n = sizes[f.name];
      if (n === undefined) throw new Error(`unexpected decompression of ${f.name}`);
      return n;
    },
    onSkip: (f) => skipped.push(f.name),
  });
}

describe('parseArchiveFileName', () => {
  it('reads segments with every compression suffix, partial or not, and history files', () => {
    expect(parseArchiveFileName('000000010000000000000003', SEG)).toEqual({
      kind: 'segment',
      segment: '000000010000000000000003',
      timeline: 1,
      segno: 3n,
      compression: 'none',
      partial: false,
    });
    expect(parseArchiveFileName('0000000200000001000000FF.lz4.partial', SEG)).toMatchObject({
      timeline: 2,
      segno: 0x1ffn,
      compression: 'lz4',
      partial: true,
    });
    expect(parseArchiveFileName('000000010000000000000003.zst', SEG)).toMatchObject({ compression: 'zstd', partial: false });
    expect(parseArchiveFileName('000000010000000000000003.gz.partial', SEG)).toMatchObject({ compression: 'gzip', partial: true });
    expect(parseArchiveFileName('00000002.history', SEG)).toEqual({ kind: 'history', timeline: 2 });
    for (const bad of ['00000002.history.tmp', '000000010000000000000003.partial.gz', '000000010000000000000100', 'foo']) {
      expect(parseArchiveFileName(bad, SEG), bad).toBeNull();
    }
  });

  it('names a segment back', () => {
    expect(archiveSegmentFileName('000000010000000000000003', 'gzip', true)).toBe('000000010000000000000003.gz.partial');
    expect(archiveSegmentFileName('000000010000000000000003', 'none', false)).toBe('000000010000000000000003');
  });
});

describe('findArchiveStart', () => {
  it('is undefined for an archive without segments', async () => {
    expect(
      await start([
        { name: '00000002.history', bytes: 40 },
        { name: 'x', bytes: 1 },
      ]),
    ).toBeUndefined();
  });

  it('starts after the newest complete segment', async () => {
    const s = await start([
      { name: '000000010000000000000003', bytes: SEG },
      { name: '000000010000000000000004', bytes: SEG },
    ]);
    expect(s && formatLsn(s.startLsn)).toBe('0/5000000');
    expect(s).toMatchObject({ timeline: 1, partial: false, basedOn: '000000010000000000000004' });
  });

  it('restarts at a newer .partial, and prefers the complete copy of the same segment', async () => {
    const p = await start([
      { name: '000000010000000000000004', bytes: SEG },
      { name: '000000010000000000000005.partial', bytes: SEG },
    ]);
    expect(p && formatLsn(p.startLsn)).toBe('0/5000000');
    expect(p?.partial).toBe(true);
    const c = await start([
      { name: '000000010000000000000005', bytes: SEG },
      { name: '000000010000000000000005.gz.partial', bytes: 10 },
    ]);
    expect(c && formatLsn(c.startLsn)).toBe('0/6000000');
  });

  it('lets the higher timeline win for the same segment', async () => {
    const s = await start([
      { name: '000000010000000000000005.partial', bytes: SEG },
      { name: '000000020000000000000005', bytes: SEG },
    ]);
    expect(s).toMatchObject({ timeline: 2, partial: false });
    expect(s && formatLsn(s.startLsn)).toBe('0/6000000');
  });

  it('checks complete segments by size, decompressing only down to the first good one', async () => {
    const skipped: string[] = [];
    const s = await start(
      [
        { name: '000000010000000000000003.gz', bytes: 100 },
        { name: '000000010000000000000004.lz4', bytes: 200 },
        { name: '000000010000000000000005', bytes: SEG - 1 },
      ],
      { '000000010000000000000004.lz4': SEG },
      skipped,
    );
    expect(skipped).toEqual(['000000010000000000000005']);
    expect(s && formatLsn(s.startLsn)).toBe('0/5000000');
  });

  it('skips a compressed segment that is short or cannot be decompressed', async () => {
    const skipped: string[] = [];
    const s = await start(
      [
        { name: '000000010000000000000003', bytes: SEG },
        { name: '000000010000000000000004.zst', bytes: 100 },
        { name: '000000010000000000000005.gz', bytes: 100 },
      ],
      { '000000010000000000000005.gz': SEG - 8192 },
      skipped,
    );
    expect(skipped).toEqual(['000000010000000000000005.gz', '000000010000000000000004.zst']);
    expect(s?.basedOn).toBe('000000010000000000000003');
  });
});
