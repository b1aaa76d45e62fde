// The promise of the project: a backup taken while the primary keeps committing restores
// to a server that reaches consistency and holds exactly the rows committed before the
// backup ended. Plain and tar formats, a user tablespace, WAL streamed, fetched, or none
// (restored from the primary's WAL archive); GNU tar reads our archives, tablespace
// symlink entries included.
import { createWriteStream } from 'node:fs';
import { readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup, startBackup } from '../../src/index.js';
import { makeTempDir, startCluster, testMajors, type Cluster, atomicArchiveCommand } from '../harness/index.js';
import {
  createTicks,
  exec,
  limiter,
  expectCommittedPrefix,
  expectRecovered,
  restoreTar,
  startWriter,
  tarMembers,
  untar,
  type Committed,
} from './backup-helpers.js';

const TS_ROWS = 2000;
// Three backup-and-restore cycles at a time across all majors (see limiter()); a test's time
// includes its wait for a turn.
const limit = limiter(3);
const TIMEOUT_MS = 240_000;

// Majors, and the tests of each major, run concurrently: each test has its own writer table,
// and most of the time goes to waiting for checkpoints, fsyncs and recoveries.
describe.concurrent('backup and restore', () => {
  for (const major of testMajors()) {
    describe(`PostgreSQL ${major}`, () => {
      let primary: Cluster;
      let tsDir: string;
      let archiveDir: string;
      let tsOid: string;
      beforeAll(async () => {
        archiveDir = await makeTempDir('archive');
        primary = await startCluster({
          major,
          ssl: false,
          conf: { archive_mode: 'on', archive_command: atomicArchiveCommand(archiveDir) },
        });
        tsDir = await makeTempDir('ts');
        await primary.sql(`create tablespace extra location '${tsDir}'`);
        for (const t of ['t_plain', 't_tar', 't_fetch', 't_none']) await createTicks(primary, t);
        await primary.sql('create table in_ts(id int, payload text) tablespace extra');
        await primary.sql(`insert into in_ts select g, repeat('x', 100) from generate_series(1, ${TS_ROWS}) g`);
        tsOid = (await primary.sql<{ oid: string }>(`select oid::text from pg_tablespace where spcname = 'extra'`))[0]!.oid;
      });
      afterAll(async () => {
        await primary?.destroy();
      });

      async function checkRestored(restored: Cluster, table: string, committed: Committed[], endLsn: bigint) {
        await expectRecovered(restored);
        const [t] = await restored.sql<{ n: number }>('select count(*)::int n from in_ts');
        expect(t!.n).toBe(TS_ROWS);
        await expectCommittedPrefix(restored, primary, table, committed, endLsn);
      }

      it(
        'plain, streamed WAL, mapped tablespace: restores exactly the committed rows',
        () =>
          limit(async () => {
            const target = join(await makeTempDir('plain'), 'data');
            const mappedTs = join(await makeTempDir('plain-ts'), 'ts');
            const w = startWriter(primary, 't_plain');
            await w.started;
            // The one backup of this file that keeps the final fsync.
            const result = await runBackup({
              connection: primary.connectionString(),
              checkpoint: 'fast',
              output: { format: 'plain', directory: target, tablespaceMapping: new Map([[tsDir, mappedTs]]) },
            });
            const committed = await w.stop();
            expect(result.endLsn > result.startLsn).toBe(true);
            const walFiles = await readdir(join(target, 'pg_wal'));
            expect(walFiles.some((f) => /^[0-9A-F]{24}$/.test(f))).toBe(true);
            expect(walFiles.some((f) => f.endsWith('.partial'))).toBe(false);
            expect(await readFile(join(target, 'backup_manifest'), 'utf8')).toContain('"WAL-Ranges"');
            expect(await readlink(join(target, 'pg_tblspc', tsOid))).toBe(mappedTs);

            const restored = await startCluster({ major, dataDir: target, chownPaths: [mappedTs] });
            try {
              await checkRestored(restored, 't_plain', committed, result.endLsn);
            } finally {
              await restored.destroy();
            }
          }),
        TIMEOUT_MS,
      );

      it(
        'tar, streamed WAL: GNU tar extracts it and the copy restores exactly the committed rows',
        () =>
          limit(async () => {
            const target = join(await makeTempDir('tar'), 'out');
            const w = startWriter(primary, 't_tar');
            await w.started;
            const result = await runBackup({
              connection: primary.connectionString(),
              checkpoint: 'fast',
              noSync: true,
              output: { format: 'tar', directory: target },
            });
            const committed = await w.stop();
            expect((await readdir(target)).sort()).toEqual(['backup_manifest', 'base.tar', `${tsOid}.tar`, 'pg_wal.tar'].sort());
            const base = await tarMembers(join(target, 'base.tar'));
            expect(base).toEqual(expect.arrayContaining(['PG_VERSION', 'backup_label', 'tablespace_map', 'global/pg_control', 'pg_wal']));
            // WAL came through pg_wal.tar, not base.tar.
            expect(base.filter((n) => n.startsWith('pg_wal/') && /[0-9A-F]{24}$/.test(n))).toEqual([]);
            const wal = await tarMembers(join(target, 'pg_wal.tar'));
            expect(wal.some((n) => /^[0-9A-F]{24}$/.test(n))).toBe(true);

            const dataDir = join(await makeTempDir('tar-restore'), 'data');
            const tsDirs = await restoreTar(target, dataDir, await makeTempDir('tar-ts'));
            const restored = await startCluster({ major, dataDir, chownPaths: tsDirs });
            try {
              await checkRestored(restored, 't_tar', committed, result.endLsn);
            } finally {
              await restored.destroy();
            }
          }),
        TIMEOUT_MS,
      );

      it(
        'plain, fetched WAL: restores exactly the committed rows',
        () =>
          limit(async () => {
            const target = join(await makeTempDir('fetch'), 'data');
            const mappedTs = join(await makeTempDir('fetch-ts'), 'ts');
            const w = startWriter(primary, 't_fetch');
            await w.started;
            const result = await runBackup({
              connection: primary.connectionString(),
              checkpoint: 'fast',
              wal: 'fetch',
              noSync: true,
              output: { format: 'plain', directory: target, tablespaceMapping: new Map([[tsDir, mappedTs]]) },
            });
            const committed = await w.stop();
            expect((await readdir(join(target, 'pg_wal'))).some((f) => /^[0-9A-F]{24}$/.test(f))).toBe(true);
            const restored = await startCluster({ major, dataDir: target, chownPaths: [mappedTs] });
            try {
              await checkRestored(restored, 't_fetch', committed, result.endLsn);
            } finally {
              await restored.destroy();
            }
          }),
        TIMEOUT_MS,
      );

      it(
        "plain, no WAL: restores from the primary's WAL archive with restore_command",
        () =>
          limit(async () => {
            const target = join(await makeTempDir('none'), 'data');
            const mappedTs = join(await makeTempDir('none-ts'), 'ts');
            const w = startWriter(primary, 't_none');
            await w.started;
            const result = await runBackup({
              connection: primary.connectionString(),
              checkpoint: 'fast',
              wal: 'none',
              noSync: true,
              output: { format: 'plain', directory: target, tablespaceMapping: new Map([[tsDir, mappedTs]]) },
            });
            const committed = await w.stop();
            expect((await readdir(join(target, 'pg_wal'))).filter((f) => /^[0-9A-F]{24}$/.test(f))).toEqual([]);
            // wal 'none' waits for the server to archive the backup's last segment (pg_backup_stop's WAIT).
            expect((await readdir(archiveDir)).some((f) => /^[0-9A-F]{24}$/.test(f))).toBe(true);
            await writeFile(join(target, 'recovery.signal'), '');
            const restored = await startCluster({
              major,
              dataDir: target,
              chownPaths: [mappedTs],
              conf: { restore_command: `cp ${archiveDir}/%f %p` },
            });
            try {
              await checkRestored(restored, 't_none', committed, result.endLsn);
              // Archive recovery ends on a new timeline.
              const [tl] = await restored.sql<{ tl: number }>('select timeline_id::int tl from pg_control_checkpoint()');
              expect(tl!.tl).toBeGreaterThan(1);
            } finally {
              await restored.destroy();
            }
          }),
        TIMEOUT_MS,
      );

      it(
        'tar without tablespace_map: GNU tar lists and extracts the pg_tblspc symlink entry',
        () =>
          limit(async () => {
            const dir = await makeTempDir('tar-links');
            const session = await startBackup({
              connection: primary.connectionString(),
              checkpoint: 'fast',
              wal: 'fetch',
              tablespaceMap: false,
            });
            const file = join(dir, 'base.tar');
            for await (const archive of session.archives()) {
              if (archive.name === 'base.tar') await archive.pipeTo(createWriteStream(file));
              else await archive.skip();
            }
            await session.result();
            const { stdout } = await exec('tar', ['-tvf', file], { maxBuffer: 64 * 1024 * 1024 });
            const lines = stdout.split('\n').filter((l) => l.includes('pg_tblspc'));
            // A symbolic link entry (type '2', shown as 'l') pointing at the server's location; the
            // server's tarCreateHeader names links to directories with a trailing slash.
            expect(lines).toEqual(
              expect.arrayContaining([
                expect.stringMatching(new RegExp(`^l.* pg_tblspc/${tsOid}/? -> ${tsDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)),
              ]),
            );
            expect(stdout).not.toMatch(/ tablespace_map$/m);
            const out = join(dir, 'x');
            await untar(file, out);
            expect(await readlink(join(out, 'pg_tblspc', tsOid))).toBe(tsDir);
            await rm(out, { recursive: true, force: true });
          }),
        TIMEOUT_MS,
      );
    });
  }
});
