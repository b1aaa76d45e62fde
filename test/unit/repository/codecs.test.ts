// The repository's pure parts: record codecs (catalog record, repository.json), ids, keys, durations and
// the catalog questions (newest full backup, --if-older-than, point-in-time window).
import { describe, expect, it } from 'vitest';
import { ConfigError, RepositoryError, RepositoryMismatchError } from '../../../src/errors.js';
import { parseLsn } from '../../../src/lsn.js';
import { backupIdFor, isBackupId } from '../../../src/repository/backup-id.js';
import { backupDue, newestFullBackup, pitrWindow, sortBackups } from '../../../src/repository/catalog.js';
import { parseDuration } from '../../../src/repository/duration.js';
import { checkClusterIdentity, decodeRepositoryInfo, encodeRepositoryInfo } from '../../../src/repository/identity.js';
import { catalogKey, idOfBackupObjectKey, idOfCatalogKey } from '../../../src/repository/layout.js';
import { decodeBackupRecord, encodeBackupRecord, postgresVersionText, type BackupRecord } from '../../../src/repository/record.js';

function record(over: Partial<BackupRecord> = {}): BackupRecord {
  return {
    id: '20261206-033800.123F',
    type: 'full',
    parent: null,
    status: 'complete',
    startTime: new Date('2026-12-06T03:38:00.123Z'),
    endTime: new Date('2026-12-06T03:39:10.000Z'),
    startLsn: parseLsn('0/2000028'),
    endLsn: parseLsn('0/2000138'),
    timeline: 1,
    endTimeline: 1,
    postgresVersion: '17.2',
    systemIdentifier: '7443990000000000001',
    originalSize: 30_000_000,
    storedSize: 4_000_000,
    compression: 'gzip',
    durationMs: 69_877,
    wal: 'stream',
    label: 'pg_basebackup base backup',
    objects: [{ name: 'base.tar.gz', size: 4_000_000, sha256: 'a'.repeat(64) }],
    ...over,
  };
}

