// The WAL archive's continuity as `verify --repo` judges it: holes between stored segments, and between
// the oldest backup's start segment and the first stored one; nothing before that start counts.
import { describe, expect, it } from 'vitest';
import { walHoles } from '../../../src/repository/wal-continuity.js';
import { parseWalKey, walHistoryKey, walSegmentKey, type ParsedWalKey } from '../../../src/repository/wal-keys.js';
import { segmentFileName } from '../../../src/wal-segments.js';

const SEG = 16 * 1024 * 1024;
const seg = (timeline: number, n: number): ParsedWalKey => parseWalKey(walSegmentKey(segmentFileName(timeline, BigInt(n), SEG), 'gzip'))!;
const name = (timeline: number, n: number) => segmentFileName(timeline, BigInt(n), SEG);

describe('walHoles', () => {
  it('an empty archive, and a continuous one, have none', () => {
    expect(walHoles([], SEG, { timeline: 1, segno: 3n })).toEqual([]);
    expect(walHoles([seg(1, 3), seg(1, 4), seg(1, 5), parseWalKey(walHistoryKey(2))!, seg(2, 5)], SEG, { timeline: 1, segno: 3n })).toEqual(
      [],
    );
  });

  it('names a gap between stored segments, on each timeline', () => {
    expect(walHoles([seg(1, 3), seg(1, 6), seg(2, 6), seg(2, 8)], SEG, { timeline: 1, segno: 3n })).toEqual([
      { timeline: 1, first: name(1, 4), last: name(1, 5), kind: 'gap' },
      { timeline: 2, first: name(2, 7), last: name(2, 7), kind: 'gap' },
    ]);
  });

  it('names the segments missing from the oldest backup start, and ignores holes before it', () => {
    expect(walHoles([seg(1, 1), seg(1, 5), seg(1, 6)], SEG, { timeline: 1, segno: 3n })).toEqual([
      { timeline: 1, first: name(1, 3), last: name(1, 4), kind: 'start' },
    ]);
    expect(walHoles([seg(1, 1), seg(1, 4), seg(1, 5)], SEG, { timeline: 1, segno: 4n })).toEqual([]);
  });
});
