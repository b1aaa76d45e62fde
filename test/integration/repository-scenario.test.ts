// Issue 13's scenario end to end through the CLI (dist/cli/main.js), on a local-directory repository and an
// S3 one on Swift at once: `receive-wal --repo -S SLOT` archives into each while rows commit in numbered
// batches; a full backup, more batches, a second full backup, on 17+ an incremental (`-i auto`), more
// batches; `list --json` shows the backups and a window reaching the archived WAL; `restore --repo
// --target-time` for a time between the two full backups picks the older one, and the restored server
// holds exactly the batches committed before it; `expire --retain-full 1` removes the older backup and
// the WAL before the kept one; a restore to a time after the kept backup still holds exactly the right
// batches.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import type { RepositoryListingJson } from '../../src/repository/listing.js';
import { segmentFileName, segmentNumber } from '../../src/wal-segments.js';
import { chownToServer, makeTempDir, startCluster, type Cluster } from '../harness/index.js';
import { pgbbForServer, runPgbb, spawnPgbb, type ServerPgbb } from '../harness/pgbb-cli.js';
import { repositoryTargets, swiftBucketForFile, type RepositoryTarget } from '../harness/repositories.js';
import { describeEachMajor, trustTcp } from '../harness/suite.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SEG = 1024 * 1024;
const s3 = swiftBucketForFile('pgbb-scenario');
/** A restore, a server start and a replay through restore_command (one pgbb process per WAL file). */
const RESTORE_TIMEOUT_MS = 240_000;
let cli: ServerPgbb;

beforeAll(async () => {
  cli = await pgbbForServer(root);
}, 60_000);

/** Where a batch's rows ended: the WAL position and the time just after its commit. */
interface Batch {
  lsn: string;
  time: string;
}

