// `pgbb expire` and `pgbb verify --repo` (dist/cli/main.js, and expireRepository / verifyRepository) on
// repositories filled by real backups of real servers, in a local directory and on the Swift S3 server:
// --retain-full 1 removes the older backup and the WAL before the kept one; --dry-run changes nothing; a
// held lock refuses; an incremental chain (17+) is never orphaned; verify --repo passes on a good
// repository and fails naming a corrupted object and a missing WAL segment.
//
// The WAL archive is put in place through the storage API: `receive-wal --repo`, which fills it in
// production, is being built in parallel. Its segments carry placeholder bytes: expire decides on their
// names only, and verify --repo checks the archive's continuity by name (the backups checked here hold
// their own WAL in pg_wal.tar, which verify reads and checks record by record).
import { gzipSync } from 'node:zlib';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RepositoryLockedError } from '../../src/errors.js';
import { formatLsn } from '../../src/lsn.js';
import { backupToRepository, type RepositoryBackupResult } from '../../src/repository/backup.js';
import { backupIdFor } from '../../src/repository/backup-id.js';
import { expireRepository } from '../../src/repository/expire.js';
import { commitRehearsal, recordBackupFailure } from '../../src/repository/history.js';
import { failureKey, rehearsalKey } from '../../src/repository/layout.js';
import { rehearsalIdFor } from '../../src/repository/rehearsal-record.js';
import type { BackupRecord } from '../../src/repository/record.js';
import type { Repository } from '../../src/repository/repository.js';
import { verifyRepository } from '../../src/repository/verify-repository.js';
import { walSegmentKey } from '../../src/repository/wal-keys.js';
import { segmentFileName, segmentNumber } from '../../src/wal-segments.js';
import { pgbbForFile, runPgbb } from '../harness/pgbb-cli.js';
import { startCluster, testMajors, type Cluster } from '../harness/index.js';
import { repositoryKeys, repositoryTargets, swiftBucketForFile } from '../harness/repositories.js';
import { describeEachMajor, trustTcp } from '../harness/suite.js';
import { failure, rehearsal } from '../unit/status/fixtures.js';

const SEG = 16 * 1024 * 1024;
const pgbb = pgbbForFile();
const targets = repositoryTargets(swiftBucketForFile('pgbb-expire'));

function stored(outcome: RepositoryBackupResult): BackupRecord {
  if (outcome.skipped) throw new Error('the backup was skipped');
  return outcome.record;
}

const segno = (lsn: bigint) => Number(segmentNumber(lsn, SEG));
const segmentKey = (timeline: number, n: number) => walSegmentKey(segmentFileName(timeline, BigInt(n), SEG), 'gzip');

/** Archived WAL from two segments before `from`'s start to two after `to`'s end, as receive-wal --repo would store it. */
async function archiveWal(repo: Repository, from: BackupRecord, to: BackupRecord): Promise<number[]> {
  const numbers: number[] = [];
  for (let n = Math.max(1, segno(from.startLsn) - 2); n <= segno(to.endLsn) + 2; n++) {
    await repo.storage.put(segmentKey(from.timeline, n), Buffer.from(`placeholder for segment ${n}`));
    numbers.push(n);
  }
  return numbers;
}

/** Two full backups with writes in between, and the WAL archive around them. */
async function twoFullBackups(repo: Repository, cluster: Cluster): Promise<{ older: BackupRecord; newer: BackupRecord; wal: number[] }> {
  const older = stored(await backupToRepository(repo, { connection: trustTcp(cluster), checkpoint: 'fast' }));
  // Enough WAL that the next backup starts in a later segment.
  await cluster.sql('create table if not exists expire_t as select 1 as i');
  await cluster.sql('select pg_switch_wal()');
  const newer = stored(await backupToRepository(repo, { connection: trustTcp(cluster), checkpoint: 'fast' }));
  expect(segno(newer.startLsn)).toBeGreaterThan(segno(older.startLsn));
  return { older, newer, wal: await archiveWal(repo, older, newer) };
}

