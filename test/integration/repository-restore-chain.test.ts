// An incremental chain (PostgreSQL 17+: full → incremental → incremental) restored in place from a
// local-directory repository and from an S3 copy of it (Swift, ranged GETs): between the backups rows are
// updated, deleted and added, a table shrinks (DELETE then VACUUM truncates it; the newest incremental
// cuts another, the middle one cuts a table the newest extends again), a table is dropped, a table in a
// tablespace changes. The restored data directory is byte for byte what combineBackups makes of the same
// chain extracted locally (all but postgresql.auto.conf, which restore writes), no scratch directory ever
// appears beside it, and the server it starts holds the rows of the newest backup. An abort after the full
// backup was applied, and a damaged incremental object, leave no data directory behind.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { combineBackups } from '../../src/combine/combine.js';
import { readIncrementalHeader } from '../../src/combine/files.js';
import { backupToRepository } from '../../src/repository/backup.js';
import { openRepository, type Repository } from '../../src/repository/repository.js';
import { restoreFromRepository } from '../../src/repository/restore.js';
import { makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';
import { repositoryTarget, swiftBucketForFile, type RepositoryTarget } from '../harness/repositories.js';
import { trustTcp } from '../harness/suite.js';
import { directoryDigests, treeDifferences } from '../harness/tree.js';

const majors = testMajors().filter((m) => m >= 17);
const TIMEOUT_MS = 300_000;
const s3 = swiftBucketForFile('pgbb-restore-chain');

/** What the newest backup holds, as rows: one line per table, with a digest of its rows. */
const SNAPSHOT = `
  SELECT 'kept' AS t, count(*)::text AS n, md5(coalesce(string_agg(id::text || ':' || v, ',' ORDER BY id), '')) AS h FROM kept
  UNION ALL SELECT 'shrinks', count(*)::text, md5(coalesce(string_agg(id::text || ':' || pad, ',' ORDER BY id), '')) FROM shrinks
  UNION ALL SELECT 'spaced', count(*)::text, md5(coalesce(string_agg(id::text || ':' || v, ',' ORDER BY id), '')) FROM spaced
  UNION ALL SELECT 'tail', count(*)::text, md5(coalesce(string_agg(id::text || ':' || pad, ',' ORDER BY id), '')) FROM tail
  UNION ALL SELECT 'grows', count(*)::text, md5(coalesce(string_agg(id::text || ':' || pad, ',' ORDER BY id), '')) FROM grows
  UNION ALL SELECT 'dropped', (to_regclass('dropped') IS NULL)::text, '' ORDER BY 1`;

/** The chain extracted from the repository's files with tar, as a user would before `pgbb combine`. */
function extractLocally(repoDir: string, id: string, into: string): void {
  const objects = join(repoDir, 'backups', id);
  mkdirSync(into, { recursive: true });
  const names = readdirSync(objects);
  const base = names.find((n) => n.startsWith('base.tar'))!;
  execFileSync('tar', ['-xf', join(objects, base), '-C', into]);
  for (const n of names) {
    const oid = /^(\d+)\.tar/.exec(n)?.[1];
    if (oid === undefined) continue;
    // The base archive's link points at the server's tablespace: the backup's copy goes in its place.
    rmSync(join(into, 'pg_tblspc', oid), { force: true });
    mkdirSync(join(into, 'pg_tblspc', oid));
    execFileSync('tar', ['-xf', join(objects, n), '-C', join(into, 'pg_tblspc', oid)]);
  }
  const wal = names.find((n) => n.startsWith('pg_wal.tar'));
  if (wal) execFileSync('tar', ['-xf', join(objects, wal), '-C', join(into, 'pg_wal')]);
  cpSync(join(objects, 'backup_manifest'), join(into, 'backup_manifest'));
}

/** The middle of the largest member's body in an uncompressed tar (a byte of data, not of a header). */
function largestMemberBody(tar: Buffer): number {
  let best = { size: -1, at: 0 };
  for (let off = 0; off + 512 <= tar.length && tar[off] !== 0; ) {
    const size = Number.parseInt(
      tar
        .toString('latin1', off + 124, off + 136)
        .replace(/\0.*$/, '')
        .trim() || '0',
      8,
    );
    if (size > best.size) best = { size, at: off + 512 + Math.floor(size / 2) };
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return best.at;
}

describe.each(majors)('an incremental chain restored from a repository in place on PostgreSQL %i', (major) => {
  let c: Cluster;
  let repoDir: string;
  let tsOld: string;
  const ids: string[] = [];
  let expected: unknown[];
  /** tail's main fork, relative to the data directory. */
  let tailPath: string;
  const restored: Cluster[] = [];

  async function backup(incremental: boolean, compression: string): Promise<void> {
    await using repo = await openRepository(repoDir);
    const outcome = await backupToRepository(repo, {
      connection: trustTcp(c),
      checkpoint: 'fast',
      compression,
      ...(incremental ? { incrementalFrom: 'latest' as const } : {}),
    });
    if (outcome.skipped) throw new Error('not skipped');
    ids.push(outcome.record.id);
  }

  beforeAll(async () => {
    repoDir = join(await makeTempDir('chain-repo'), 'repo');
    tsOld = await makeTempDir('chain-ts-old');
    c = await startCluster({ major, ssl: false, walSegmentSizeMb: 1, conf: { summarize_wal: 'on', autovacuum: 'off' } });
    await c.sql(`CREATE TABLESPACE ts LOCATION '${tsOld}'`);
    await c.sql('CREATE TABLE kept (id int PRIMARY KEY, v text)');
    await c.sql("INSERT INTO kept SELECT g, 'v' || g FROM generate_series(1, 20000) g");
    await c.sql('CREATE TABLE shrinks (id int, pad text)');
    await c.sql("INSERT INTO shrinks SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g");
    await c.sql('CREATE TABLE dropped (id int)');
    await c.sql('INSERT INTO dropped SELECT generate_series(1, 5000)');
    await c.sql('CREATE TABLE spaced (id int, v text) TABLESPACE ts');
    await c.sql("INSERT INTO spaced SELECT g, 's' || g FROM generate_series(1, 5000) g");
    // Large tables the incrementals send block by block (frozen now, so that a later VACUUM touches
    // only the pages it empties): tail is cut by the newest backup, grows by the middle one and then
    // extended again.
    for (const t of ['tail', 'grows']) {
      await c.sql(`CREATE TABLE ${t} (id int, pad text)`);
      await c.sql(`INSERT INTO ${t} SELECT g, repeat('t', 200) FROM generate_series(1, 20000) g`);
      await c.sql(`VACUUM (FREEZE) ${t}`);
    }
    await backup(false, 'none');
    await c.sql("UPDATE kept SET v = v || '!' WHERE id % 7 = 0");
    await c.sql('DELETE FROM kept WHERE id % 11 = 0');
    await c.sql("INSERT INTO kept SELECT g, 'w' || g FROM generate_series(20001, 25000) g");
    // The trailing pages empty out and VACUUM truncates the relation: the incremental's truncation length.
    await c.sql('DELETE FROM shrinks WHERE id > 2000');
    await c.sql('VACUUM shrinks');
    await c.sql("UPDATE spaced SET v = v || '?' WHERE id % 3 = 0");
    await c.sql('DELETE FROM grows WHERE id > 15000');
    await c.sql('VACUUM grows');
    await backup(true, 'gzip');
    await c.sql('DROP TABLE dropped');
    await c.sql("INSERT INTO shrinks SELECT g, repeat('y', 100) FROM generate_series(30001, 31000) g");
    await c.sql('DELETE FROM spaced WHERE id > 4000');
    await c.sql('VACUUM spaced');
    await c.sql("UPDATE kept SET v = v || '#' WHERE id % 13 = 0");
    await c.sql('DELETE FROM tail WHERE id > 17000');
    await c.sql('VACUUM tail');
    await c.sql("INSERT INTO grows SELECT g, repeat('g', 300) FROM generate_series(40001, 41000) g");
    [{ path: tailPath }] = (await c.sql<{ path: string }>("SELECT pg_relation_filepath('tail') AS path")) as [{ path: string }];
    expected = await c.sql(SNAPSHOT);
    await backup(true, 'none');
  }, TIMEOUT_MS);

  afterAll(async () => {
    await Promise.allSettled([c, ...restored].filter(Boolean).map((x) => x.destroy()));
  });

  /** combineBackups of the chain, extracted from the local repository's files with tar (made once). */
  let reference: Promise<Map<string, string>> | undefined;
  function combinedTree(): Promise<Map<string, string>> {
    reference ??= (async () => {
      const ref = await makeTempDir('chain-combined');
      for (const id of ids) extractLocally(repoDir, id, join(ref, id));
      // The newest backup sends tail incrementally, cut shorter than the full backup's copy.
      const tailInc = join(
        ref,
        ids[2]!,
        tailPath.replace(/[^/]+$/, (n) => `INCREMENTAL.${n}`),
      );
      const { header } = await readIncrementalHeader(tailInc);
      expect(header.truncationBlockLength).toBeLessThan(statSync(join(ref, ids[0]!, tailPath)).size / 8192);
      const combined = join(ref, 'combined');
      await combineBackups({ backups: ids.map((id) => join(ref, id)), output: combined, noSync: true });
      // restore writes postgresql.auto.conf and its own tablespace links; combine writes a manifest.
      return directoryDigests(combined, new Set(['postgresql.auto.conf', 'backup_manifest', 'tablespace_map']));
    })();
    return reference;
  }

  /** The repository to restore from: the local one, or an S3 copy of it (ranged GETs for the large archives). */
  async function openSource(kind: 'local' | 's3'): Promise<{ repo: Repository; address: string }> {
    if (kind === 'local') return { repo: await openRepository(repoDir), address: repoDir };
    s3Repo ??= (async () => {
      const target = await repositoryTarget('s3', 'chain', s3);
      await using repo = await target.open();
      for (const e of readdirSync(repoDir, { recursive: true, withFileTypes: true })) {
        if (e.isFile() && !e.name.startsWith('.pgbb-'))
          await repo.storage.put(relative(repoDir, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name)));
      }
      return target;
    })();
    const target = await s3Repo;
    return { repo: await target.open(), address: target.address };
  }
  let s3Repo: Promise<RepositoryTarget> | undefined;

  it.each(['local', 's3'] as const)(
    '%s: equals combineBackups of the chain byte for byte, without a scratch directory, and starts with the newest rows',
    async (kind) => {
      const parent = await makeTempDir('chain-restored');
      const dataDir = join(parent, 'data');
      const tsNew = join(await makeTempDir('chain-ts-new'), 'ts');
      const source = await openSource(kind);
      await using repo = source.repo;
      const appeared = new Set<string>();
      const watcher = watch(parent, (_event, name) => {
        if (name) appeared.add(name.toString());
      });
      try {
        const r = await restoreFromRepository(repo, {
          dataDir,
          tablespaceMapping: new Map([[tsOld, tsNew]]),
          repositoryAddress: source.address,
        });
        expect(r.chain).toEqual(ids);
      } finally {
        watcher.close();
      }
      expect([...appeared]).toEqual(['data']);
      expect(readdirSync(parent)).toEqual(['data']);

      const mine = directoryDigests(dataDir, new Set(['postgresql.auto.conf']));
      const theirs = await combinedTree();
      expect(treeDifferences(mine, theirs)).toEqual([]);
      // What the chain changed is there: incremental files were rebuilt, and the dropped table is gone.
      expect([...mine.keys()].some((k) => k.includes('INCREMENTAL.'))).toBe(false);
      expect(readFileSync(join(dataDir, 'backup_label'), 'latin1')).not.toContain('INCREMENTAL FROM');
      for (const k of mine.keys()) {
        const st = lstatSync(join(dataDir, k));
        if (!st.isSymbolicLink()) expect((st.mode & 0o777).toString(8), k).toBe(st.isDirectory() ? '700' : '600');
      }

      const server = await startCluster({ major, dataDir, conf: { archive_mode: 'off' }, chownPaths: [tsNew] });
      restored.push(server);
      expect(await server.sql(SNAPSHOT)).toEqual(expected);
    },
    TIMEOUT_MS,
  );

  it(
    'an abort after the full backup was applied leaves no data directory and no tablespace directory',
    async () => {
      const parent = await makeTempDir('chain-aborted');
      const dataDir = join(parent, 'data');
      const tsNew = join(await makeTempDir('chain-ts-aborted'), 'ts');
      const ac = new AbortController();
      let fullApplied = false;
      await using repo = await openRepository(repoDir);
      const open = repo.openBackupObject.bind(repo);
      repo.openBackupObject = async (id, name, options) => {
        // The first incremental's archive is opened once to read its label (nothing written yet), then
        // to apply it: abort there, with the full backup in the data directory.
        if (id === ids[1] && existsSync(join(dataDir, 'global', 'pg_control'))) {
          fullApplied = true;
          ac.abort();
        }
        return open(id, name, options);
      };
      await expect(
        restoreFromRepository(repo, { dataDir, tablespaceMapping: new Map([[tsOld, tsNew]]), signal: ac.signal, noSync: true }),
      ).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
      expect(fullApplied).toBe(true);
      expect(readdirSync(parent)).toEqual([]);
      expect(existsSync(tsNew)).toBe(false);
    },
    TIMEOUT_MS,
  );

  it(
    'a damaged incremental object is refused (ERR_PGBB_VERIFY) and leaves no data directory',
    async () => {
      // A copy of the repository, so that the damage stays in this test.
      const copy = join(await makeTempDir('chain-repo-damaged'), 'repo');
      cpSync(repoDir, copy, { recursive: true });
      const objects = join(copy, 'backups', ids[2]!);
      const base = join(objects, readdirSync(objects).find((n) => n.startsWith('base.tar'))!);
      const bytes = readFileSync(base);
      bytes[largestMemberBody(bytes)]! ^= 0xff;
      writeFileSync(base, bytes);
      const parent = await makeTempDir('chain-damaged');
      const dataDir = join(parent, 'data');
      const tsNew = join(await makeTempDir('chain-ts-damaged'), 'ts');
      await using repo = await openRepository(copy);
      await expect(
        restoreFromRepository(repo, { dataDir, tablespaceMapping: new Map([[tsOld, tsNew]]), noSync: true }),
      ).rejects.toMatchObject({ code: 'ERR_PGBB_VERIFY' });
      expect(readdirSync(parent)).toEqual([]);
      expect(existsSync(tsNew)).toBe(false);
    },
    TIMEOUT_MS,
  );
});
