// pgbb rehearse --repo REPO against real servers (15 and 17), local-directory repositories: one filled by
// pgbb backup --repo with its WAL archived by pgbb receive-wal --repo while rows are written, rehearsed
// with no backup operand (the newest backup, restored from the repository, replaying the repository's
// archived WAL through restore-wal --repo): it passes, names the backup, its record is in list and status
// is OK about it; the rows written after the backup are there (the archive was replayed). A repository
// with no archived WAL rehearses its backup with the backup's own WAL; --backup ID picks a backup.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openRepository } from '../../src/repository/repository.js';
import { chownToServer, makeTempDir, serverIdentity, TEST_OS_USER, type Cluster } from '../harness/index.js';
import { pgbbForFile, runPgbb, spawnPgbb } from '../harness/pgbb-cli.js';
import { makeWal, WAL_MAJORS_15_17, walCluster, walTestMajors } from './receive-wal-helpers.js';

const pgbb = pgbbForFile({ forServer: true });
const runAs = serverIdentity() ? ['--run-as', TEST_OS_USER] : [];

/** The JSON `pgbb rehearse --json` prints (the part this test reads). */
interface RehearseJson {
  ok: boolean;
  backupId?: string;
  steps: { name: string; status: string; detail: string }[];
  figures: { walBytes?: number; lastTransactionTime?: string };
  recorded?: { id: string; backupId: string | null };
}

describe.each(walTestMajors(WAL_MAJORS_15_17))('pgbb rehearse --repo on PostgreSQL %i', (major) => {
  let c: Cluster;

  beforeAll(async () => {
    c = await walCluster(major);
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  });

  /** A new repository directory (inside a fresh temporary directory). */
  async function newRepo(name: string): Promise<string> {
    return join(await makeTempDir(name), 'repo');
  }

  /** `rehearse --repo REPO ARGS --json` with the test's server binaries, user and scratch directory. */
  async function rehearseRepo(repo: string, args: string[] = []): Promise<{ code: number | null; json: RehearseJson; stderr: string }> {
    // restore-wal runs as the server's user: it must read the repository.
    if (serverIdentity()) await chownToServer(repo, { recursive: true });
    const scratch = await makeTempDir('rehearse-repo-scratch');
    const r = await runPgbb(pgbb(), [
      'rehearse',
      '--repo',
      repo,
      '--pg-bin',
      c.binDir,
      ...runAs,
      '--scratch-dir',
      scratch,
      '--timeout',
      '200s',
      '--json',
      ...args,
    ]);
    return { code: r.code, json: JSON.parse(r.stdout) as RehearseJson, stderr: r.stderr };
  }

  it('rehearses the newest backup with the WAL receive-wal --repo archived: passes, recorded, in list and status', async () => {
    const repo = await newRepo('rehearse-repo');
    await makeWal(c);
    // The first backup creates the repository; the receiver archives into it from then on.
    const older = await runPgbb(pgbb(), ['backup', '-d', c.connectionString(), '--repo', repo, '-c', 'fast']);
    expect(older.code, older.stderr).toBe(0);
    // The slot keeps the WAL from the first backup on until the receiver stores it.
    await c.sql("select pg_create_physical_replication_slot('rehearse_repo', true)");
    const receiver = spawnPgbb(pgbb(), ['receive-wal', '-d', c.connectionString(), '--repo', repo, '-S', 'rehearse_repo']);
    try {
      await makeWal(c);
      const b = await runPgbb(pgbb(), ['backup', '-d', c.connectionString(), '--repo', repo, '-c', 'fast']);
      expect(b.code, b.stderr).toBe(0);
      // Rows written after the newest backup reach the restore only through the archived WAL.
      await c.sql('create table after_backup as select g from generate_series(1, 777) g');
      await makeWal(c, 2);
      // The segment before the current one is complete: the receiver stores it.
      const [row] = await c.sql<{ f: string }>('select pg_walfile_name(pg_current_wal_lsn() - 1) f');
      await using repository = await openRepository(repo);
      await vi.waitFor(
        async () => expect(((await repository.walArchive())?.newest.segment ?? '') >= row!.f, receiver.stderr()).toBe(true),
        {
          timeout: 60_000,
          interval: 200,
        },
      );
    } finally {
      receiver.child.kill('SIGTERM');
      await receiver.exited;
    }
    await using repository = await openRepository(repo);
    const backups = await repository.listBackups();
    expect(backups).toHaveLength(2);
    const newest = backups.at(-1)!;

    const checks = join(await makeTempDir('rehearse-repo-checks'), 'checks.sql');
    writeFileSync(checks, 'SELECT count(*) = 777 FROM after_backup;\n');
    const r = await rehearseRepo(repo, ['--check-sql', checks]);
    expect(r.code, JSON.stringify(r.json.steps) + r.stderr).toBe(0);
    expect(r.json.ok).toBe(true);
    expect(r.json.backupId).toBe(newest.id);
    expect(r.json.recorded?.backupId).toBe(newest.id);
    expect(r.json.steps.find((s) => s.name === 'restore')?.detail).toContain(`backup ${newest.id}: `);
    expect(r.json.steps.find((s) => s.name === 'archive')?.status).toBe('passed');
    expect(r.json.steps.find((s) => s.name === 'sql-checks')?.status).toBe('passed');
    expect(r.json.figures.walBytes).toBeGreaterThan(1024 * 1024);
    expect(r.json.figures.lastTransactionTime).toBeDefined();

    const list = await runPgbb(pgbb(), ['list', '--repo', repo, '--json']);
    expect(list.code, list.stderr).toBe(0);
    const rehearsals = (JSON.parse(list.stdout) as { rehearsals: Record<string, unknown>[] }).rehearsals;
    expect(rehearsals).toHaveLength(1);
    expect(rehearsals[0]).toMatchObject({ id: r.json.recorded!.id, backupId: newest.id, result: 'pass', major });
    // The archive's end is the newest archived segment: the recovery point lag is known.
    expect(typeof rehearsals[0]!['recoveryPointLagMs']).toBe('number');

    const status = await runPgbb(pgbb(), ['status', '--repo', repo]);
    expect(status.stdout).toMatch(
      new RegExp(`^OK: rehearsal: last rehearsal ${r.json.recorded!.id} of ${newest.id} \\d+s ago passed`, 'm'),
    );

    // --backup ID rehearses that backup instead.
    const first = await rehearseRepo(repo, ['--backup', backups[0]!.id]);
    expect(first.code, JSON.stringify(first.json.steps) + first.stderr).toBe(0);
    expect(first.json.recorded?.backupId).toBe(backups[0]!.id);
  }, 400_000);

  it('a repository without archived WAL: the backup replays its own WAL', async () => {
    const repo = await newRepo('rehearse-repo-nowal');
    const b = await runPgbb(pgbb(), ['backup', '-d', c.connectionString(), '--repo', repo, '-c', 'fast']);
    expect(b.code, b.stderr).toBe(0);
    await using repository = await openRepository(repo);
    const [backup] = await repository.listBackups();
    const r = await rehearseRepo(repo);
    expect(r.code, JSON.stringify(r.json.steps) + r.stderr).toBe(0);
    expect(r.json.backupId).toBe(backup!.id);
    expect(r.json.steps.find((s) => s.name === 'archive')).toMatchObject({ status: 'skipped' });
    expect(r.json.recorded?.backupId).toBe(backup!.id);
  }, 200_000);
});
