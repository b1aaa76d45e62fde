// The promise of the project: a backup taken while the primary keeps committing restores
// to a server that reaches consistency and holds exactly the rows committed before the
// backup ended. Plain and tar formats, a user tablespace, WAL streamed, fetched or none.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/index.js';
import { chownToServer, makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';

const exec = promisify(execFile);

/** Keeps inserting rows in single-row transactions until stopped; returns the ids committed. */
function writer(c: Cluster): { stop: () => Promise<number> } {
  let running = true;
  const loop = (async () => {
    let n = 0;
    while (running) {
      await c.sql('insert into ticks(at) values (clock_timestamp())');
      n++;
    }
    return n;
  })();
  return { stop: async () => { running = false; return loop; } };
}

async function extractTar(file: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await exec('tar', ['-xf', file, '-C', dir]);
}

for (const major of testMajors()) {
  describe(`backup and restore, PostgreSQL ${major}`, () => {
    let primary: Cluster;
    let tsDir: string;
    beforeAll(async () => {
      primary = await startCluster({ major });
      tsDir = await makeTempDir('ts');
      await chownToServer(tsDir);
      await primary.sql(`create tablespace extra location '${tsDir}'`);
      await primary.sql('create table ticks(id bigserial primary key, at timestamptz)');
      await primary.sql('create table in_ts(id int, payload text) tablespace extra');
      await primary.sql(`insert into in_ts select g, repeat('x', 100) from generate_series(1, 5000) g`);
    });
    afterAll(async () => {
      await primary?.destroy();
    });

    it('plain format with streamed WAL and a mapped tablespace restores the committed rows', async () => {
      const target = join(await makeTempDir('plain'), 'data');
      const mappedTs = join(await makeTempDir('plain-ts'), 'ts');
      const w = writer(primary);
      const result = await runBackup({
        connection: primary.connectionString(),
        checkpoint: 'fast',
        output: { format: 'plain', directory: target, tablespaceMapping: new Map([[tsDir, mappedTs]]) },
      });
      await w.stop();
      const committedAtEnd = Number((await primary.sql<{ n: string }>('select count(*) n from ticks'))[0]!.n);
      expect(result.endLsn > result.startLsn).toBe(true);
      const walFiles = await readdir(join(target, 'pg_wal'));
      expect(walFiles.some((f) => /^[0-9A-F]{24}$/.test(f))).toBe(true);
      expect(walFiles.some((f) => f.endsWith('.partial'))).toBe(false);
      expect(await readFile(join(target, 'backup_manifest'), 'utf8')).toContain('"WAL-Ranges"');

      await chownToServer(mappedTs, { recursive: true });
      const restored = await startCluster({ major, dataDir: target, chownPaths: [mappedTs] });
      try {
        const [row] = await restored.sql<{ n: string; t: string }>(
          'select (select count(*) from ticks) n, (select count(*) from in_ts) t');
        expect(Number(row!.t)).toBe(5000);
        // Everything the backup covered, nothing after it: at most what was committed by the end.
        expect(Number(row!.n)).toBeGreaterThan(0);
        expect(Number(row!.n)).toBeLessThanOrEqual(committedAtEnd);
      } finally {
        await restored.destroy();
      }
    });

    it('tar format with streamed WAL restores after extraction with GNU tar', async () => {
      const target = await makeTempDir('tar');
      await rm(target, { recursive: true });
      await runBackup({ connection: primary.connectionString(), checkpoint: 'fast', output: { format: 'tar', directory: target } });
      const names = (await readdir(target)).sort();
      const oid = (await primary.sql<{ oid: string }>(`select oid from pg_tablespace where spcname = 'extra'`))[0]!.oid;
      expect(names).toEqual(['backup_manifest', 'base.tar', `${oid}.tar`, 'pg_wal.tar'].sort());
      const dataDir = join(await makeTempDir('tar-restore'), 'data');
      await extractTar(join(target, 'base.tar'), dataDir);
      await extractTar(join(target, 'pg_wal.tar'), join(dataDir, 'pg_wal'));
      const tsRestore = join(await makeTempDir('tar-ts'), 'ts');
      await extractTar(join(target, `${oid}.tar`), tsRestore);
      // tar format carries tablespace_map; point it at the restored location.
      const map = await readFile(join(dataDir, 'tablespace_map'), 'utf8');
      expect(map).toContain(`${oid} ${tsDir}`);
      await exec('sed', ['-i', `s|^${oid} .*$|${oid} ${tsRestore}|`, join(dataDir, 'tablespace_map')]);
      await chownToServer(tsRestore, { recursive: true });
      const restored = await startCluster({ major, dataDir, chownPaths: [tsRestore] });
      try {
        const [row] = await restored.sql<{ t: string }>('select count(*) t from in_ts');
        expect(Number(row!.t)).toBe(5000);
      } finally {
        await restored.destroy();
      }
    });
  });
}
