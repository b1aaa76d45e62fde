// Restore from a repository (local directory and S3 on Swift) on real servers: two full backups with rows
// committed in batches around them and WAL archived into the repository. `pgbb restore --repo` with no
// target picks the newest backup and replays to the end of the archive; a target time between the two
// backups picks the older one; a target LSN after the newer backup replays through `restore-wal --repo`;
// each yields a server holding exactly the batches committed before the target. A target before the
// oldest backup is refused with NoBackupForTargetError; restore-wal --repo exits 0, 1 and 126 (a
// corrupted stored segment); a segment missing from the repository makes the pre-flight refuse, naming
// it, and nothing is left in -D.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { backupToRepository } from '../../src/repository/backup.js';
import type { BackupRecord } from '../../src/repository/record.js';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { restoreFromRepository } from '../../src/repository/restore.js';
import { walSegmentKey } from '../../src/repository/wal-keys.js';
import {
  atomicArchiveCommand,
  chownToServer,
  makeTempDir,
  startCluster,
  startSwift,
  type Cluster,
  type SwiftServer,
} from '../harness/index.js';
import { pgbbForServer, runPgbb, type ServerPgbb } from '../harness/pgbb-cli.js';
import { trustTcp } from '../harness/suite.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = join(root, 'dist/cli/main.js');
const majors = walTestMajors(WAL_MAJORS_15_17);
const BUCKET = 'pgbb-repo-restore';
/** A restore, a server start and a replay through restore_command (one node process per WAL file). */
const RESTORE_TIMEOUT_MS = 240_000;

let swift: SwiftServer;
let runnable: ServerPgbb = { node: process.execPath, cli: cliPath };

