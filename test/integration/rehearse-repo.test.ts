// pgbb rehearse --repo REPO against real servers (15 and 17), on a local-directory repository and on an S3
// one (Swift): a repository filled by pgbb backup --repo with its WAL archived by pgbb receive-wal --repo
// while rows are written, rehearsed with no backup operand (the newest backup, restored from the
// repository, replaying the repository's archived WAL through restore-wal --repo, which the rehearsal's
// server runs with the credentials of the environment it inherits): it passes, names the backup, its record
// is in list and status is OK about it; the rows written after the backup are there (the archive was
// replayed); --backup ID picks a backup. The storage secret appears neither in the output nor in the
// rehearsal's configuration files (kept by --keep-on-failure). A repository with no archived WAL rehearses
// its backup with the backup's own WAL.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chownToServer, makeTempDir, serverIdentity, SWIFT_S3_CREDENTIALS, type Cluster } from '../harness/index.js';
import { pgbbForFile, runPgbb, spawnPgbb, type PgbbRun } from '../harness/pgbb-cli.js';
import { repositoryTarget, repositoryTargets, swiftBucketForFile, type RepositoryTarget } from '../harness/repositories.js';
import { makeWal, WAL_MAJORS_15_17, walCluster, walTestMajors } from './receive-wal-helpers.js';
import { rehearsalServerFlags } from './rehearse-helpers.js';

const pgbb = pgbbForFile({ forServer: true });
const s3 = swiftBucketForFile('pgbb-rehearse-repo');
const targets = repositoryTargets(s3);

/** The JSON `pgbb rehearse --json` prints (the part this test reads). */
interface RehearseJson {
  ok: boolean;
  backupId?: string;
  steps: { name: string; status: string; detail: string }[];
  figures: { walBytes?: number; lastTransactionTime?: string };
  recorded?: { id: string; backupId: string | null };
  keptDir?: string;
}

/** Every configuration file under a kept scratch directory (the data directory's and the rehearsal's own). */
function configurationFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((n) => /(^|\/)[^/]+\.conf$/.test(n) && !n.includes('/base/'))
    .map((n) => join(dir, n));
}