describe('backup record', () => {
  it('round-trips through its JSON, with the documented field names', () => {
    const r = record();
    const bytes = encodeBackupRecord(r);
    const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual([
      'formatVersion',
      'id',
      'type',
      'parent',
      'status',
      'startTime',
      'endTime',
      'startLsn',
      'endLsn',
      'timeline',
      'endTimeline',
      'postgresVersion',
      'systemIdentifier',
      'originalSize',
      'storedSize',
      'compression',
      'durationMs',
      'wal',
      'label',
      'objects',
    ]);
    expect(json).toMatchObject({ startLsn: '0/2000028', endLsn: '0/2000138', startTime: '2026-12-06T03:38:00.123Z', parent: null });
    expect(decodeBackupRecord(bytes, r.id)).toEqual(r);
  });

  it('keeps an incremental backup with its parent', () => {
    const r = record({ id: '20261206-040000.000I', type: 'incremental', parent: '20261206-033800.123F' });
    expect(decodeBackupRecord(encodeBackupRecord(r), r.id)).toEqual(r);
  });

  it('refuses records that are not of the documented shape, naming the field', () => {
    const good = JSON.parse(encodeBackupRecord(record()).toString('utf8')) as Record<string, unknown>;
    const bad = (change: Record<string, unknown>, id = '20261206-033800.123F'): unknown => {
      try {
        decodeBackupRecord(JSON.stringify({ ...good, ...change }), id);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(bad({ startLsn: 'zz' })).toBeInstanceOf(RepositoryError);
    expect((bad({ type: 'differential' }) as Error).message).toMatch(/"type": expected one of full, incremental/);
    expect((bad({}, '20261206-033800.124F') as Error).message).toMatch(/is not the id its key names/);
    expect((bad({ type: 'incremental' }) as Error).message).toMatch(/"parent"/);
    expect((bad({ formatVersion: 2 }) as Error).message).toMatch(/format version 2/);
    expect((bad({ storedSize: -1 }) as RepositoryError).key).toBe('catalog/20261206-033800.123F.json');
    expect(() => decodeBackupRecord('not json', 'x')).toThrow(/not valid JSON/);
  });

  it('prints server_version_num as PostgreSQL does', () => {
    expect(postgresVersionText(170002)).toBe('17.2');
    expect(postgresVersionText(130018)).toBe('13.18');
  });
});

describe('ids and keys', () => {
  it('ids carry the start time and type, sort as backups started, and are refused when malformed', () => {
    const a = backupIdFor(new Date('2026-12-06T03:38:00.123Z'), 'full');
    const b = backupIdFor(new Date('2026-12-06T03:38:00.124Z'), 'incremental');
    expect(a).toBe('20261206-033800.123F');
    expect(b).toBe('20261206-033800.124I');
    expect(a < b).toBe(true);
    expect(isBackupId(a) && isBackupId(b)).toBe(true);
    expect(isBackupId('../x')).toBe(false);
    expect(isBackupId('20261206-033800F')).toBe(false);
  });

  it('maps keys to ids and back', () => {
    expect(catalogKey('20261206-033800.123F')).toBe('catalog/20261206-033800.123F.json');
    expect(idOfCatalogKey('catalog/20261206-033800.123F.json')).toBe('20261206-033800.123F');
    expect(idOfCatalogKey('catalog/x/y.json')).toBeUndefined();
    expect(idOfCatalogKey('catalog/x.tmp')).toBeUndefined();
    expect(idOfBackupObjectKey('backups/20261206-033800.123F/base.tar')).toBe('20261206-033800.123F');
    expect(idOfBackupObjectKey('backups/x')).toBeUndefined();
  });
});

describe('repository.json', () => {
  const info = { formatVersion: 1, cluster: { systemIdentifier: '7443990000000000001', majorVersion: 17 }, createdAt: new Date(0) };

  it('round-trips, and refuses a newer format', () => {
    expect(decodeRepositoryInfo(encodeRepositoryInfo(info))).toEqual(info);
    const newer = encodeRepositoryInfo({ ...info, formatVersion: 99 });
    expect(() => decodeRepositoryInfo(newer)).toThrow(/format version 99.*reads up to version 1/);
  });

  it('keeps the WAL segment size when it is known, and reads a file without it', () => {
    const withSize = { ...info, cluster: { ...info.cluster, walSegmentSize: 1024 * 1024 } };
    expect(JSON.parse(encodeRepositoryInfo(withSize).toString())).toMatchObject({ walSegmentSize: 1048576 });
    expect(decodeRepositoryInfo(encodeRepositoryInfo(withSize))).toEqual(withSize);
    expect(decodeRepositoryInfo(encodeRepositoryInfo(info)).cluster).not.toHaveProperty('walSegmentSize');
  });

  it('refuses another cluster, and a new major version of the same one', () => {
    const same = { systemIdentifier: '7443990000000000001', majorVersion: 17 };
    expect(() => checkClusterIdentity(info.cluster, same, '/r')).not.toThrow();
    let err: unknown;
    try {
      checkClusterIdentity(info.cluster, { systemIdentifier: '1', majorVersion: 17 }, '/r');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RepositoryMismatchError);
    expect(err).toMatchObject({ code: 'ERR_PGBB_REPOSITORY_MISMATCH', expected: info.cluster, actual: { systemIdentifier: '1' } });
    expect((err as Error).message).toMatch(/this server has system identifier 1, and the repository serves 7443990000000000001/);
    expect(() => checkClusterIdentity(info.cluster, { ...same, majorVersion: 18 }, '/r')).toThrow(
      /PostgreSQL 18, and the repository serves PostgreSQL 17/,
    );
  });
});

describe('durations', () => {
  it('parses units and sums', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('1d12h')).toBe(129_600_000);
    expect(parseDuration('2w')).toBe(1_209_600_000);
  });

  it.each(['', '7', 'd', '7x', '1.5h', '-1d', '0s', '7d ', '999999999999999w'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(ConfigError);
  });
});

describe('catalog', () => {
  const full1 = record({ id: '20261201-000000.000F', endTime: new Date('2026-12-01T00:10:00Z'), endLsn: parseLsn('0/1000000') });
  const full2 = record({ id: '20261203-000000.000F', endTime: new Date('2026-12-03T00:10:00Z') });
  const inc = record({ id: '20261204-000000.000I', type: 'incremental', parent: full2.id, endTime: new Date('2026-12-04T00:10:00Z') });

  it('sorts by id and finds the newest full backup, not an incremental', () => {
    expect(sortBackups([inc, full1, full2]).map((r) => r.id)).toEqual([full1.id, full2.id, inc.id]);
    expect(newestFullBackup([full1, inc, full2])).toBe(full2);
    expect(newestFullBackup([inc])).toBeUndefined();
  });

  it('--if-older-than: due without a full backup or when the newest is old enough', () => {
    const now = new Date('2026-12-04T00:10:00Z');
    expect(backupDue([], 3_600_000, now)).toEqual({ due: true });
    expect(backupDue([full1, full2, inc], 86_400_000, now)).toEqual({ due: true });
    expect(backupDue([full1, full2, inc], 2 * 86_400_000, now)).toEqual({ due: false, newest: full2, ageMs: 86_400_000 });
  });

  it('the window starts at the end of the oldest backup; its end waits for a WAL archive', () => {
    expect(pitrWindow([])).toEqual({ from: null, to: null });
    expect(pitrWindow([full2, full1])).toEqual({ from: { time: full1.endTime, lsn: full1.endLsn, timeline: 1 }, to: null });
  });
});
