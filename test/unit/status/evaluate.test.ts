// pgbb status's checks as a pure function: each exit code from the snapshot that should give it, the
// WAL archive's holes (which ones block a restore of the newest backup), the server's lag, the text.
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../../src/lsn.js';
import { statusWindow, summarizeWalArchive } from '../../../src/status/archive.js';
import { evaluateStatus, formatAge, formatStatusReport, type StatusReport } from '../../../src/status/evaluate.js';
import { repositoryMetrics } from '../../../src/status/metrics.js';
import { ago, backup, DAY, failure, HOUR, NOW, rehearsal, SEG, segments, state } from './fixtures.js';

const checkOf = (report: StatusReport, name: string) => report.checks.find((c) => c.name === name);

describe('evaluateStatus: exit codes', () => {
  it('OK (0): a fresh backup, an unbroken archive, a passed rehearsal', () => {
    const report = evaluateStatus(
      state({ walSegments: segments(2, 5, 5 * 60_000), rehearsals: [rehearsal(2 * HOUR, 'pass')] }),
      { maxBackupAgeMs: DAY, maxWalAgeMs: HOUR, maxRehearsalAgeMs: 7 * DAY },
      NOW,
    );
    expect(report.checks.map((c) => [c.name, c.state])).toEqual([
      ['backup-age', 'OK'],
      ['backup-failures', 'OK'],
      ['wal-archive', 'OK'],
      ['wal-age', 'OK'],
      ['rehearsal', 'OK'],
      ['pitr-window', 'OK'],
    ]);
    expect(report).toMatchObject({ state: 'OK', exitCode: 0 });
  });

  it('WARNING (1): the newest full backup is older than the limit; CRITICAL past twice it', () => {
    expect(evaluateStatus(state({ backups: [backup(30 * HOUR, 2)] }), { maxBackupAgeMs: DAY }, NOW)).toMatchObject({
      state: 'WARNING',
      exitCode: 1,
    });
    expect(
      checkOf(evaluateStatus(state({ backups: [backup(30 * HOUR, 2)] }), { maxBackupAgeMs: DAY }, NOW), 'backup-age')?.message,
    ).toMatch(/^newest full backup \d{8}-\d{6}\.\d{3}F ended 1d 06h ago \(limit 1d 00h\)$/);
    expect(evaluateStatus(state({ backups: [backup(49 * HOUR, 2)] }), { maxBackupAgeMs: DAY }, NOW).exitCode).toBe(2);
    // The default limit is a week.
    expect(evaluateStatus(state({ backups: [backup(6 * DAY, 2)] }), {}, NOW).exitCode).toBe(0);
    expect(evaluateStatus(state({ backups: [backup(8 * DAY, 2)] }), {}, NOW).exitCode).toBe(1);
  });

  it('CRITICAL (2): a hole in the archive after the newest backup, named', () => {
    const report = evaluateStatus(state({ walSegments: segments(2, 8, 60_000, [5, 6]) }), {}, NOW);
    expect(report).toMatchObject({ state: 'CRITICAL', exitCode: 2 });
    expect(checkOf(report, 'wal-archive')).toEqual({
      name: 'wal-archive',
      state: 'CRITICAL',
      message: 'missing 000000010000000000000005 to 000000010000000000000006 after the newest backup: a restore stops there',
    });
    expect(formatStatusReport(report).split('\n')[0]).toMatch(
      /^PGBB CRITICAL - wal-archive CRITICAL \| backup_age=3600s;604800;1209600;0 /,
    );
  });

  it('CRITICAL (2): the last rehearsal failed', () => {
    const report = evaluateStatus(state({ rehearsals: [rehearsal(DAY, 'pass'), rehearsal(HOUR, 'fail')] }), {}, NOW);
    expect(report.exitCode).toBe(2);
    expect(checkOf(report, 'rehearsal')?.message).toMatch(
      /^last rehearsal \d{8}-\d{6}\.\d{3}R 1h 00m ago FAILED at amcheck: 1 index damaged$/,
    );
  });

  it("a segment stored 'after' now (the storage's clock ahead, Swift rounding Last-Modified up) is 0 s old, not negative", () => {
    const report = evaluateStatus(state({ walSegments: segments(2, 5, -900) }), { maxWalAgeMs: HOUR }, NOW);
    expect(checkOf(report, 'wal-age')).toMatchObject({
      state: 'OK',
      message: 'newest segment 000000010000000000000005 stored 0s ago (limit 1h 00m)',
    });
    expect(report.perfdata).toContain('wal_age=0s;3600;7200;0');
    const families = repositoryMetrics(state({ walSegments: segments(2, 5, -900) }), NOW);
    expect(families.find((f) => f.name === 'pgbb_wal_archive_lag_seconds')?.samples[0]?.value).toBe(0);
  });

  it('UNKNOWN (3): nothing has used the repository', () => {
    const report = evaluateStatus(state({ info: undefined, backups: [] }), {}, NOW);
    expect(report).toEqual({
      state: 'UNKNOWN',
      exitCode: 3,
      checks: [{ name: 'repository', state: 'UNKNOWN', message: 'nothing has been stored in /r yet: is the address right?' }],
      perfdata: [],
    });
  });

  it('UNKNOWN (3) beats WARNING, CRITICAL beats UNKNOWN', () => {
    const unknownServer = { error: 'connection refused' };
    const stale = state({ backups: [backup(30 * HOUR, 2)], server: unknownServer });
    expect(evaluateStatus(stale, { maxBackupAgeMs: DAY }, NOW).state).toBe('UNKNOWN');
    expect(evaluateStatus(state({ rehearsals: [rehearsal(HOUR, 'fail')], server: unknownServer }), {}, NOW).state).toBe('CRITICAL');
  });

  it('a repository with WAL but no backup: CRITICAL, no full backup', () => {
    const report = evaluateStatus(state({ backups: [], walSegments: segments(2, 3, 0) }), {}, NOW);
    expect(checkOf(report, 'backup-age')).toMatchObject({ state: 'CRITICAL', message: 'the repository holds no full backup' });
  });
});

