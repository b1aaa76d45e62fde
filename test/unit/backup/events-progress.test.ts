import { describe, expect, it } from 'vitest';
import { parseChecksumNotice } from '../../../src/backup/events.js';
import { ProgressTracker } from '../../../src/backup/progress.js';

describe('parseChecksumNotice', () => {
  it('recognises the four basebackup.c messages, singular and plural', () => {
    expect(
      parseChecksumNotice('checksum verification failed in file "./base/5/16384", block 7: calculated 1A2B but expected FFFF'),
    ).toEqual({ kind: 'block', file: './base/5/16384', block: 7 });
    expect(parseChecksumNotice('further checksum verification failures in file "base/5/1" will not be reported')).toEqual({
      kind: 'further',
      file: 'base/5/1',
    });
    expect(parseChecksumNotice('file "base/5/1" has a total of 1 checksum verification failure')).toEqual({
      kind: 'file-total',
      file: 'base/5/1',
      count: 1,
    });
    expect(parseChecksumNotice('file "a b/\\"q" has a total of 12 checksum verification failures')).toEqual({
      kind: 'file-total',
      file: 'a b/\\"q',
      count: 12,
    });
    expect(parseChecksumNotice('3 total checksum verification failures')).toEqual({ kind: 'total', count: 3 });
    expect(parseChecksumNotice('1 total checksum verification failure')).toEqual({ kind: 'total', count: 1 });
  });

  it('ignores other notices', () => {
    expect(parseChecksumNotice('all required WAL segments have been archived')).toBeUndefined();
    expect(parseChecksumNotice('checksum verification failed in file "x", block y: nope')).toBeUndefined();
  });
});

describe('ProgressTracker', () => {
  it('throttles reports to the interval and ends at the total', () => {
    let now = 0;
    const t = new ProgressTracker(1000, () => now);
    t.setTablespaces([1, 2]);
    t.startArchive('1.tar', 0);
    expect(t.addBytes(100)).toBe(true); // the first report is due at once
    now = 500;
    expect(t.addBytes(100)).toBe(false);
    now = 1000;
    expect(t.addBytes(100)).toBe(true);
    expect(t.snapshot()).toMatchObject({
      bytesDone: 300,
      totalBytes: 3072,
      archive: { name: '1.tar', index: 0, bytesDone: 300 },
      archivesDone: 0,
      archivesTotal: 2,
      finished: false,
    });
    expect(t.endArchive()).toBe(false);
    t.startArchive('base.tar', 1);
    t.addBytes(5000); // beyond the estimate: the total follows
    expect(t.snapshot().totalBytes).toBe(5300);
    t.finish();
    expect(t.snapshot()).toMatchObject({ bytesDone: 5300, totalBytes: 5300, archive: undefined, archivesDone: 1, finished: true });
  });

  it('has no total without an estimate until the end', () => {
    const t = new ProgressTracker(0, () => 0);
    t.setTablespaces([null, 5]);
    t.addBytes(10);
    expect(t.snapshot().totalBytes).toBeUndefined();
    t.finish();
    expect(t.snapshot().totalBytes).toBe(10);
  });
});
