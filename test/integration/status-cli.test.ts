// pgbb status, pgbb metrics and rehearsal records against real servers (15 and 17), with a local
// directory repository and an S3 one on Swift: an empty repository is UNKNOWN (3); a fresh backup with
// its archived WAL is OK (0); a stale backup WARNING (1); a hole in the archive CRITICAL (2), naming the
// segment; pgbb rehearse --repo records its result (a pass in the local repository, of the repository's
// own backup; a failure on Swift), which list and status show, a failed one making status CRITICAL; a
// failed backup run is recorded and warned about. Archived segments are put in place with the storage
// API (what receive-wal --repo stores).
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseSegmentFileName, segmentNumber } from '../../src/wal-segments.js';
import { walSegmentKey } from '../../src/repository/wal-keys.js';
import { atomicArchiveCommand, makeTempDir, startCluster, type Cluster } from '../harness/index.js';
import { pgbbForFile, runPgbb, type PgbbRun } from '../harness/pgbb-cli.js';
import { repositoryTarget, swiftBucketForFile } from '../harness/repositories.js';
import { parsePrometheusText } from '../unit/status/prometheus-parser.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';
import { rehearsalServerFlags } from './rehearse-helpers.js';

const SEGMENT = 1024 * 1024;
// The server user runs pgbb restore-wal in the rehearsal's restore_command.
const runnable = pgbbForFile({ forServer: true });
const s3 = swiftBucketForFile('pgbb-status');

/** The check lines of a status run, by check name. */
function checks(r: PgbbRun): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of r.stdout.trimEnd().split('\n').slice(1)) {
    const m = /^(OK|WARNING|CRITICAL|UNKNOWN): ([a-z-]+): (.*)$/.exec(line);
    expect(m, line).not.toBeNull();
    out.set(m![2]!, `${m![1]}: ${m![3]}`);
  }
  return out;
}

