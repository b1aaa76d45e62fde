// Compression end to end, through runBackup and the CLI, against real servers: the six modes
// (client gzip/lz4/zstd, server gzip/lz4/zstd) give archives that the gzip, lz4 and zstd
// command-line tools decompress, that `pgbb verify` accepts, and that restore to exactly the
// data the primary had; server-compressed plain output passes pg_verifybackup 15; -R works with
// both; a server that cannot compress is refused before any file or slot exists. Debian's
// PostgreSQL 15 has lz4 and zstd; the embedded builds (15-18) have gzip only.
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup, verifyBackupAll } from '../../src/index.js';
import { makeTempDir, oracleBin, startCluster, testMajors, type Cluster } from '../harness/index.js';
import { exec, expectNoBackupLeft, expectRecovered, limiter, restoreTar, slotsAfterSettling, tarMembers } from './backup-helpers.js';

const limit = limiter(2);
const TIMEOUT_MS = 240_000;
const TOOL: Record<string, string> = { '.gz': 'gzip', '.lz4': 'lz4', '.zst': 'zstd' };
const DIGEST = `select count(*)::int n, md5(string_agg(id::text || ':' || payload, ',' order by id)) d from data`;

/** Decompresses every archive of a tar backup with the command-line tools into `out` (the manifest copied). */
async function decompressWithTools(backupDir: string, out: string): Promise<string[]> {
  await mkdir(out, { recursive: true, mode: 0o700 });
  const names = (await readdir(backupDir)).sort();
  for (const name of names) {
    const m = /^(.*\.tar)(\.gz|\.lz4|\.zst)$/.exec(name);
    if (m) {
      // `-t` first: the tool's own integrity test of every member or frame.
      await exec(TOOL[m[2]!]!, ['-t', join(backupDir, name)]);
      await exec('sh', ['-c', `${TOOL[m[2]!]} -dc "$1" > "$2"`, 'sh', join(backupDir, name), join(out, m[1]!)]);
    } else {
      await exec('cp', [join(backupDir, name), join(out, name)]);
    }
  }
  return names;
}

async function digest(c: Cluster): Promise<{ n: number; d: string }> {
  return (await c.sql<{ n: number; d: string }>(DIGEST))[0]!;
}

async function restoreAndCompare(primary: Cluster, tarDir: string, expected: { n: number; d: string }): Promise<void> {
  const dataDir = join(await makeTempDir('comp-restore'), 'data');
  const tsDirs = await restoreTar(tarDir, dataDir, await makeTempDir('comp-ts'));
  const restored = await startCluster({ major: primary.major, flavor: primary.flavor, dataDir, chownPaths: tsDirs });
  try {
    await expectRecovered(restored);
    expect(await digest(restored)).toEqual(expected);
  } finally {
    await restored.destroy();
  }
}

/** Loads `data` with compressible text and incompressible random bytes, then changes it after each backup. */
async function loadData(c: Cluster): Promise<void> {
  await c.sql('create table data(id int primary key, payload text)');
  await c.sql(`insert into data select g, case when g % 2 = 0 then repeat('pg', 200)
    else encode(decode(md5(random()::text) || md5(random()::text), 'hex'), 'base64') end from generate_series(1, 20000) g`);
}

const hasDebian = testMajors().includes(15);