describe('evaluateStatus: performance data', () => {
  it('gives each known figure with the limits of its check', () => {
    const s = state({
      walSegments: segments(2, 5, 5 * 60_000, [4]),
      rehearsals: [rehearsal(2 * HOUR, 'pass')],
      failures: [failure(10 * 60_000)],
      server: { lsn: parseLsn(`0/${(7 * SEG).toString(16)}`), timeline: 1 },
    });
    expect(evaluateStatus(s, { maxBackupAgeMs: DAY, maxWalAgeMs: HOUR }, NOW).perfdata).toEqual([
      'backup_age=3600s;86400;172800;0',
      'backup_failures=1;0;;0',
      'wal_segments=3;;;0',
      'wal_gaps=1;;;0',
      'wal_age=300s;3600;7200;0',
      `wal_lag=${SEG}B;;;0`,
      'rehearsal_age=7200s;;;0',
      'rehearsal_recovery=60s;;;0',
    ]);
  });
});

describe('evaluateStatus: the rules of each check', () => {
  it('failed backup runs count only after the last success', () => {
    const older = failure(2 * DAY);
    const newer = failure(30 * 60_000);
    const report = evaluateStatus(state({ failures: [older, newer] }), {}, NOW);
    expect(checkOf(report, 'backup-failures')).toEqual({
      name: 'backup-failures',
      state: 'WARNING',
      message: `1 failed backup run since the last success, the latest ${newer.id}: ERR_PGBB_STORAGE: put failed: 500`,
    });
    expect(checkOf(evaluateStatus(state({ failures: [older] }), {}, NOW), 'backup-failures')?.state).toBe('OK');
  });

  it('a hole before the newest backup only warns; one between the backup and the archive is critical', () => {
    const twoBackups = [backup(3 * DAY, 2), backup(HOUR, 10)];
    const before = evaluateStatus(state({ backups: twoBackups, walSegments: segments(2, 12, 0, [4]) }), {}, NOW);
    expect(checkOf(before, 'wal-archive')).toMatchObject({ state: 'WARNING' });
    expect(checkOf(before, 'wal-archive')?.message).toMatch(/^missing 000000010000000000000004 before the newest backup/);
    const between = evaluateStatus(state({ backups: [backup(HOUR, 2)], walSegments: segments(4, 6, 0) }), {}, NOW);
    expect(checkOf(between, 'wal-archive')?.message).toBe(
      'missing 000000010000000000000002 to 000000010000000000000003 after the newest backup: a restore stops there',
    );
    const endsBefore = evaluateStatus(state({ backups: [backup(HOUR, 9)], walSegments: segments(2, 5, DAY) }), {}, NOW);
    expect(checkOf(endsBefore, 'wal-archive')?.message).toMatch(/ends before the newest backup/);
  });

  it('without WAL: OK without a WAL limit, CRITICAL with one; an unknown segment size is UNKNOWN', () => {
    expect(checkOf(evaluateStatus(state(), {}, NOW), 'wal-archive')?.state).toBe('OK');
    expect(checkOf(evaluateStatus(state(), { maxWalAgeMs: HOUR }, NOW), 'wal-archive')?.state).toBe('CRITICAL');
    const info = { formatVersion: 1, cluster: { systemIdentifier: '1', majorVersion: 17 }, createdAt: NOW };
    expect(checkOf(evaluateStatus(state({ info, walSegments: segments(2, 3, 0) }), {}, NOW), 'wal-archive')?.state).toBe('UNKNOWN');
  });

  it('WAL age: the limit applies unless the server is still in the segment after the archive', () => {
    const old = state({ walSegments: segments(2, 5, 3 * HOUR) });
    expect(checkOf(evaluateStatus(old, { maxWalAgeMs: HOUR }, NOW), 'wal-age')?.state).toBe('CRITICAL');
    expect(checkOf(evaluateStatus(old, { maxWalAgeMs: 2 * HOUR }, NOW), 'wal-age')?.state).toBe('WARNING');
    // The archive ends at segment 6's start; a server at 6/100 has nothing complete left to archive.
    const quiet = { ...old, server: { lsn: parseLsn(`0/${(6 * SEG + 0x100).toString(16)}`), timeline: 1 } };
    expect(checkOf(evaluateStatus(quiet, { maxWalAgeMs: HOUR }, NOW), 'wal-age')?.state).toBe('OK');
    expect(checkOf(evaluateStatus(quiet, {}, NOW), 'wal-lag')).toEqual({
      name: 'wal-lag',
      state: 'OK',
      message: 'server at 0/6000100 (timeline 1), archive ends at 0/6000000: 256 bytes behind',
    });
    const behind = { ...old, server: { lsn: parseLsn(`0/${(9 * SEG).toString(16)}`), timeline: 1 } };
    expect(checkOf(evaluateStatus(behind, { maxWalAgeMs: HOUR }, NOW), 'wal-age')?.state).toBe('CRITICAL');
    expect(summarizeWalArchive(behind)?.lagBytes).toBe(3 * SEG);
  });

  it('rehearsal age: none is OK without a limit, WARNING with one; stale passes warn then page', () => {
    expect(checkOf(evaluateStatus(state(), {}, NOW), 'rehearsal')).toMatchObject({ state: 'OK', message: 'no rehearsal recorded' });
    expect(checkOf(evaluateStatus(state(), { maxRehearsalAgeMs: DAY }, NOW), 'rehearsal')?.state).toBe('WARNING');
    const s = state({ rehearsals: [rehearsal(36 * HOUR, 'pass')] });
    expect(checkOf(evaluateStatus(s, { maxRehearsalAgeMs: DAY }, NOW), 'rehearsal')?.state).toBe('WARNING');
    expect(checkOf(evaluateStatus(s, { maxRehearsalAgeMs: 12 * HOUR }, NOW), 'rehearsal')?.state).toBe('CRITICAL');
  });

  it('the window ends at the archive before its first hole after the newest backup', () => {
    const s = state({ walSegments: segments(2, 9, 0, [7]) });
    const w = statusWindow(s, summarizeWalArchive(s));
    expect(w.toSource).toBe('archive');
    expect(w.to).toEqual({
      time: s.walSegments.find((x) => x.name === '000000010000000000000006')!.storedAt,
      lsn: 7n * BigInt(SEG),
      timeline: 1,
    });
    expect(w.from?.time).toEqual(s.backups[0]!.endTime);
    const noWal = statusWindow(state(), undefined);
    expect(noWal).toMatchObject({ toSource: 'backup', to: { time: state().backups[0]!.endTime } });
  });

  it('formats ages and the report', () => {
    expect([formatAge(999), formatAge(61_000), formatAge(2 * HOUR + 5 * 60_000), formatAge(3 * DAY + 4 * HOUR)]).toEqual([
      '1s',
      '1m 01s',
      '2h 05m',
      '3d 04h',
    ]);
    const text = formatStatusReport(evaluateStatus(state({ backups: [backup(ago(0).getTime() - ago(HOUR).getTime(), 2)] }), {}, NOW));
    expect(text.split('\n')[0]).toBe('PGBB OK - all checks passed | backup_age=3600s;604800;1209600;0 backup_failures=0;0;;0');
    expect(text.trimEnd().split('\n').slice(1)).toHaveLength(5);
  });
});