/**
 * History beside the two backups: rehearsals of the older (passed), the newer (passed) and again the
 * older (failed, the newest), and failed runs before the older backup, between the two and after the
 * newer one. Returns the keys expire must remove and those it must keep.
 */
async function writeHistory(repo: Repository, older: BackupRecord, newer: BackupRecord): Promise<{ gone: string[]; stay: string[] }> {
  const at = (base: Date, ms: number) => new Date(base.getTime() + ms);
  const rehearsalOf = async (b: BackupRecord, start: Date, result: 'pass' | 'fail') => {
    const r = rehearsal(0, result, { id: rehearsalIdFor(start), backupId: b.id, startTime: start, endTime: at(start, 1000) });
    await commitRehearsal(repo, r);
    return rehearsalKey(r.id);
  };
  const failedAt = async (start: Date) => {
    const id = backupIdFor(start, 'full');
    await recordBackupFailure(repo, { ...failure(0), id, startTime: start, endTime: at(start, 1000) });
    return failureKey(id);
  };
  const between = at(older.endTime, (newer.startTime.getTime() - older.endTime.getTime()) / 2);
  return {
    gone: [
      await rehearsalOf(older, at(newer.endTime, 1000), 'pass'),
      await failedAt(at(older.startTime, -3_600_000)),
      await failedAt(between),
    ],
    stay: [
      await rehearsalOf(newer, at(newer.endTime, 2000), 'pass'),
      await rehearsalOf(older, at(newer.endTime, 3000), 'fail'),
      await failedAt(at(newer.startTime, 1)),
    ],
  };
}

/**
 * What `pgbb status` says of the repository, without the parts that change with the clock or the window;
 * `warnings`, the lines it must print on stderr.
 */
async function statusVerdict(address: string, env: Record<string, string>, warnings: string[] = []) {
  const run = await runPgbb(pgbb(), ['status', '--repo', address, '--json'], env);
  expect(run.stderr).toBe(warnings.map((w) => `${w}\n`).join(''));
  const report = JSON.parse(run.stdout) as { state: string; checks: { name: string; state: string; message: string }[] };
  const history = new Set(['rehearsal', 'backup-failures']);
  return {
    code: run.code,
    state: report.state,
    // Ages ("0s ago", "1s ago") move with the clock between two calls; the rest of the message must not.
    checks: report.checks.map((c) => ({
      name: c.name,
      state: c.state,
      ...(history.has(c.name) ? { message: c.message.replace(/\b\d+[smhd]( \d+[smh])? ago\b/g, '<age> ago') } : {}),
    })),
  };
}