// Sequential: each test changes the shared table after its backup, and a change committed while another
// test's backup runs would rightly be in that backup's restore.
describe.runIf(hasDebian).sequential('compression on PostgreSQL 15 (Debian build: gzip, lz4, zstd)', () => {
  let primary: Cluster;
  beforeAll(async () => {
    primary = await startCluster({ major: 15, flavor: 'debian', ssl: false });
    await loadData(primary);
  });
  afterAll(async () => {
    await primary?.destroy();
  });

  for (const spec of ['client-gzip:1', 'client-lz4', 'client-zstd', 'server-gzip', 'server-lz4', 'server-zstd:level=5']) {
    const server = spec.startsWith('server-');
    const method = spec.replace(/^(client|server)-/, '').replace(/:.*/, '');
    const suffix = { gzip: '.gz', lz4: '.lz4', zstd: '.zst' }[method]!;
    it(
      `${spec}, tar with streamed WAL: the tools decompress every archive, verify passes, the restore holds the same data`,
      () =>
        limit(async () => {
          const target = join(await makeTempDir('comp'), 'tar');
          const before = await digest(primary);
          await runBackup({
            connection: primary.connectionString(),
            checkpoint: 'fast',
            noSync: true,
            compression: spec,
            output: { format: 'tar', directory: target },
          });
          // Changes after the backup must not show in the restore.
          await primary.sql(`update data set payload = 'changed' where id % 97 = 0`);
          const names = (await readdir(target)).sort();
          // The server compresses the data archives; pg_wal.tar is ours, compressed only on the client
          // (as pg_basebackup does).
          expect(names).toEqual(['backup_manifest', `base.tar${suffix}`, server ? 'pg_wal.tar' : `pg_wal.tar${suffix}`].sort());
          const report = await verifyBackupAll({ backupDir: target });
          expect(report.findings).toEqual([]);
          expect(report.summary.format).toBe('tar');
          const plainDir = join(await makeTempDir('comp-dec'), 'tar');
          await decompressWithTools(target, plainDir);
          expect(await tarMembers(join(plainDir, 'base.tar'))).toContain('backup_label');
          await restoreAndCompare(primary, plainDir, before);
        }),
      TIMEOUT_MS,
    );
  }

  for (const spec of ['server-lz4', 'server-zstd']) {
    it(
      `${spec}, plain: decompressed on the client, pg_verifybackup 15 accepts it, and it restores`,
      () =>
        limit(async () => {
          const target = join(await makeTempDir('comp-plain'), 'data');
          const before = await digest(primary);
          await runBackup({
            connection: primary.connectionString(),
            checkpoint: 'fast',
            noSync: true,
            compression: spec,
            output: { format: 'plain', directory: target },
          });
          const { stdout } = await exec(oracleBin('pg_verifybackup'), [target]);
          expect(stdout).toMatch(/backup successfully verified/);
          const restored = await startCluster({ major: 15, flavor: 'debian', dataDir: target });
          try {
            await expectRecovered(restored);
            expect(await digest(restored)).toEqual(before);
          } finally {
            await restored.destroy();
          }
        }),
      TIMEOUT_MS,
    );
  }

  it(
    '-R with server zstd: standby.signal and primary_conninfo go into base.tar.zst (decompressed, rewritten, compressed again)',
    () =>
      limit(async () => {
        const target = join(await makeTempDir('comp-r'), 'tar');
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          compression: 'server-zstd',
          writeRecoveryConf: true,
          wal: 'fetch',
          output: { format: 'tar', directory: target },
        });
        expect((await readdir(target)).sort()).toEqual(['backup_manifest', 'base.tar.zst']);
        const { stdout } = await exec('sh', ['-c', 'zstd -dc "$1" | tar -xOf - postgresql.auto.conf', 'sh', join(target, 'base.tar.zst')]);
        expect(stdout).toMatch(/primary_conninfo = '.*port=/);
        const { stdout: list } = await exec('sh', ['-c', 'zstd -dc "$1" | tar -tf -', 'sh', join(target, 'base.tar.zst')]);
        expect(list.split('\n')).toContain('standby.signal');
      }),
    TIMEOUT_MS,
  );

  it(
    'client gzip to a stream (-D - -z): one gzip stream holding base.tar with the manifest inside',
    () =>
      limit(async () => {
        const dir = await makeTempDir('comp-stream');
        const file = join(dir, 'backup.tar.gz');
        const stream = createWriteStream(file, { mode: 0o600 });
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          compression: 'gzip',
          wal: 'fetch',
          writeRecoveryConf: true,
          output: { format: 'tar-stream', stream, end: true },
        });
        await exec('gzip', ['-t', file]);
        const { stdout } = await exec('sh', ['-c', 'gzip -dc "$1" | tar -tf -', 'sh', file], { maxBuffer: 64 << 20 });
        const members = stdout.split('\n');
        expect(members).toContain('backup_manifest');
        expect(members).toContain('standby.signal');
        expect(members.some((m) => /^pg_wal\/[0-9A-F]{24}$/.test(m))).toBe(true);
      }),
    TIMEOUT_MS,
  );

  it(
    'pgbb backup -Ft -Z client-lz4 and -Fp --compress=server-gzip through the CLI',
    () =>
      limit(async () => {
        const dir = await makeTempDir('comp-cli');
        const cli = join(process.cwd(), 'dist/cli/main.js');
        await exec(process.execPath, [
          cli,
          'backup',
          '-d',
          primary.connectionString(),
          '-c',
          'fast',
          '-N',
          '-Ft',
          '-Z',
          'client-lz4',
          '-D',
          join(dir, 't'),
        ]);
        expect((await readdir(join(dir, 't'))).sort()).toEqual(['backup_manifest', 'base.tar.lz4', 'pg_wal.tar.lz4']);
        await exec(process.execPath, [
          cli,
          'backup',
          '-d',
          primary.connectionString(),
          '-c',
          'fast',
          '-N',
          '-Fp',
          '--compress=server-gzip:9',
          '-D',
          join(dir, 'p'),
        ]);
        const { stdout } = await exec(oracleBin('pg_verifybackup'), [join(dir, 'p')]);
        expect(stdout).toMatch(/backup successfully verified/);
        const { stdout: verified } = await exec(process.execPath, [cli, 'verify', join(dir, 't')]);
        expect(verified).toMatch(/backup successfully verified/);
      }),
    TIMEOUT_MS,
  );
});

