// `pgbb backup --repo` as users run it (dist/cli/main.js) against real servers, into a local-directory
// repository and an S3 one on Swift: the archives stored while they arrive and the catalog record last;
// --if-older-than; PGBB_REPO; a backup killed (SIGKILL) mid-upload leaves no record, and the next backup
// removes its objects; -i auto (17+) takes an incremental backup against the newest one; another cluster is
// refused before anything is stored.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Repository } from '../../src/repository/repository.js';
import { makeTempDir, startCluster, testMajors } from '../harness/index.js';
import { pgbbForFile, spawnPgbb } from '../harness/pgbb-cli.js';
import { repositoryKeys, repositoryTargets, swiftBucketForFile, type RepositoryTarget } from '../harness/repositories.js';
import { describeEachMajor } from '../harness/suite.js';
import { slotsAfterSettling, tarMembers } from './backup-helpers.js';

const s3 = swiftBucketForFile('pgbb-cli-repo');
const targets = repositoryTargets(s3);
const cli = pgbbForFile();

const pgbb = (args: string[], env: Record<string, string> = {}) => spawnPgbb(cli(), args, env);

async function bytesOf(repo: Repository, id: string, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await repo.openBackupObject(id, name)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describeEachMajor('pgbb backup --repo', testMajors(), (major, primary) => {
  for (const [name, make] of targets) {
    describe(name, () => {
      let target: RepositoryTarget;
      beforeAll(async () => {
        target = await make(`pg${major}`);
      });

      it('stores the archives and the manifest, then the record; --if-older-than skips; PGBB_REPO works', async () => {
        const r = await pgbb(['backup', '-d', primary().connectionString(), '--repo', target.address, '-c', 'fast', '-z', '-v'], target.env)
          .exited;
        expect(r.stderr).not.toMatch(/error/);
        expect(r.code).toBe(0);
        expect(r.stderr).toMatch(/backup \d{8}-\d{6}\.\d{3}F stored in /);
        await using repo = await target.open();
        const [record, ...more] = await repo.listBackups();
        expect(more).toEqual([]);
        expect(record).toMatchObject({ type: 'full', parent: null, status: 'complete', compression: 'gzip', wal: 'stream', timeline: 1 });
        expect(record!.postgresVersion).toMatch(new RegExp(`^${major}\\.`));
        expect(record!.objects.map((o) => o.name).sort()).toEqual(['backup_manifest', 'base.tar.gz', 'pg_wal.tar.gz']);
        expect(record!.storedSize).toBe(record!.objects.reduce((s, o) => s + o.size, 0));
        expect(record!.originalSize).toBeGreaterThan(record!.storedSize);
        expect((await repo.info())?.cluster.majorVersion).toBe(major);
        expect(await repositoryKeys(repo)).toEqual(
          ['repository.json', `catalog/${record!.id}.json`, ...record!.objects.map((o) => `backups/${record!.id}/${o.name}`)].sort(),
        );
        // The stored bytes are what the record says, and a tar of the data directory.
        const base = await bytesOf(repo, record!.id, 'base.tar.gz');
        expect(createHash('sha256').update(base).digest('hex')).toBe(record!.objects.find((o) => o.name === 'base.tar.gz')?.sha256);
        const file = join(await makeTempDir('cli-repo-base'), 'base.tar.gz');
        await writeFile(file, base);
        expect(await tarMembers(file)).toEqual(expect.arrayContaining(['PG_VERSION', 'backup_label', 'global/pg_control']));

        const skip = await pgbb(
          ['backup', '-d', primary().connectionString(), '--repo', target.address, '--if-older-than', '1h'],
          target.env,
        ).exited;
        expect(skip.code).toBe(0);
        expect(skip.stderr).toMatch(`the newest full backup, ${record!.id}, is 0m old, younger than --if-older-than: no backup taken`);
        expect(await repo.listBackups()).toHaveLength(1);

        const viaEnv = await pgbb(['backup', '-d', primary().connectionString(), '-c', 'fast', '--json'], {
          ...target.env,
          PGBB_REPO: target.address,
        }).exited;
        expect(viaEnv.code).toBe(0);
        const done = JSON.parse(viaEnv.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
        expect(done).toMatchObject({ event: 'done', skipped: false, type: 'full' });
        const after = await repo.listBackups();
        expect(after.map((b) => b.id)).toEqual([record!.id, done['id']]);
        expect(after[1]!.objects.map((o) => o.name).sort()).toEqual(['backup_manifest', 'base.tar', 'pg_wal.tar']);
        expect(await slotsAfterSettling(primary())).toEqual([]);

        // pgbb list / show: the documented JSON, and the text forms.
        const list = await pgbb(['list', '--repo', target.address, '--json'], target.env).exited;
        expect(list.stderr).toBe('');
        expect(list.code).toBe(0);
        const listing = JSON.parse(list.stdout) as {
          cluster: { majorVersion: number };
          backups: Record<string, unknown>[];
          pitrWindow: { from: { time: string; lsn: string } | null; to: unknown };
        };
        expect(listing.cluster.majorVersion).toBe(major);
        expect(listing.backups.map((b) => b['id'])).toEqual(after.map((b) => b.id));
        for (const b of listing.backups) {
          for (const key of ['id', 'type', 'startTime', 'endTime', 'startLsn', 'endLsn', 'timeline']) expect(b).toHaveProperty(key);
        }
        expect(listing.pitrWindow).toEqual({
          from: { time: record!.endTime.toISOString(), lsn: listing.backups[0]!['endLsn'], timeline: 1 },
          to: null,
        });
        const text = await pgbb(['list'], { ...target.env, PGBB_REPO: target.address }).exited;
        expect(text.code).toBe(0);
        expect(text.stdout).toContain(record!.id);
        expect(text.stdout).toMatch(/point-in-time window: from /);
        const show = await pgbb(['show', record!.id, '--repo', target.address, '--json'], target.env).exited;
        expect(show.code).toBe(0);
        expect(JSON.parse(show.stdout)).toMatchObject({ id: record!.id, objects: record!.objects });
        const missing = await pgbb(['show', '20990101-000000.000F', '--repo', target.address], target.env).exited;
        expect(missing.code).toBe(1);
        expect(missing.stderr).toMatch(/^pgbb: error: the repository .* has no backup "20990101-000000.000F"/m);
      });

      it('a backup killed (SIGKILL) mid-upload leaves no record; the next backup removes its objects', async () => {
        await using repo = await target.open();
        const before = (await repo.listBackups()).map((b) => b.id);
        // 2 MB/s: an upload is under way (a temporary file; S3: a multipart upload, begun once its first
        // 8 MiB part is read) well before the data ends.
        const run = pgbb(['backup', '-d', primary().connectionString(), '--repo', target.address, '-c', 'fast', '-r', '2M'], target.env);
        try {
          await vi.waitFor(async () => expect(await target.leftovers()).not.toEqual([]), { timeout: 60_000, interval: 100 });
          expect(run.child.exitCode).toBeNull();
          run.child.kill('SIGKILL');
        } finally {
          if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
        }
        expect((await run.exited).signal).toBe('SIGKILL');
        expect((await repo.listBackups()).map((b) => b.id)).toEqual(before);
        const list = await pgbb(['list', '--repo', target.address, '--json'], target.env).exited;
        expect(list.code).toBe(0);
        expect((JSON.parse(list.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id)).toEqual(before);

        // The dead holder's lease does not block the next backup (its process is gone), which deletes the orphans.
        const next = await pgbb(['backup', '-d', primary().connectionString(), '--repo', target.address, '-c', 'fast'], target.env).exited;
        expect(next.stderr).toBe('');
        expect(next.code).toBe(0);
        const records = await repo.listBackups();
        expect(records).toHaveLength(before.length + 1);
        expect(await repo.uncommittedBackups()).toEqual([]);
        expect(await target.leftovers()).toEqual([]);
        const expected = records.flatMap((b) => [`catalog/${b.id}.json`, ...b.objects.map((o) => `backups/${b.id}/${o.name}`)]);
        expect(await repositoryKeys(repo)).toEqual(['repository.json', ...expected].sort());
        expect(await slotsAfterSettling(primary())).toEqual([]);
      });

      if (major >= 17) {
        it('-i auto: an incremental backup against the newest backup in the repository', async () => {
          const own = await make(`pg${major}`);
          // WAL summaries since before the full backup: the server's condition for an incremental one.
          const summarized = await startCluster({ major, ssl: false, conf: { summarize_wal: 'on' } });
          try {
            const full = await pgbb(['backup', '-d', summarized.connectionString(), '--repo', own.address, '-c', 'fast'], own.env).exited;
            expect(full.code).toBe(0);
            const inc = await pgbb(
              ['backup', '-d', summarized.connectionString(), '--repo', own.address, '-c', 'fast', '-i', 'auto', '--json'],
              own.env,
            ).exited;
            expect(inc.code).toBe(0);
            await using repo = await own.open();
            const [first, second] = await repo.listBackups();
            expect(second).toMatchObject({ type: 'incremental', parent: first!.id });
          } finally {
            await summarized.destroy();
          }
        });
      }

      it('another cluster is refused before anything is stored', async () => {
        await using repo = await target.open();
        const keys = await repositoryKeys(repo);
        const other = await startCluster({ major, ssl: false, template: false });
        try {
          const r = await pgbb(['backup', '-d', other.connectionString(), '--repo', target.address, '-c', 'fast'], target.env).exited;
          expect(r.code).toBe(1);
          expect(r.stderr).toMatch(/^pgbb: error: the repository .* belongs to another cluster: this server has system identifier \d+/m);
          expect(r.stderr).toMatch(/use this cluster's own repository, or a new one/);
        } finally {
          await other.destroy();
        }
        expect(await repositoryKeys(repo)).toEqual(keys);
      });
    });
  }
});