describeEachMajor(
  'a repository scenario through the CLI',
  walTestMajors(WAL_MAJORS_15_17),
  (major, primary) => {
    const batches: Batch[] = [];
    const repos: { name: string; target: RepositoryTarget; receiver: ReturnType<typeof spawnPgbb>; ids: string[] }[] = [];
    const restored: Cluster[] = [];
    const conn = (c: Cluster) => `host=${c.host} port=${c.port} user=${trustTcp(c).user} sslmode=disable`;

    async function pgbb(target: RepositoryTarget, args: string[]) {
      const r = await runPgbb(cli, [...args, '--repo', target.address], target.env);
      expect(r.code, `pgbb ${args[0]}: ${r.stderr}`).toBe(0);
      return r;
    }

    async function commitBatch(b: number): Promise<void> {
      const c = primary();
      await c.sql(`INSERT INTO t SELECT ${b}, g FROM generate_series(1, 50) g`);
      const [after] = await c.sql<Batch>(
        "SELECT pg_current_wal_insert_lsn()::text AS lsn, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS time",
      );
      batches[b] = after!;
    }

    /** A backup into every repository (`-i auto`: an incremental against the newest one); its id noted. */
    async function backupAll(extra: string[] = []): Promise<void> {
      for (const repo of repos) {
        const r = await pgbb(repo.target, ['backup', '-d', conn(primary()), '-c', 'fast', '-v', ...extra]);
        const id = /backup (\S+) stored in /.exec(r.stderr)?.[1];
        expect(id, r.stderr).toBeDefined();
        repo.ids.push(id!);
      }
    }

    const list = async (target: RepositoryTarget) => JSON.parse((await pgbb(target, ['list', '--json'])).stdout) as RepositoryListingJson;

    beforeAll(async () => {
      const c = primary();
      await c.sql('CREATE TABLE t (batch int, n int)');
      if (major >= 17) {
        await c.sql('ALTER SYSTEM SET summarize_wal = on');
        await c.sql('SELECT pg_reload_conf()');
      }
      for (const [name, make] of repositoryTargets(s3)) {
        const target = await make(`scenario${major}`);
        // The restored servers run `pgbb restore-wal --repo s3://...` as restore_command: they inherit this
        // environment, where the SDK's provider chain finds the (test-only) credentials, as in production.
        Object.assign(process.env, target.env);
        const slot = `scenario_${target.kind}`;
        const created = await runPgbb(cli, ['receive-wal', '-d', conn(c), '-S', slot, '--create-slot'], target.env);
        expect(created.code, created.stderr).toBe(0);
        const spool = join(await makeTempDir('scenario-spool'), 'spool');
        const receiver = spawnPgbb(cli, ['receive-wal', '-d', conn(c), '--repo', target.address, '-S', slot, '--spool', spool], target.env);
        repos.push({ name, target, receiver, ids: [] });
      }
      await commitBatch(0);
      await backupAll(); // the older full backup
      await commitBatch(1); // batch 1 and its time lie between the two full backups
      await backupAll(); // the newer full backup
      await commitBatch(2);
      if (major >= 17) await backupAll(['-i', 'auto']);
      await commitBatch(3);
      await commitBatch(4); // batch 3's time is a target after the kept backup; batch 4's commit ends that recovery
      await c.sql('SELECT pg_switch_wal()');
      for (const { target, receiver } of repos) {
        await vi.waitFor(
          async () => {
            const to = (await list(target)).pitrWindow.to;
            expect(to).not.toBeNull();
            expect(parseLsn(to!.lsn) > parseLsn(batches[4]!.lsn)).toBe(true);
          },
          { timeout: 60_000, interval: 200 },
        );
        receiver.child.kill('SIGINT');
        const done = await receiver.exited;
        expect(done.code, done.stderr).toBe(0);
        // The restored servers' restore_command runs as the server's user.
        if (target.kind === 'local') await chownToServer(target.address, { recursive: true });
      }
    }, 400_000);

    afterAll(async () => {
      for (const { receiver } of repos) receiver.child.kill('SIGKILL');
      await Promise.allSettled(restored.map((r) => r.destroy()));
    });

    /** Restores to `time` with `target`; the chosen backup's id, and the batches the promoted server holds. */
    async function restoreTo(target: RepositoryTarget, time: string): Promise<{ id: string | undefined; batches: number[] }> {
      const dataDir = join(await makeTempDir('scenario-restored'), 'data');
      const r = await pgbb(target, ['restore', '-D', dataDir, '--target-time', time, '--target-action', 'promote', '--no-sync']);
      const r2 = await startCluster({ major, dataDir, conf: { archive_mode: 'off' } });
      restored.push(r2);
      await vi.waitFor(
        async () => {
          const [row] = await r2.sql<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
          expect(row!.rec).toBe(false);
        },
        { timeout: 180_000, interval: 200 },
      );
      const rows = await r2.sql<{ batch: number; n: string }>('SELECT batch, count(*)::text AS n FROM t GROUP BY batch ORDER BY batch');
      for (const row of rows) expect(row.n, `batch ${row.batch} whole`).toBe('50');
      await r2.destroy();
      return { id: /restored backup (\S+)/.exec(r.stderr)?.[1], batches: rows.map((row) => row.batch) };
    }

    for (const [name] of repositoryTargets(s3)) {
      it(
        `${name}: list, restore between the full backups, expire --retain-full 1, restore after the kept one`,
        async () => {
          const { target, ids } = repos.find((r) => r.name === name)!;
          const [older, newer, incremental] = ids;
          const before = await list(target);
          expect(before.backups.map((b) => [b.id, b.type])).toEqual([
            [older, 'full'],
            [newer, 'full'],
            ...(major >= 17 ? [[incremental, 'incremental']] : []),
          ]);
          expect(before.pitrWindow.from?.lsn).toBe(before.backups[0]!.endLsn);
          expect(before.walArchive?.timelines.map((t) => t.gaps)).toEqual([[]]);

          expect(await restoreTo(target, batches[1]!.time)).toEqual({ id: older, batches: [0, 1] });

          await pgbb(target, ['expire', '--retain-full', '1']);
          const after = await list(target);
          expect(after.backups.map((b) => b.id)).toEqual(ids.slice(1));
          await using repo = await target.open();
          const left: string[] = [];
          for await (const o of repo.storage.list({ prefix: 'backups/' })) left.push(o.key);
          expect(left.filter((k) => k.includes(older!))).toEqual([]);
          expect(left.some((k) => k.includes(newer!))).toBe(true);
          const kept = after.backups[0]!;
          const keptStart = segmentFileName(kept.timeline, segmentNumber(parseLsn(kept.startLsn), SEG), SEG);
          expect(before.walArchive!.timelines[0]!.firstSegment < keptStart).toBe(true);
          expect(after.walArchive?.timelines[0]).toMatchObject({
            firstSegment: keptStart,
            lastSegment: before.walArchive!.timelines[0]!.lastSegment,
            gaps: [],
          });
          expect(after.pitrWindow.from?.lsn).toBe(kept.endLsn);

          expect(await restoreTo(target, batches[3]!.time)).toEqual({ id: ids.at(-1), batches: [0, 1, 2, 3] });
        },
        2 * RESTORE_TIMEOUT_MS,
      );
    }
  },
  { ssl: false, walSegmentSizeMb: 1 },
);