describe.concurrent('server-side compression on the embedded builds', () => {
  for (const major of testMajors()) {
    if (major >= 15) {
      it(
        `PostgreSQL ${major}: server gzip, plain, restores; server lz4 is refused before anything is written`,
        async () => {
          const c = await startCluster({ major, ssl: false });
          try {
            await loadData(c);
            const before = await digest(c);
            const target = join(await makeTempDir('comp-emb'), 'data');
            await runBackup({
              connection: c.connectionString(),
              checkpoint: 'fast',
              noSync: true,
              compression: 'server-gzip:1',
              output: { format: 'plain', directory: target },
            });
            const restored = await startCluster({ major, dataDir: target });
            try {
              await expectRecovered(restored);
              expect(await digest(restored)).toEqual(before);
            } finally {
              await restored.destroy();
            }
            const refused = join(await makeTempDir('comp-emb-lz4'), 'tar');
            const err = await runBackup({
              connection: c.connectionString(),
              checkpoint: 'fast',
              compression: 'server-lz4',
              output: { format: 'tar', directory: refused },
            }).catch((e: unknown) => e);
            expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
            expect((err as Error).message).toMatch(/built without lz4.*client-lz4/s);
            await expectNoBackupLeft(refused, false);
            expect(await slotsAfterSettling(c)).toEqual([]);
          } finally {
            await c.destroy();
          }
        },
        TIMEOUT_MS,
      );
    } else {
      it(
        `PostgreSQL ${major}: server-side compression is refused before any file, connection for WAL or slot`,
        async () => {
          const c = await startCluster({ major, ssl: false });
          try {
            const target = join(await makeTempDir('comp-old'), 'data');
            const err = await runBackup({
              connection: c.connectionString(),
              compression: 'server-gzip',
              output: { format: 'plain', directory: target },
            }).catch((e: unknown) => e);
            expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
            expect((err as Error).message).toMatch(/PostgreSQL 15 or later.*client-gzip/s);
            expect(existsSync(target)).toBe(false);
            expect(await slotsAfterSettling(c)).toEqual([]);
          } finally {
            await c.destroy();
          }
        },
        TIMEOUT_MS,
      );
    }
  }
});
