import { describe, expect, it } from 'vitest';
import { combinedBackupLabel, parseBackupLabel } from '../../../src/combine/backup-label.js';

const full =
  'START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nCHECKPOINT LOCATION: 0/4000080\n' +
  'BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-01-01 00:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n';
const incr = `${full.replace('0/4000028', '0/6000028')}INCREMENTAL FROM LSN: 0/4000028\nINCREMENTAL FROM TLI: 1\n`;

describe('backup_label', () => {
  it('parses full and incremental labels (padded LSNs too)', () => {
    expect(parseBackupLabel(full, 'l')).toEqual({
      startLsn: 0x4000028n,
      startTimeline: 1,
      incrementalFromLsn: undefined,
      incrementalFromTimeline: undefined,
    });
    expect(parseBackupLabel(incr.replace('0/6000028', '0/06000028'), 'l')).toEqual({
      startLsn: 0x6000028n,
      startTimeline: 1,
      incrementalFromLsn: 0x4000028n,
      incrementalFromTimeline: 1,
    });
  });
  it('rejects missing or lone lines', () => {
    expect(() => parseBackupLabel('START TIMELINE: 1\n', 'l')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_COMBINE' }));
    expect(() => parseBackupLabel(full.replace('START TIMELINE: 1\n', ''), 'l')).toThrow(/START TIMELINE/);
    expect(() => parseBackupLabel(`${full}INCREMENTAL FROM LSN: 0/1\n`, 'l')).toThrow(/requires INCREMENTAL FROM TLI/);
    expect(() => parseBackupLabel(full.replace('START TIMELINE: 1', 'START TIMELINE: 0'), 'l')).toThrow(/invalid TLI/);
  });
  it('the combined label drops the INCREMENTAL FROM lines only', () => {
    expect(combinedBackupLabel(Buffer.from(incr)).toString()).toBe(full.replace('0/4000028', '0/6000028'));
  });
});
