// PostgreSQL 17+ incremental backups end to end: a full backup, changes (inserts, updates, deletes, a new
// table, a dropped table, a TRUNCATE and a VACUUM that shortens a file), an incremental backup that is
// clearly smaller, more changes and a second incremental; combineBackups of full+inc1 and full+inc1+inc2;
// each result verifies and restores to exactly the data the primary held when that incremental was taken.
// Also: summarize_wal off gives the advice, and a broken chain is refused.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultLibrary } from '../../src/cli/library.js';
import { runCli } from '../../src/cli/run.js';
import type { CliContext } from '../../src/cli/context.js';
import { combineBackups, runBackup, verifyBackupAll, type RunBackupResult } from '../../src/index.js';
import { parseIncrementalHeader } from '../../src/combine/incremental-file.js';
import { buildManifest } from '../../src/manifest/build.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { chownToServer, makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';
import { reloadSettings } from './backup-helpers.js';

/** Run pgbb in-process with the real library; returns the exit status and what it printed. */
async function pgbb(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const ctx: CliContext = {
    stdout: {
      write: (s: string | Uint8Array) => {
        out.stdout += String(s);
      },
    },
    stderr: {
      write: (s: string) => {
        out.stderr += s;
      },
    },
    stdin: {} as CliContext['stdin'],
    env: {},
    signal: new AbortController().signal,
    version: 'test',
    lib: defaultLibrary,
  };
  const status = await runCli(args, ctx);
  return { status, ...out };
}

type Digest = Record<string, string>;

/** Every user table with its row count and an md5 over its rows in a stable order. */
async function digest(c: Cluster): Promise<Digest> {
  const tables = await c.sql<{ relname: string }>(
    "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' order by relname",
  );
  const out: Digest = {};
  for (const { relname } of tables) {
    const [row] = await c.sql<{ n: string; h: string }>(
      `select count(*) n, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) h from ${relname} t`,
    );
    out[relname] = `${row!.n}:${row!.h}`;
  }
  return out;
}

const majors = testMajors().filter((m) => m >= 17);