beforeAll(async () => {
  if (!existsSync(cliPath)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'pipe' });
  runnable = await pgbbForServer(root);
  swift = await startSwift();
  const admin = new S3Client({
    endpoint: swift.endpoint,
    region: swift.region,
    forcePathStyle: true,
    credentials: swift.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
  admin.destroy();
  // The restored servers run `pgbb restore-wal --repo s3://...` as restore_command: they inherit this
  // environment, and the SDK's provider chain finds the (test-only) credentials in it, as in production.
  process.env.AWS_ACCESS_KEY_ID = swift.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = swift.credentials.secretAccessKey;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}, 180_000);

afterAll(async () => {
  await swift?.stop();
});

/** The (test-only) credentials for a pgbb run, from the environment as in production. */
function awsEnv(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: swift.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: swift.credentials.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/** A repository under test: its address (for --repo and restore_command) and how to open it. */
interface RepoTarget {
  name: string;
  address: string;
  /** Local: the directory, given to the server user so that its restore_command can read it. */
  dir: string | undefined;
  open(): Promise<Repository>;
}

async function repoTargets(major: number): Promise<RepoTarget[]> {
  const dir = join(await makeTempDir('repo-restore'), 'repo');
  const s3 = `s3://${BUCKET}/pg${major}?endpoint=${swift.endpoint}&region=${swift.region}&forcePathStyle=true`;
  return [
    { name: 'local directory', address: dir, dir, open: () => openRepository(dir) },
    { name: 's3 (Swift)', address: s3, dir: undefined, open: () => openRepository(s3, { s3: { credentials: swift.credentials } }) },
  ];
}

interface Batch {
  lsnAfter: string;
  timeAfter: string;
}

describe.each(majors)('restore from a repository on PostgreSQL %i', (major) => {
  let c: Cluster;
  let archive: string;
  let targets: RepoTarget[];
  const older = new Map<string, BackupRecord>();
  const newer = new Map<string, BackupRecord>();
  /** 17+: an incremental backup against the newer full one, taken after batch 2: the newest backup. */
  const incremental = new Map<string, BackupRecord>();
  const batches: Batch[] = [];
  const restored: Cluster[] = [];

  async function commitBatch(b: number): Promise<void> {
    await c.sql(`INSERT INTO t SELECT ${b}, g FROM generate_series(1, 100) g`);
    const [after] = await c.sql<{ lsn: string; time: string }>(
      "SELECT pg_current_wal_insert_lsn()::text AS lsn, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS time",
    );
    batches[b] = { lsnAfter: after!.lsn, timeAfter: after!.time };
  }

  async function backupAll(into: Map<string, BackupRecord>, incrementalFrom?: 'latest'): Promise<void> {
    for (const t of targets) {
      await using repo = await t.open();
      const outcome = await backupToRepository(repo, {
        connection: trustTcp(c),
        checkpoint: 'fast',
        ...(incrementalFrom ? { incrementalFrom } : {}),
      });
      if (outcome.skipped) throw new Error('not skipped');
      into.set(t.name, outcome.record);
    }
  }

  beforeAll(async () => {
    archive = await makeTempDir('repo-restore-archive');
    c = await startCluster({
      major,
      ssl: false,
      walSegmentSizeMb: 1,
      conf: {
        archive_mode: 'on',
        archive_command: atomicArchiveCommand(archive),
        ...(major >= 17 ? { summarize_wal: 'on' } : {}),
      },
    });
    targets = await repoTargets(major);
    await c.sql('CREATE TABLE t (batch int, n int)');
    await commitBatch(0);
    await backupAll(older);
    await commitBatch(1); // batch 1 and its time lie between the two backups
    await backupAll(newer);
    await commitBatch(2);
    if (major >= 17) await backupAll(incremental, 'latest');
    await c.sql('SELECT pg_switch_wal()');
    await commitBatch(3);
    await c.sql('SELECT pg_switch_wal()');
    const [last] = await c.sql<{ f: string }>(`SELECT pg_walfile_name('${batches[3]!.lsnAfter}') AS f`);
    await vi.waitFor(() => expect(existsSync(join(archive, last!.f))).toBe(true), { timeout: 60_000, interval: 100 });
    // Test set-up, not the code under test: receive-wal --repo is built elsewhere, so the archived
    // segments are stored under the documented keys (wal/<segment>[.gz]) with the storage API, every
    // other one gzip-compressed so that both forms are read.
    const names = readdirSync(archive)
      .filter((n) => /^[0-9A-F]{24}$/.test(n))
      .sort();
    for (const t of targets) {
      await using repo = await t.open();
      for (const [i, name] of names.entries()) {
        const bytes = readFileSync(join(archive, name));
        await repo.storage.put(walSegmentKey(name, i % 2 === 0 ? 'gzip' : 'none'), i % 2 === 0 ? gzipSync(bytes) : bytes);
      }
      if (t.dir) await chownToServer(t.dir, { recursive: true });
    }
  }, 400_000);

  afterAll(async () => {
    await Promise.allSettled([c, ...restored].filter(Boolean).map((x) => x.destroy()));
  });

  async function startRestored(dataDir: string): Promise<Cluster> {
    const r = await startCluster({ major, dataDir, conf: { archive_mode: 'off' } });
    restored.push(r);
    await vi.waitFor(
      async () => {
        const [row] = await r.sql<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
        expect(row!.rec).toBe(false);
      },
      { timeout: 180_000, interval: 200 },
    );
    return r;
  }

  async function batchesIn(r: Cluster): Promise<number[]> {
    const rows = await r.sql<{ batch: number; n: string }>('SELECT batch, count(*)::text AS n FROM t GROUP BY batch ORDER BY batch');
    for (const row of rows) expect(row.n).toBe('100');
    return rows.map((row) => row.batch);
  }

  describe.each([0, 1])('repository %#', (which) => {
    const t = () => targets[which]!;

    it(
      'restores the newest backup (CLI, no target; 17: an incremental chain): replays the archived WAL to its end',
      async () => {
        const newest = incremental.get(t().name) ?? newer.get(t().name)!;
        const chain = incremental.has(t().name) ? [newer.get(t().name)!.id, newest.id] : [newest.id];
        const dataDir = join(await makeTempDir('repo-restored'), 'data');
        const r = await runPgbb(runnable, ['restore', '--repo', t().address, '-D', dataDir, '--json', '--no-sync'], awsEnv());
        expect(r.stderr).toContain(`restored backup ${newest.id}`);
        expect(r.code, r.stderr).toBe(0);
        const done = r.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { type?: string; backupId?: string; walArchive?: boolean })
          .find((j) => j.backupId !== undefined);
        expect(done).toMatchObject({ backupId: newest.id, chain, walArchive: true });
        // Nothing beside the data directory: a chain is combined in place, without a scratch directory.
        expect(readdirSync(join(dataDir, '..'))).toEqual(['data']);
        const auto = readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8');
        expect(auto).toContain(`restore-wal "%f" "%p" --repo ''`);
        expect(auto).not.toMatch(/AWS_|testing/);
        expect(await batchesIn(await startRestored(dataDir))).toEqual([0, 1, 2, 3]);
      },
      RESTORE_TIMEOUT_MS,
    );

    it(
      'a target time between the two backups picks the older one and stops before batch 2',
      async () => {
        const dataDir = join(await makeTempDir('repo-restored'), 'data');
        const r = await runPgbb(
          runnable,
          [
            'restore',
            '--repo',
            t().address,
            '-D',
            dataDir,
            '--target-time',
            batches[1]!.timeAfter,
            '--target-action',
            'promote',
            '--no-sync',
          ],
          awsEnv(),
        );
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toContain(`restored backup ${older.get(t().name)!.id}`);
        expect(r.stderr).toMatch(/recovery will stop at [0-9A-F]+\/[0-9A-F]+ on timeline 1/);
        expect(await batchesIn(await startRestored(dataDir))).toEqual([0, 1]);
      },
      RESTORE_TIMEOUT_MS,
    );

    it(
      'a target LSN past the newer backup replays through restore-wal --repo (library)',
      async () => {
        const dataDir = join(await makeTempDir('repo-restored'), 'data');
        await using repo = await t().open();
        const result = await restoreFromRepository(repo, {
          dataDir,
          target: { kind: 'lsn', lsn: parseLsn(batches[2]!.lsnAfter) },
          targetAction: 'promote',
          repositoryAddress: t().address,
          pgbbCommand: [runnable.node, runnable.cli],
          noSync: true,
        });
        expect(result.backup.id).toBe(newer.get(t().name)!.id);
        expect(result.chain).toEqual([newer.get(t().name)!.id]);
        expect(result.targetLsn).toBe(parseLsn(batches[2]!.lsnAfter));
        expect(await batchesIn(await startRestored(dataDir))).toEqual([0, 1, 2]);
      },
      RESTORE_TIMEOUT_MS,
    );

    it(
      'refuses a target before the oldest backup (NoBackupForTargetError), writing nothing',
      async () => {
        const dataDir = join(await makeTempDir('repo-restored'), 'data');
        await using repo = await t().open();
        const before = new Date(older.get(t().name)!.endTime.getTime() - 1000);
        await expect(
          restoreFromRepository(repo, { dataDir, target: { kind: 'time', time: before }, repositoryAddress: t().address }),
        ).rejects.toMatchObject({ code: 'ERR_PGBB_NO_BACKUP_FOR_TARGET', oldest: { id: older.get(t().name)!.id } });
        expect(existsSync(dataDir)).toBe(false);
      },
      RESTORE_TIMEOUT_MS,
    );

    it(
      'restore-wal --repo: 0 with the segment written, 1 when absent, 126 for a corrupted stored segment',
      async () => {
        const out = await makeTempDir('repo-restore-wal');
        const names = readdirSync(archive)
          .filter((n) => /^[0-9A-F]{24}$/.test(n))
          .sort();
        const gz = names[0]!; // stored gzip-compressed
        const ok = await runPgbb(runnable, ['restore-wal', gz, join(out, 'a'), '--repo', t().address], awsEnv());
        expect(ok.code, ok.stderr).toBe(0);
        expect((await readFile(join(out, 'a'))).equals(readFileSync(join(archive, gz)))).toBe(true);
        const absent = await runPgbb(
          runnable,
          ['restore-wal', '0000000100000000000000FE', join(out, 'b'), '--repo', t().address],
          awsEnv(),
        );
        expect(absent.code).toBe(1);
        expect(existsSync(join(out, 'b'))).toBe(false);
        // A segment of another timeline (nothing else reads it), stored with its first page's magic broken.
        const damaged = Buffer.from(readFileSync(join(archive, names[1]!)));
        damaged.writeUInt16LE(0x1234, 0);
        const damagedName = `000000AA${names[1]!.slice(8)}`;
        await using repo = await t().open();
        await repo.storage.put(walSegmentKey(damagedName), damaged);
        const bad = await runPgbb(runnable, ['restore-wal', damagedName, join(out, 'c'), '--repo', t().address], awsEnv());
        expect(bad.code).toBe(126);
        expect(bad.stderr).toMatch(/unknown WAL page magic/);
        expect(readdirSync(out)).toEqual(['a']);
      },
      RESTORE_TIMEOUT_MS,
    );

    // Last: it removes a segment from this repository.
    it(
      'a segment missing from the repository makes the pre-flight refuse, naming it; -D is left as it was',
      async () => {
        const [seg] = await c.sql<{ f: string }>(`SELECT pg_walfile_name('${batches[2]!.lsnAfter}') AS f`);
        await using repo = await t().open();
        const keys: string[] = [];
        for await (const o of repo.storage.list({ prefix: `wal/${seg!.f}` })) keys.push(o.key);
        expect(keys.length).toBe(1);
        await repo.storage.delete(keys[0]!);
        const dataDir = await makeTempDir('repo-restored-empty');
        // The older backup: its walk to the target crosses the removed segment (a newer one may start after it).
        const r = await runPgbb(
          runnable,
          ['restore', '--repo', t().address, '-D', dataDir, '--backup', older.get(t().name)!.id, '--target-lsn', batches[3]!.lsnAfter],
          awsEnv(),
        );
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(`${seg!.f} is missing`);
        expect(readdirSync(dataDir)).toEqual([]);
      },
      RESTORE_TIMEOUT_MS,
    );

    it(
      'a stored archive damaged in storage is refused (ERR_PGBB_VERIFY) and nothing is left in -D',
      async () => {
        const backup = older.get(t().name)!;
        const base = backup.objects.find((o) => o.name.startsWith('base.tar'))!;
        await using repo = await t().open();
        const chunks: Buffer[] = [];
        for await (const chunk of await repo.openBackupObject(backup.id, base.name)) chunks.push(chunk as Buffer);
        const bytes = Buffer.concat(chunks);
        bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
        await repo.storage.put(`backups/${backup.id}/${base.name}`, bytes);
        const dataDir = await makeTempDir('repo-restored-damaged');
        await expect(
          restoreFromRepository(repo, {
            dataDir,
            backupId: backup.id,
            target: { kind: 'immediate' },
            repositoryAddress: t().address,
            pgbbCommand: [runnable.node, runnable.cli],
            noSync: true,
          }),
        ).rejects.toMatchObject({ code: 'ERR_PGBB_VERIFY' });
        expect(readdirSync(dataDir)).toEqual([]);
      },
      RESTORE_TIMEOUT_MS,
    );
  });
});
