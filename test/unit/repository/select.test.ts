// Which backup serves a recovery target (pure): the newest that ended before it, by endTime for a time
// and by endLsn for a position; a target before the oldest backup is a NoBackupForTargetError naming it;
// an incremental backup brings its chain, oldest first.
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../../src/lsn.js';
import type { BackupRecord } from '../../../src/repository/record.js';
import { backupChain, newestBackupBefore } from '../../../src/repository/select.js';
import { backupRecord } from './fixtures.js';

function backup(id: string, endTime: string, endLsn: string, parent: string | null = null): BackupRecord {
  return backupRecord({
    id,
    parent,
    startTime: new Date(new Date(endTime).getTime() - 60_000),
    endTime: new Date(endTime),
    startLsn: parseLsn('0/1000028'),
    endLsn: parseLsn(endLsn),
  });
}

const a = backup('20261201-000000.000F', '2026-12-01T00:01:00Z', '0/3000000');
const b = backup('20261202-000000.000F', '2026-12-02T00:01:00Z', '0/5000000');
const i = backup('20261203-000000.000I', '2026-12-03T00:01:00Z', '0/7000000', b.id);
const all = [a, b, i];

describe('newestBackupBefore', () => {
  it('takes the newest backup for latest, and by endTime for a time', () => {
    expect(newestBackupBefore(all, { kind: 'latest' }).id).toBe(i.id);
    expect(newestBackupBefore(all, { kind: 'time', time: new Date('2026-12-01T12:00:00Z') }).id).toBe(a.id);
    expect(newestBackupBefore(all, { kind: 'time', time: b.endTime }).id).toBe(b.id);
  });

  it('by endLsn for an LSN (at or before) and for a record (strictly before)', () => {
    expect(newestBackupBefore(all, { kind: 'lsn', lsn: parseLsn('0/5000000') }).id).toBe(b.id);
    expect(newestBackupBefore(all, { kind: 'record', lsn: parseLsn('0/5000000'), what: 'restore point "x"' }).id).toBe(a.id);
  });

  it('refuses a target before the oldest backup, naming it, and an empty catalog', () => {
    let err: unknown;
    try {
      newestBackupBefore(all, { kind: 'time', time: new Date('2026-11-30T00:00:00Z') });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_PGBB_NO_BACKUP_FOR_TARGET', oldest: { id: a.id, endLsn: '0/3000000' } });
    expect((err as Error).message).toMatch(/before the end of the oldest backup in the repository, 20261201-000000\.000F/);
    expect(() => newestBackupBefore([], { kind: 'latest' })).toThrow(/holds no backup/);
  });
});

describe('backupChain', () => {
  it('is the backup alone for a full one, and the chain oldest first for an incremental one', () => {
    expect(backupChain(all, a).map((r) => r.id)).toEqual([a.id]);
    expect(backupChain(all, i).map((r) => r.id)).toEqual([b.id, i.id]);
  });

  it('refuses a chain whose parent is gone', () => {
    expect(() => backupChain([a, i], i)).toThrow(/no longer holds/);
  });
});