for (const major of majors) {
  describe(`incremental backups and combine, PostgreSQL ${major}`, () => {
    let primary: Cluster;
    let dir: string;
    let full: string;
    let inc1: string;
    let inc2: string;
    let tsDir: string;
    /** Where each backup put the tablespace (-T), by backup name. */
    const tsOf: Record<string, string> = {};
    let fullResult: RunBackupResult;
    let inc1Result: RunBackupResult;
    let atInc1: Digest;
    let atInc2: Digest;
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      try {
        return await f();
      } finally {
        timings[name] = Math.round(performance.now() - t);
      }
    };

    beforeAll(async () => {
      primary = await startCluster({ major, conf: { summarize_wal: 'on' } });
      dir = await makeTempDir(`incr${major}`);
      [full, inc1, inc2] = ['full', 'inc1', 'inc2'].map((n) => join(dir, n)) as [string, string, string];
      for (const n of ['full', 'inc1', 'inc2', 'inc3', 'comb1', 'comb2', 'comb3']) tsOf[n] = join(dir, `ts-${n}`);
      tsDir = await makeTempDir(`incr${major}-ts`);
      await chownToServer(tsDir);
      await primary.sql(`create tablespace extra location '${tsDir}'`);
      await primary.sql('create table in_ts(id int primary key, v text) tablespace extra');
      await primary.sql(`insert into in_ts select g, 'x' || g from generate_series(1, 20000) g`);
      await primary.sql('create table static_big(id int primary key, payload text)');
      await primary.sql(`insert into static_big select g, repeat(md5(g::text), 4) from generate_series(1, 100000) g`);
      await primary.sql('create table upd(id int primary key, v int, note text)');
      await primary.sql(`insert into upd select g, g, 'orig' from generate_series(1, 20000) g`);
      await primary.sql('create table del(id int primary key, v text)');
      await primary.sql(`insert into del select g, 'd' || g from generate_series(1, 20000) g`);
      await primary.sql('create table shrink(id int primary key, v text)');
      await primary.sql(`insert into shrink select g, repeat('s', 200) from generate_series(1, 20000) g`);
      await primary.sql('create table trunc(id int, v text)');
      await primary.sql(`insert into trunc select g, 't' || g from generate_series(1, 5000) g`);
      await primary.sql('create table dropme(id int)');
      await primary.sql('insert into dropme select generate_series(1, 1000)');
      // Settle hint bits and the visibility map now, so that later changes touch only the pages they change.
      await primary.sql('vacuum');
      await primary.sql('checkpoint');
      fullResult = await timed('full backup', () =>
        runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          output: { format: 'plain', directory: full, tablespaceMapping: new Map([[tsDir, tsOf.full!]]) },
        }),
      );
    });
    afterAll(async () => {
      console.info(`incremental PostgreSQL ${major} timings (ms): ${JSON.stringify(timings)}`);
      await primary?.destroy();
    });

    it('takes an incremental backup that is clearly smaller than the full one', async () => {
      const shrinkPath = (await primary.sql<{ f: string }>(`select pg_relation_filepath('shrink') f`))[0]!.f;
      await primary.sql(`insert into upd select g, g, 'new' from generate_series(20001, 21000) g`);
      await primary.sql(`update upd set v = -v, note = 'changed' where id % 97 = 0`);
      await primary.sql('delete from del where id % 10 = 0');
      await primary.sql('create table added(id int, v text)');
      await primary.sql(`insert into added select g, 'a' || g from generate_series(1, 3000) g`);
      await primary.sql('drop table dropme');
      await primary.sql('truncate trunc');
      await primary.sql(`insert into trunc values (1, 'after truncate')`);
      // Remove the tail and vacuum: the file shrinks, so truncation_block_length drops below the old size.
      await primary.sql('delete from shrink where id > 3000');
      await primary.sql('vacuum shrink');
      await primary.sql(`update in_ts set v = 'changed' where id between 5000 and 5100`);
      inc1Result = await timed('incremental 1', () =>
        runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          output: { format: 'plain', directory: inc1, tablespaceMapping: new Map([[tsDir, tsOf.inc1!]]) },
          incrementalManifest: join(full, 'backup_manifest'),
        }),
      );
      atInc1 = await digest(primary);
      const label = await readFile(join(inc1, 'backup_label'), 'utf8');
      expect(label).toMatch(/^INCREMENTAL FROM LSN: /m);
      expect(inc1Result.stats.totalBytes).toBeLessThan(fullResult.stats.totalBytes / 3);
      expect(atInc1).not.toHaveProperty('dropme');
      // The vacuumed table went incrementally, with a truncation_block_length below its old size.
      const parts = shrinkPath.split('/');
      const name = parts.pop()!;
      const header = parseIncrementalHeader(await readFile(join(inc1, ...parts, `INCREMENTAL.${name}`)), shrinkPath);
      if ('need' in header) throw new Error('short incremental file');
      expect(header.truncationBlockLength).toBeLessThan((await stat(join(full, shrinkPath))).size / 8192);
      expect(atInc1).toHaveProperty('added');
    });

    it('takes a second incremental on top of the first', async () => {
      await primary.sql(`update upd set note = 'second' where id between 100 and 400`);
      await primary.sql(`insert into added select g, 'b' || g from generate_series(3001, 4000) g`);
      await primary.sql('delete from shrink where id > 1000');
      await primary.sql('vacuum shrink');
      await primary.sql('create table late(id int)');
      await primary.sql('insert into late select generate_series(1, 10)');
      await primary.sql(`insert into in_ts select g, 'y' || g from generate_series(20001, 20100) g`);
      await timed('incremental 2', () =>
        runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          output: { format: 'plain', directory: inc2, tablespaceMapping: new Map([[tsDir, tsOf.inc2!]]) },
          incrementalManifest: join(inc1, 'backup_manifest'),
        }),
      );
      atInc2 = await digest(primary);
      expect(atInc2).toHaveProperty('late');
    });

    it('full + inc1 combines, verifies and restores to the state at inc1', async () => {
      const out = join(await makeTempDir('comb1'), 'data');
      const r = await timed('combine 2', () =>
        combineBackups({
          backups: [full, inc1],
          output: out,
          tablespaceMapping: new Map([[tsOf.inc1!, tsOf.comb1!]]),
        }),
      );
      expect(r.tablespaces.map((t) => t.directory)).toEqual([tsOf.comb1]);
      expect(r.filesReconstructed).toBeGreaterThan(0);
      expect(r.startLsn).toBe(inc1Result.startLsn);
      const { findings } = await timed('verify 2', () => verifyBackupAll({ backupDir: out }));
      expect(findings).toEqual([]);
      const restored = await timed('restore 2', () => startCluster({ major, dataDir: out }));
      try {
        expect(await digest(restored)).toEqual(atInc1);
      } finally {
        await restored.destroy();
      }
    });

    it('full + inc1 + inc2 combines, verifies and restores to the state at inc2', async () => {
      const out = join(await makeTempDir('comb2'), 'data');
      const r = await timed('combine 3', () =>
        combineBackups({
          backups: [full, inc1, inc2],
          output: out,
          tablespaceMapping: new Map([[tsOf.inc2!, tsOf.comb2!]]),
        }),
      );
      expect(r.filesReconstructed).toBeGreaterThan(0);
      const { findings } = await verifyBackupAll({ backupDir: out });
      expect(findings).toEqual([]);
      const restored = await timed('restore 3', () => startCluster({ major, dataDir: out }));
      try {
        expect(await digest(restored)).toEqual(atInc2);
      } finally {
        await restored.destroy();
      }
    });

    it('refuses a broken chain: a missing middle backup, a wrong order', async () => {
      const base = await makeTempDir('badchain');
      const gap = await combineBackups({ backups: [full, inc2], output: join(base, 'a') }).catch((e: unknown) => e);
      expect(gap).toMatchObject({ code: 'ERR_PGBB_COMBINE' });
      expect((gap as Error).message).toMatch(/starts at LSN .*, but expected .*without leaving one out/);
      await expect(combineBackups({ backups: [full, inc2, inc1], output: join(base, 'b') })).rejects.toMatchObject({
        code: 'ERR_PGBB_COMBINE',
      });
      await expect(combineBackups({ backups: [inc1, full], output: join(base, 'c') })).rejects.toThrow(
        /first backup should be a full backup/,
      );
    });

    it('a manifest of another cluster is refused with advice', async () => {
      const m = parseManifest(await readFile(join(full, 'backup_manifest')));
      const foreign = buildManifest({
        version: 2,
        systemIdentifier: m.systemIdentifier! + 1n,
        files: [...m.files.values()],
        walRanges: m.walRanges,
      });
      const err = await runBackup({
        connection: primary.connectionString(),
        checkpoint: 'fast',
        wal: 'none',
        output: { format: 'tar', directory: join(await makeTempDir('foreign'), 'out') },
        incrementalManifest: foreign,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
      expect((err as Error).message).toMatch(/system identifier in backup manifest[\s\S]*another cluster/);
    });

    it('pgbb backup -i and pgbb combine: a third incremental, a chain of four', async () => {
      await primary.sql(`delete from upd where id between 1000 and 1999`);
      await primary.sql(`update in_ts set v = 'third' where id < 50`);
      const inc3 = join(dir, 'inc3');
      const b = await timed('pgbb backup -i', () =>
        pgbb([
          'backup',
          '-d',
          primary.connectionString(),
          '-D',
          inc3,
          '-c',
          'fast',
          '-T',
          `${tsDir}=${tsOf.inc3!}`,
          '-i',
          join(inc2, 'backup_manifest'),
        ]),
      );
      expect(b.stderr).toBe('');
      expect(b.status).toBe(0);
      const atInc3 = await digest(primary);
      const out = join(await makeTempDir('comb3'), 'data');
      const c = await timed('pgbb combine', () =>
        pgbb(['combine', full, inc1, inc2, inc3, '-o', out, '-T', `${tsOf.inc3!}=${tsOf.comb3!}`]),
      );
      expect(c.stderr).toBe('');
      expect(c.status).toBe(0);
      expect((await verifyBackupAll({ backupDir: out })).findings).toEqual([]);
      const restored = await startCluster({ major, dataDir: out });
      try {
        expect(await digest(restored)).toEqual(atInc3);
      } finally {
        await restored.destroy();
      }
      const bad = await pgbb(['combine', full, inc2, inc3, '-o', join(dir, 'never')]);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(
        /^pgbb combine: error: backup at ".*inc1?" starts at LSN|^pgbb combine: error: backup at ".*full" starts at LSN/,
      );
    });

    it('with summarize_wal off the error says to turn it on', async () => {
      await reloadSettings(primary, { summarize_wal: 'off' });
      const target = join(await makeTempDir('nosum'), 'data');
      const err = await runBackup({
        connection: primary.connectionString(),
        checkpoint: 'fast',
        output: { format: 'plain', directory: target },
        incrementalManifest: join(inc2, 'backup_manifest'),
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
      expect((err as Error).message).toContain(
        'incremental backups require summarize_wal = on on the server: set it and reload, then take a new full backup',
      );
      await primary.sql('alter system reset summarize_wal');
      await primary.sql('select pg_reload_conf()');
    });
  });
}

if (majors.length === 0) {
  describe('incremental backups', () => {
    it('need PostgreSQL 17 or 18 in PGBB_TEST_MAJORS', () => {
      expect(testMajors().every((m) => m < 17)).toBe(true);
    });
  });
}
