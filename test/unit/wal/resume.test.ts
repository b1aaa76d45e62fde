import { describe, expect, it } from 'vitest';
import { findStreamingStart, type WalDirectoryEntry } from '../../../src/wal/resume.js';

const SEG = 16 * 1024 * 1024;
const full = (name: string): WalDirectoryEntry => ({ name, size: SEG });

describe('findStreamingStart', () => {
  it('is undefined for a directory without segments', () => {
    expect(
      findStreamingStart(
        [
          { name: 'archive_status', size: 4096 },
          { name: '00000002.history', size: 40 },
        ],
        { segmentSize: SEG },
      ),
    ).toBeUndefined();
  });

  it('starts after the highest complete segment', () => {
    const start = findStreamingStart([full('000000010000000000000003'), full('000000010000000000000004')], { segmentSize: SEG });
    expect(start).toEqual({ startLsn: 0x5000000n, timeline: 1, basedOn: '000000010000000000000004', partial: false });
  });

  it('restarts a .partial from its segment start, crossing the xlogid boundary correctly', () => {
    const start = findStreamingStart([full('0000000100000000000000FF'), full('000000010000000100000000.partial')], { segmentSize: SEG });
    expect(start).toEqual({ startLsn: 0x100000000n, timeline: 1, basedOn: '000000010000000100000000.partial', partial: true });
  });

  it('prefers the higher timeline for the same segment, and a complete file over its .partial', () => {
    expect(
      findStreamingStart([full('000000010000000000000005.partial'), full('000000020000000000000005.partial')], { segmentSize: SEG }),
    ).toMatchObject({ timeline: 2, startLsn: 0x5000000n, partial: true });
    expect(
      findStreamingStart([full('000000010000000000000005'), full('000000010000000000000005.partial')], { segmentSize: SEG }),
    ).toMatchObject({ timeline: 1, startLsn: 0x6000000n, partial: false });
  });

  it('skips complete segments of the wrong size, reporting them', () => {
    const skipped: string[] = [];
    const start = findStreamingStart([full('000000010000000000000003'), { name: '000000010000000000000004', size: 100 }], {
      segmentSize: SEG,
      onSkip: (e) => skipped.push(e.name),
    });
    expect(skipped).toEqual(['000000010000000000000004']);
    expect(start?.startLsn).toBe(0x4000000n);
  });

  it('honours another segment size and partial suffix', () => {
    const start = findStreamingStart([{ name: '000000010000000000000003.part', size: 1 }], {
      segmentSize: 1024 * 1024,
      partialSuffix: '.part',
    });
    expect(start).toMatchObject({ startLsn: 0x300000n, partial: true });
  });
});