describeEachMajor(
  'expire and verify --repo',
  testMajors(),
  (major, primary) => {
    for (const [name, make] of targets) {
      describe(name, () => {
        it('--retain-full 1 removes the older backup and the WAL before the kept one; --dry-run changes nothing', async () => {
          const target = await make(`expire${major}`);
          await using repo = await target.open();
          const { older, newer, wal } = await twoFullBackups(repo, primary());
          const records = await writeHistory(repo, older, newer);
          const verdict = await statusVerdict(target.address, target.env);
          const before = await repositoryKeys(repo);

          const dry = await runPgbb(pgbb(), ['expire', '--repo', target.address, '--retain-full', '1', '--dry-run', '--json'], target.env);
          expect(dry.stderr).toBe('');
          expect(dry.code).toBe(0);
          const planned = JSON.parse(dry.stdout);
          expect(planned).toMatchObject({ dryRun: true, policy: { retainFull: 1 }, keptBackups: [newer.id] });
          expect(planned.removedBackups.map((b: { id: string }) => b.id)).toEqual([older.id]);
          expect([
            ...planned.removedRehearsals.map((r: { id: string }) => rehearsalKey(r.id)),
            ...planned.removedFailures.map(failureKey),
          ]).toEqual(records.gone);
          // The window before and after ends where the archive does, as pgbb list reports it.
          const listed = await runPgbb(pgbb(), ['list', '--repo', target.address, '--json'], target.env);
          const archiveEnd = JSON.parse(listed.stdout).pitrWindow.to;
          expect(archiveEnd).toMatchObject({ lsn: formatLsn(BigInt(wal.at(-1)! + 1) * BigInt(SEG)), timeline: newer.timeline });
          expect(planned.before.pitrWindow.to).toEqual(archiveEnd);
          expect(planned.after.pitrWindow.to).toEqual(archiveEnd);
          expect(await repositoryKeys(repo)).toEqual(before);

          // What an expire that died after removing a record leaves: objects without a record.
          const leftover = '20260101-000000.000F';
          await repo.storage.put(`backups/${leftover}/base.tar`, Buffer.from('left behind'));

          const run = await runPgbb(pgbb(), ['expire', '--repo', target.address, '--retain-full', '1'], target.env);
          expect(run.stderr).toBe('');
          expect(run.code).toBe(0);
          expect(run.stdout).toContain(`removed the objects of ${leftover}, which had no catalog record`);
          expect(await repositoryKeys(repo, `backups/${leftover}/`)).toEqual([]);
          expect(run.stdout).toContain(`removed backup ${older.id} (full`);
          expect(run.stdout).toMatch(/point-in-time window before: from .*\npoint-in-time window after: {2}from /);
          expect(run.stdout).toContain(`removed 1 rehearsal record (of backups no longer kept: ${older.id})`);
          expect(run.stdout).toContain('removed 2 failed-run records older than the oldest backup kept');
          // The history of the removed backup went, the newest rehearsal (of it) stayed, and status reads the same.
          const left = [...(await repositoryKeys(repo, 'rehearsals/')), ...(await repositoryKeys(repo, 'failures/'))];
          expect(left.sort()).toEqual([...records.stay].sort());
          expect(await statusVerdict(target.address, target.env)).toEqual(verdict);

          expect((await repo.listBackups()).map((b) => b.id)).toEqual([newer.id]);
          expect(await repositoryKeys(repo, `backups/${older.id}/`)).toEqual([]);
          const kept = wal.filter((n) => n >= segno(newer.startLsn));
          expect(await repositoryKeys(repo, 'wal/')).toEqual(kept.map((n) => segmentKey(newer.timeline, n)).sort());
          // The report named exactly the segments that went.
          expect(run.stdout).toContain(
            `removed ${wal.length - kept.length} WAL segments of timeline ${newer.timeline}: ${segmentFileName(newer.timeline, BigInt(wal[0]!), SEG)}`,
          );
          // What is left verifies, and a second expire has nothing to do.
          expect((await verifyRepository(repo)).findings).toEqual([]);
          expect(await expireRepository(repo, { retainFull: 1 })).toMatchObject({
            remove: [],
            removeWal: [],
            removeRehearsals: [],
            removeFailures: [],
          });
        });

        it('unreadable history records: expire warns, removes only the one its key dates before the kept backups; list and status warn and show the rest', async () => {
          const target = await make(`expire${major}`);
          await using repo = await target.open();
          const { older, newer } = await twoFullBackups(repo, primary());
          const records = await writeHistory(repo, older, newer);
          const verdict = await statusVerdict(target.address, target.env);
          const listing = JSON.parse((await runPgbb(pgbb(), ['list', '--repo', target.address, '--json'], target.env)).stdout);

          // Not JSON, and older than both backups: its key alone says the rule removes it.
          const oldGarbage = failureKey(backupIdFor(new Date(older.startTime.getTime() - 7_200_000), 'full'));
          await repo.storage.put(oldGarbage, Buffer.from('{"formatVersion": 1, "id": "cut sh'));
          // Cut short, and the newest failed run of all: kept (the newest failure record always is).
          const newGarbage = failureKey(backupIdFor(new Date(newer.startTime.getTime() + 2), 'full'));
          await repo.storage.put(newGarbage, Buffer.from('{"formatVersion": 1,'));
          // A rehearsal record of a format from the future: which backup it names is unknown, so it stays.
          const rehearsalGarbage = rehearsalKey(rehearsalIdFor(new Date(older.startTime.getTime() - 3_600_000)));
          await repo.storage.put(rehearsalGarbage, Buffer.from('{"formatVersion": 99}'));
          const notJson = (key: string) => `the repository object "${key}" is not valid JSON`;
          const reasons = {
            [oldGarbage]: notJson(oldGarbage),
            [newGarbage]: notJson(newGarbage),
            [rehearsalGarbage]: `the rehearsal record "${rehearsalGarbage}" has format version 99, newer than this pg-basebackup reads`,
          };
          const skipped = (key: string) => `pgbb: warning: skipped the unreadable history record "${key}": ${reasons[key]}`;
          const expireWarnings = (removed: string) =>
            [
              `${skipped(oldGarbage)}; ${removed} all the same: its key dates the run before the oldest backup kept`,
              `${skipped(newGarbage)}; kept: repair or delete it`,
              `${skipped(rehearsalGarbage)}; kept: repair or delete it`,
            ]
              .map((l) => `${l}\n`)
              .join('');
          const before = await repositoryKeys(repo);

          // list and status: a warning each, and the rest as before.
          const listed = await runPgbb(pgbb(), ['list', '--repo', target.address, '--json'], target.env);
          expect(listed.code).toBe(0);
          expect(listed.stderr).toBe(`${skipped(rehearsalGarbage)}\n`);
          expect(JSON.parse(listed.stdout)).toEqual(listing);
          const text = await runPgbb(pgbb(), ['list', '--repo', target.address], target.env);
          expect(text.code).toBe(0);
          expect(text.stdout).toContain(newer.id);
          expect(
            await statusVerdict(target.address, target.env, [skipped(oldGarbage), skipped(newGarbage), skipped(rehearsalGarbage)]),
          ).toEqual(verdict);

          const dry = await runPgbb(pgbb(), ['expire', '--repo', target.address, '--retain-full', '1', '--dry-run', '--json'], target.env);
          expect(dry.code).toBe(0);
          expect(dry.stderr).toBe(expireWarnings('would be removed'));
          const planned = JSON.parse(dry.stdout);
          expect(planned.removedBackups.map((b: { id: string }) => b.id)).toEqual([older.id]);
          expect([
            ...planned.removedRehearsals.map((r: { id: string }) => rehearsalKey(r.id)),
            ...planned.removedFailures.map(failureKey),
          ]).toEqual(records.gone);
          expect(planned.unreadableHistory).toEqual([
            { key: oldGarbage, reason: reasons[oldGarbage], removed: true },
            { key: newGarbage, reason: reasons[newGarbage], removed: false },
            { key: rehearsalGarbage, reason: reasons[rehearsalGarbage], removed: false },
          ]);
          expect(await repositoryKeys(repo)).toEqual(before);

          const run = await runPgbb(pgbb(), ['expire', '--repo', target.address, '--retain-full', '1'], target.env);
          expect(run.code).toBe(0);
          expect(run.stderr).toBe(expireWarnings('removed'));
          expect(run.stdout).toContain(`removed backup ${older.id} (full`);
          expect(run.stdout).toContain(`removed 1 rehearsal record (of backups no longer kept: ${older.id})`);
          expect(run.stdout).toContain('removed 2 failed-run records older than the oldest backup kept');
          expect(run.stdout).toContain('removed 1 unreadable failed-run record older than the oldest backup kept, judged by key');
          expect(run.stdout).toContain('kept 2 unreadable history records (see the warnings)');
          const left = [...(await repositoryKeys(repo, 'rehearsals/')), ...(await repositoryKeys(repo, 'failures/'))];
          expect(left.sort()).toEqual([...records.stay, newGarbage, rehearsalGarbage].sort());
          expect((await repo.listBackups()).map((b) => b.id)).toEqual([newer.id]);
          expect(await statusVerdict(target.address, target.env, [skipped(newGarbage), skipped(rehearsalGarbage)])).toEqual(verdict);
        });

        it('a held lock refuses expire, and the repository is left as it was', async () => {
          const target = await make(`expire${major}`);
          await using repo = await target.open();
          await twoFullBackups(repo, primary());
          const before = await repositoryKeys(repo);
          const lock = await repo.lock('backup');
          try {
            const err = await expireRepository(repo, { retainFull: 1 }).then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(err).toBeInstanceOf(RepositoryLockedError);
            expect(err).toMatchObject({ holder: { operation: 'backup', pid: process.pid } });
            const run = await runPgbb(pgbb(), ['expire', '--repo', target.address, '--retain-full', '1'], target.env);
            expect(run.code).toBe(1);
            expect(run.stderr).toMatch(/locked by backup/);
          } finally {
            await lock.release();
          }
          expect(await repositoryKeys(repo)).toEqual(before);
        });

        it('verify --repo passes on a good repository, and fails naming a corrupted object and a missing WAL segment', async () => {
          const target = await make(`expire${major}`);
          await using repo = await target.open();
          const { newer, wal } = await twoFullBackups(repo, primary());

          const good = await runPgbb(pgbb(), ['verify', '--repo', target.address], target.env);
          expect(good.stderr).toBe('');
          expect(good.code).toBe(0);
          expect(good.stdout).toMatch(/repository successfully verified: 2 backup\(s\)/);

          // One flipped byte in the middle of the newer backup's streamed WAL.
          const chunks: Buffer[] = [];
          for await (const chunk of await repo.openBackupObject(newer.id, 'pg_wal.tar')) chunks.push(chunk as Buffer);
          const bytes = Buffer.concat(chunks);
          const at = Math.floor(bytes.length / 2);
          bytes[at] = bytes[at]! ^ 0xff;
          await repo.storage.put(`backups/${newer.id}/pg_wal.tar`, bytes);
          // And a segment missing in the middle of the archive.
          const missing = wal[Math.floor(wal.length / 2)]!;
          await repo.storage.delete(segmentKey(newer.timeline, missing));

          const bad = await runPgbb(pgbb(), ['verify', '--repo', target.address, '--json'], target.env);
          expect(bad.code).toBe(1);
          expect(bad.stderr).toContain(`backup ${newer.id}: object "pg_wal.tar" has SHA-256`);
          expect(bad.stderr).toContain(`the WAL archive lacks segment ${segmentFileName(newer.timeline, BigInt(missing), SEG)}`);
          const events = bad.stdout
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l));
          expect(events).toContainEqual(
            expect.objectContaining({ event: 'finding', kind: 'object-mismatch', backup: newer.id, path: 'pg_wal.tar' }),
          );
          expect(events).toContainEqual(expect.objectContaining({ event: 'finding', kind: 'wal-gap', backup: null }));
          expect(events.at(-1)).toMatchObject({ event: 'done', ok: false });

          // Only the older backup: it is intact, the archive still lacks the segment.
          const older = (await repo.listBackups())[0]!;
          const one = await verifyRepository(repo, { id: older.id });
          expect(one.backups).toEqual([{ id: older.id, findings: 0 }]);
          expect(one.findings.map((f) => f.kind)).toEqual(['wal-gap']);
        });

        it('verify --repo checks a backup taken without WAL against the WAL archive (compressed), and names a segment it lacks', async () => {
          const target = await make(`expire${major}`);
          await using repo = await target.open();
          const cluster = primary();
          const backup = stored(
            await backupToRepository(repo, { connection: trustTcp(cluster), checkpoint: 'fast', wal: 'none', compression: 'gzip' }),
          );
          expect(backup.objects.map((o) => o.name).sort()).toEqual(['backup_manifest', 'base.tar.gz']);
          // The real segments of the backup's WAL range, copied from the server's pg_wal as receive-wal --repo
          // would store them (compressed).
          const needed: string[] = [];
          for (let n = segno(backup.startLsn); n <= segno(backup.endLsn); n++)
            needed.push(segmentFileName(backup.timeline, BigInt(n), SEG));
          for (const name of needed) {
            const [row] = await cluster.sql<{ b: Buffer }>('select pg_read_binary_file($1) as b', [`pg_wal/${name}`]);
            await repo.storage.put(walSegmentKey(name, 'gzip'), gzipSync(row!.b));
          }
          expect((await verifyRepository(repo)).findings).toEqual([]);

          await repo.storage.delete(walSegmentKey(needed[0]!, 'gzip'));
          const result = await verifyRepository(repo);
          expect(result.ok).toBe(false);
          // The backup's own WAL check names the segment (read from the archive: it is the only WAL source).
          const missing = result.findings.filter((f) => f.kind === 'wal-missing' && f.backup === backup.id);
          expect(missing.map((f) => `${f.path} ${f.message}`).join('\n')).toContain(needed[0]!);
          // The archive's continuity check does too, unless the archive is now empty (a one-segment range).
          const gaps = result.findings.filter((f) => f.kind === 'wal-gap').map((f) => f.path);
          expect(gaps).toEqual(needed.length > 1 ? [needed[0]] : []);
        });

        if (major >= 17) {
          it('an incremental chain is never orphaned: a kept incremental keeps its parents', async () => {
            const target = await make(`expire${major}`);
            await using repo = await target.open();
            // WAL summaries since before the full backup: the server's condition for an incremental one.
            const summarized = await startCluster({ major, ssl: false, conf: { summarize_wal: 'on' } });
            onTestFinished(() => summarized.destroy());
            const connection = trustTcp(summarized);
            const f1 = stored(await backupToRepository(repo, { connection, checkpoint: 'fast' }));
            await summarized.sql('create table chain_t as select generate_series(1, 1000) as i');
            const i1 = stored(await backupToRepository(repo, { connection, checkpoint: 'fast', incrementalFrom: f1.id }));
            const f2 = stored(await backupToRepository(repo, { connection, checkpoint: 'fast' }));
            await summarized.sql('insert into chain_t select generate_series(1, 1000)');
            // Taken after f2, against f1's chain: --retain-full 1 must keep f1 and i1 for it.
            const i2 = stored(await backupToRepository(repo, { connection, checkpoint: 'fast', incrementalFrom: i1.id }));
            await archiveWal(repo, f1, i2);

            const kept = await expireRepository(repo, { retainFull: 1 });
            expect(kept.remove).toEqual([]);
            expect((await repo.listBackups()).map((b) => b.id)).toEqual([f1.id, i1.id, f2.id, i2.id]);
            expect((await verifyRepository(repo)).findings).toEqual([]);
            // What expire never does, done by hand: verify names the incremental backup left without its parent.
            await repo.storage.delete(`catalog/${i1.id}.json`);
            expect((await verifyRepository(repo, { id: i2.id, noWal: true })).findings).toEqual([
              expect.objectContaining({ kind: 'parent-missing', backup: i2.id, path: i1.id }),
            ]);
            await repo.commitBackup(i1);

            // Without the cross-chain incremental, f1's chain goes whole and f2 stays alone.
            await repo.storage.delete(`catalog/${i2.id}.json`);
            await repo.deleteBackupObjects(i2.id);
            const result = await expireRepository(repo, { retainFull: 1 });
            expect(result.remove.map((b) => b.id)).toEqual([f1.id, i1.id]);
            const left = await repo.listBackups();
            expect(left.map((b) => b.id)).toEqual([f2.id]);
            for (const b of left) if (b.parent !== null) expect(left.map((p) => p.id)).toContain(b.parent);
            expect((await verifyRepository(repo)).findings).toEqual([]);
          });
        }
      });
    }
  },
  { ssl: false },
);