describe.each(walTestMajors(WAL_MAJORS_15_17))('pgbb rehearse --repo on PostgreSQL %i', (major) => {
  let c: Cluster;

  beforeAll(async () => {
    c = await walCluster(major);
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  });

  /** `rehearse --repo REPO ARGS --json` with the test's server binaries, user and scratch directory. */
  async function rehearseRepo(
    target: RepositoryTarget,
    args: string[] = [],
  ): Promise<{ code: number | null; json: RehearseJson; stderr: string; run: PgbbRun }> {
    // restore-wal runs as the server's user: it must read a local repository.
    if (serverIdentity() && target.kind === 'local') await chownToServer(target.address, { recursive: true });
    const scratch = await makeTempDir('rehearse-repo-scratch');
    const r = await runPgbb(
      pgbb(),
      ['rehearse', '--repo', target.address, ...rehearsalServerFlags(c, scratch, '200s'), '--json', ...args],
      target.env,
    );
    return { code: r.code, json: JSON.parse(r.stdout) as RehearseJson, stderr: r.stderr, run: r };
  }

  describe.each(targets)('%s', (_name, make) => {
    it('rehearses the newest backup with the WAL receive-wal --repo archived: passes, recorded, in list and status', async () => {
      const target = await make(`rehearse-repo-${major}`);
      const { address: repo, env } = target;
      // Each repository kind has its own slot and table on the shared cluster.
      const slot = `rehearse_repo_${target.kind}`;
      const table = `after_backup_${target.kind}`;
      const runs: PgbbRun[] = [];
      const run = async (args: string[]): Promise<PgbbRun> => {
        const r = await runPgbb(pgbb(), args, env);
        runs.push(r);
        return r;
      };
      await makeWal(c);
      // The first backup creates the repository; the receiver archives into it from then on.
      const older = await run(['backup', '-d', c.connectionString(), '--repo', repo, '-c', 'fast']);
      expect(older.code, older.stderr).toBe(0);
      // The slot keeps the WAL from the first backup on until the receiver stores it.
      await c.sql(`select pg_create_physical_replication_slot('${slot}', true)`);
      const receiver = spawnPgbb(pgbb(), ['receive-wal', '-d', c.connectionString(), '--repo', repo, '-S', slot], env);
      try {
        await makeWal(c);
        const b = await run(['backup', '-d', c.connectionString(), '--repo', repo, '-c', 'fast']);
        expect(b.code, b.stderr).toBe(0);
        // Rows written after the newest backup reach the restore only through the archived WAL.
        await c.sql(`create table ${table} as select g from generate_series(1, 777) g`);
        await makeWal(c, 2);
        // The segment before the current one is complete: the receiver stores it.
        const [row] = await c.sql<{ f: string }>('select pg_walfile_name(pg_current_wal_lsn() - 1) f');
        await using repository = await target.open();
        await vi.waitFor(
          async () => expect(((await repository.walArchive())?.newest.segment ?? '') >= row!.f, receiver.stderr()).toBe(true),
          { timeout: 60_000, interval: 200 },
        );
      } finally {
        receiver.child.kill('SIGTERM');
        runs.push(await receiver.exited);
        await c.sql(`select pg_drop_replication_slot('${slot}')`);
      }
      await using repository = await target.open();
      const backups = await repository.listBackups();
      expect(backups).toHaveLength(2);
      const newest = backups.at(-1)!;

      const checks = join(await makeTempDir('rehearse-repo-checks'), 'checks.sql');
      writeFileSync(checks, `SELECT count(*) = 777 FROM ${table};\n`);
      const r = await rehearseRepo(target, ['--check-sql', checks]);
      runs.push(r.run);
      expect(r.code, JSON.stringify(r.json.steps) + r.stderr).toBe(0);
      expect(r.json.ok).toBe(true);
      expect(r.json.backupId).toBe(newest.id);
      expect(r.json.recorded?.backupId).toBe(newest.id);
      expect(r.json.steps.find((s) => s.name === 'restore')?.detail).toContain(`backup ${newest.id}: `);
      expect(r.json.steps.find((s) => s.name === 'archive')?.status).toBe('passed');
      expect(r.json.steps.find((s) => s.name === 'sql-checks')?.status).toBe('passed');
      expect(r.json.figures.walBytes).toBeGreaterThan(1024 * 1024);
      expect(r.json.figures.lastTransactionTime).toBeDefined();

      const list = await run(['list', '--repo', repo, '--json']);
      expect(list.code, list.stderr).toBe(0);
      const rehearsals = (JSON.parse(list.stdout) as { rehearsals: Record<string, unknown>[] }).rehearsals;
      expect(rehearsals).toHaveLength(1);
      expect(rehearsals[0]).toMatchObject({ id: r.json.recorded!.id, backupId: newest.id, result: 'pass', major });
      // The archive's end is the newest archived segment: the recovery point lag is known.
      expect(typeof rehearsals[0]!['recoveryPointLagMs']).toBe('number');

      const status = await run(['status', '--repo', repo]);
      expect(status.stdout).toMatch(
        new RegExp(`^OK: rehearsal: last rehearsal ${r.json.recorded!.id} of ${newest.id} \\d+s ago passed`, 'm'),
      );

      // --backup ID rehearses that backup instead.
      const first = await rehearseRepo(target, ['--backup', backups[0]!.id]);
      runs.push(first.run);
      expect(first.code, JSON.stringify(first.json.steps) + first.stderr).toBe(0);
      expect(first.json.recorded?.backupId).toBe(backups[0]!.id);

      // A failing check with --keep-on-failure keeps the rehearsal's directory: its configuration names
      // the repository in restore_command, never the storage secret.
      writeFileSync(checks, 'SELECT false;\n');
      const kept = await rehearseRepo(target, ['--check-sql', checks, '--keep-on-failure']);
      runs.push(kept.run);
      expect(kept.code).toBe(1);
      expect(kept.json.steps.find((s) => s.name === 'sql-checks')?.status).toBe('failed');
      expect(kept.json.keptDir).toBeDefined();
      try {
        const files = configurationFiles(kept.json.keptDir!);
        const auto = files.find((f) => f.endsWith('/postgresql.auto.conf'));
        expect(auto, files.join(', ')).toBeDefined();
        expect(readFileSync(auto!, 'utf8')).toMatch(/restore_command = '.*restore-wal .*--repo/);
        for (const f of files) expect(readFileSync(f, 'utf8'), f).not.toContain(SWIFT_S3_CREDENTIALS.secretAccessKey);
      } finally {
        rmSync(kept.json.keptDir!, { recursive: true, force: true });
      }
      for (const p of runs) expect(p.stdout + p.stderr).not.toContain(SWIFT_S3_CREDENTIALS.secretAccessKey);
    }, 500_000);
  });

  it('a repository without archived WAL: the backup replays its own WAL', async () => {
    const target = await repositoryTarget('local', 'rehearse-repo-nowal');
    const b = await runPgbb(pgbb(), ['backup', '-d', c.connectionString(), '--repo', target.address, '-c', 'fast']);
    expect(b.code, b.stderr).toBe(0);
    await using repository = await target.open();
    const [backup] = await repository.listBackups();
    const r = await rehearseRepo(target);
    expect(r.code, JSON.stringify(r.json.steps) + r.stderr).toBe(0);
    expect(r.json.backupId).toBe(backup!.id);
    expect(r.json.steps.find((s) => s.name === 'archive')).toMatchObject({ status: 'skipped' });
    expect(r.json.recorded?.backupId).toBe(backup!.id);
  }, 200_000);
});