describe.each(walTestMajors(WAL_MAJORS_15_17))('pgbb status, metrics and rehearsal records on PostgreSQL %i', (major) => {
  let c: Cluster;
  let archive: string;

  beforeAll(async () => {
    archive = await makeTempDir('status-archive');
    c = await startCluster({
      major,
      walSegmentSizeMb: 1,
      ssl: false,
      conf: { archive_mode: 'on', archive_command: atomicArchiveCommand(archive) },
    });
    await c.sql('CREATE TABLE t (n int PRIMARY KEY)');
    await c.sql('INSERT INTO t SELECT generate_series(1, 1000)');
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  });

  /** Writes rows and switches segments until the archive holds every segment before the server's current one. */
  async function archiveMore(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await c.sql('INSERT INTO t SELECT max(n) + g FROM t, generate_series(1, 500) g GROUP BY g');
      await c.sql('SELECT pg_switch_wal()');
    }
    const [prev] = await c.sql<{ f: string }>(`SELECT pg_walfile_name(pg_current_wal_lsn() - ${SEGMENT}) AS f`);
    await vi.waitFor(() => expect(existsSync(join(archive, prev!.f))).toBe(true), { timeout: 60_000, interval: 100 });
  }

  /** Archived segment names of timeline 1 from `fromSegno` on, in order. */
  function archivedFrom(fromSegno: bigint): string[] {
    return readdirSync(archive)
      .filter((n) => {
        const parsed = parseSegmentFileName(n, SEGMENT);
        return parsed !== null && parsed.timeline === 1 && parsed.segno >= fromSegno;
      })
      .sort();
  }

  for (const kind of ['local', 's3'] as const) {
    it(`${kind}: UNKNOWN when empty, OK, WARNING for a stale backup, CRITICAL for a hole; a recorded rehearsal in list, status and metrics`, async () => {
      const target = await repositoryTarget(kind, `status${major}`, s3);
      const pgbb = (args: string[]) => runPgbb(runnable(), args, target.env);
      const status = (...args: string[]) => pgbb(['status', '--repo', target.address, ...args]);

      const empty = await status();
      expect(empty.code, empty.stderr).toBe(3);
      expect(empty.stdout).toMatch(/^PGBB UNKNOWN - repository UNKNOWN\nUNKNOWN: repository: nothing has been stored in .* yet/);

      const b = await pgbb(['backup', '-d', c.connectionString(), '--repo', target.address, '-c', 'fast']);
      expect(b.code, b.stderr).toBe(0);
      await archiveMore();
      await using repo = await target.open();
      const [record] = await repo.listBackups();
      const stored = archivedFrom(segmentNumber(record!.endLsn, SEGMENT));
      expect(stored.length).toBeGreaterThanOrEqual(3);
      for (const name of stored) await repo.storage.put(walSegmentKey(name), readFileSync(join(archive, name)));

      const ok = await status('-d', c.connectionString(), '--max-backup-age', '1d', '--max-wal-age', '1h');
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout.split('\n')[0]).toMatch(
        new RegExp(
          `^PGBB OK - all checks passed \\| backup_age=\\d+s;86400;172800;0 backup_failures=0;0;;0 wal_segments=${stored.length};;;0 wal_gaps=0;;;0 wal_age=\\d+s;3600;7200;0 wal_lag=\\d+B;;;0$`,
        ),
      );
      const okChecks = checks(ok);
      expect(okChecks.get('backup-age')).toMatch(new RegExp(`^OK: newest full backup ${record!.id} ended \\d+s ago \\(limit 1d 00h\\)$`));
      expect(okChecks.get('wal-archive')).toBe(`OK: no gap: ${stored[0]} to ${stored.at(-1)}, ${stored.length} segments`);
      expect(okChecks.get('wal-lag')).toMatch(
        /^OK: server at [0-9A-F]+\/[0-9A-F]+ \(timeline 1\), archive ends at [0-9A-F]+\/[0-9A-F]+: \d+ bytes behind$/,
      );
      expect(okChecks.get('pitr-window')).toMatch(/^OK: from \S+ \(.*\) to \S+ \(.*, timeline 1\)$/);
      const json = await status('--json');
      expect(JSON.parse(json.stdout)).toMatchObject({ state: 'OK', exitCode: 0 });

      // A backup older than the limit: its record rewritten 36 hours back.
      await repo.commitBackup({ ...record!, endTime: new Date(Date.now() - 36 * 3_600_000) });
      const stale = await status('--max-backup-age', '1d');
      expect(stale.code, stale.stdout).toBe(1);
      expect(stale.stdout.split('\n')[0]).toMatch(/^PGBB WARNING - backup-age WARNING \| backup_age=1296\d\ds;86400;172800;0 /);
      expect(checks(stale).get('backup-age')).toMatch(/^WARNING: newest full backup .* ended 1d 12h ago \(limit 1d 00h\)$/);
      await repo.commitBackup(record!);

      // A hole after the backup: a restore would stop there.
      const missing = stored[1]!;
      await repo.storage.delete(walSegmentKey(missing));
      const holed = await status();
      expect(holed.code, holed.stdout).toBe(2);
      expect(checks(holed).get('wal-archive')).toBe(`CRITICAL: missing ${missing} after the newest backup: a restore stops there`);
      await repo.storage.put(walSegmentKey(missing), readFileSync(join(archive, missing)));
      expect((await status()).code).toBe(0);

      const scratch = await makeTempDir('status-scratch');
      const rehearse = (backupDir: string, walArchive: string) =>
        pgbb(['rehearse', backupDir, '--wal-archive', walArchive, ...rehearsalServerFlags(c, scratch, '100s'), '--repo', target.address]);
      let rehearsal: PgbbRun;
      if (kind === 'local') {
        // The local repository's backup directory is a tar-format backup: rehearse it, and record there.
        rehearsal = await rehearse(join(target.address, 'backups', record!.id), archive);
        expect(rehearsal.code, rehearsal.stdout + rehearsal.stderr).toBe(0);
        expect(rehearsal.stdout).toMatch(new RegExp(`^recorded as rehearsal \\d{8}-\\d{6}\\.\\d{3}R of backup ${record!.id}$`, 'm'));
      } else {
        // A directory backup rehearsed with an archive that lacks a segment after it: it fails, and the failure is recorded.
        const dir = await makeTempDir('status-backup');
        const d = await pgbb(['backup', '-d', c.connectionString(), '-D', dir, '-Ft', '-X', 'none', '-c', 'fast']);
        expect(d.code, d.stderr).toBe(0);
        await archiveMore();
        // The segment after the newest backup label (this directory backup's) is left out.
        const newestLabel = readdirSync(archive)
          .filter((n) => n.endsWith('.backup'))
          .sort()
          .at(-1)!;
        const gap = readdirSync(archive)
          .filter((n) => /^[0-9A-F]{24}$/.test(n) && n > newestLabel.slice(0, 24))
          .sort()[0]!;
        const holedArchive = await makeTempDir('status-holed');
        for (const n of readdirSync(archive)) if (n !== gap) copyFileSync(join(archive, n), join(holedArchive, n));
        rehearsal = await rehearse(dir, holedArchive);
        expect(rehearsal.code, rehearsal.stdout + rehearsal.stderr).toBe(1);
        expect(rehearsal.stdout).toContain(gap);
        expect(rehearsal.stdout).toMatch(/^recorded as rehearsal \d{8}-\d{6}\.\d{3}R$/m);
      }
      expect(readdirSync(scratch)).toEqual([]);

      const list = await pgbb(['list', '--repo', target.address, '--json']);
      expect(list.code, list.stderr).toBe(0);
      const listed = (JSON.parse(list.stdout) as { rehearsals: Record<string, unknown>[] }).rehearsals;
      expect(listed).toHaveLength(1);
      const text = await pgbb(['list', '--repo', target.address]);
      expect(text.stdout).toMatch(/^REHEARSAL\s+BACKUP\s+RESULT\s+FAILED STEP\s+RECOVERY TIME\s+RECOVERY POINT$/m);

      const after = await status();
      const metrics = await pgbb(['metrics', '--repo', target.address, '-d', c.connectionString()]);
      expect(metrics.code, metrics.stderr).toBe(0);
      const families = parsePrometheusText(metrics.stdout);
      expect(families.get('pgbb_backups')?.samples).toContainEqual({ labels: { type: 'full' }, value: 1 });
      expect(families.get('pgbb_wal_archive_segments')?.samples).toEqual([{ labels: {}, value: stored.length }]);
      expect(families.get('pgbb_wal_archive_lag_bytes')?.samples[0]?.value).toBeGreaterThanOrEqual(0);
      if (kind === 'local') {
        expect(listed[0]).toMatchObject({ backupId: record!.id, result: 'pass', failedStep: null, major });
        expect(listed[0]!['recoveryMs']).toBeGreaterThan(0);
        expect(listed[0]!['walBytes']).toBeGreaterThan(SEGMENT);
        expect(after.code, after.stdout).toBe(0);
        expect(checks(after).get('rehearsal')).toMatch(
          new RegExp(`^OK: last rehearsal \\S+R of ${record!.id} \\d+s ago passed, recovery time \\d+s$`),
        );
        expect(families.get('pgbb_rehearsal_last_success')?.samples).toEqual([{ labels: {}, value: 1 }]);
        expect(families.get('pgbb_rehearsal_recovery_seconds')?.samples[0]?.value).toBeGreaterThan(0);
        expect(families.get('pgbb_last_success_timestamp_seconds')?.samples.map((s) => s.labels['kind'])).toEqual(['full', 'rehearsal']);
      } else {
        expect(listed[0]).toMatchObject({ backupId: null, result: 'fail', failedStep: 'archive' });
        expect(after.code, after.stdout).toBe(2);
        expect(checks(after).get('rehearsal')).toMatch(
          /^CRITICAL: last rehearsal \S+R \d+s ago FAILED at archive: the WAL archive has a hole: /,
        );
        expect(families.get('pgbb_rehearsal_last_success')?.samples).toEqual([{ labels: {}, value: 0 }]);
      }

      // A backup run that fails (here: no server to connect to) is recorded, and status warns about it.
      const failedRun = await pgbb(['backup', '-d', 'host=127.0.0.1 port=1 user=nobody connect_timeout=5', '--repo', target.address]);
      expect(failedRun.code).toBe(1);
      const warned = await status();
      expect(checks(warned).get('backup-failures')).toMatch(
        /^WARNING: 1 failed backup run since the last success, the latest \d{8}-\d{6}\.\d{3}F: ERR_PGBB_\w+: /,
      );
      expect(warned.code).toBe(kind === 'local' ? 1 : 2);
    }, 300_000);
  }
});
