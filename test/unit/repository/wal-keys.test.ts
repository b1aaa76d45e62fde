// The repository's WAL keys and the per-timeline extent (first, last, gaps) list and expire rely on.
import { describe, expect, it } from 'vitest';
import { parseWalKey, walArchiveExtent, walHistoryKey, walSegmentKey } from '../../../src/repository/wal-keys.js';

const MB16 = 16 * 1024 * 1024;

function keys(...names: string[]) {
  return names.map((n) => parseWalKey(n)!).filter(Boolean);
}

describe('repository WAL keys', () => {
  it('names segments with PostgreSQL names plus the compression suffix, and history files', () => {
    expect(walSegmentKey('000000010000000000000003')).toBe('wal/000000010000000000000003');
    expect(walSegmentKey('000000010000000000000003', 'lz4')).toBe('wal/000000010000000000000003.lz4');
    expect(walHistoryKey(10)).toBe('wal/0000000A.history');
    expect(parseWalKey('wal/000000010000000000000003.zst')).toEqual({
      kind: 'segment',
      key: 'wal/000000010000000000000003.zst',
      name: '000000010000000000000003',
      compression: 'zstd',
    });
    expect(parseWalKey('wal/0000000A.history')).toMatchObject({ kind: 'history', timeline: 10 });
  });

  it('skips keys it does not know', () => {
    for (const k of [
      'wal/000000010000000000000003.partial',
      'wal/00000001000000000000003',
      'wal/x',
      'catalog/a.json',
      'wal/000000010000000000000003.bz2',
    ]) {
      expect(parseWalKey(k)).toBeUndefined();
    }
  });

  it('reports first, last and gaps per timeline, counting a segment stored twice once', () => {
    const extent = walArchiveExtent(
      keys(
        'wal/000000010000000000000001',
        'wal/000000010000000000000002.gz',
        'wal/000000010000000000000002',
        'wal/000000010000000000000005',
        'wal/0000000100000001000000FF',
        'wal/000000010000000200000000',
        'wal/00000002.history',
        'wal/000000020000000200000000.lz4',
      ),
      MB16,
    );
    expect(extent).toEqual([
      {
        timeline: 1,
        firstSegment: '000000010000000000000001',
        lastSegment: '000000010000000200000000',
        segments: 5,
        gaps: [
          { first: '000000010000000000000003', last: '000000010000000000000004' },
          { first: '000000010000000000000006', last: '0000000100000001000000FE' },
        ],
        history: false,
      },
      {
        timeline: 2,
        firstSegment: '000000020000000200000000',
        lastSegment: '000000020000000200000000',
        segments: 1,
        gaps: [],
        history: true,
      },
    ]);
  });

  it('ignores names out of range for the segment size', () => {
    // With 1 GB segments the low part runs 00000000..00000003.
    expect(walArchiveExtent(keys('wal/000000010000000000000004', 'wal/000000010000000000000001'), (1024 * MB16) / 16)).toMatchObject([
      { segments: 1, firstSegment: '000000010000000000000001' },
    ]);
  });
});
