// Shared pieces of the backup acceptance tests: a committing writer that remembers where
// each commit landed in the WAL, restore helpers (GNU tar extraction, tablespace_map
// rewriting), and the checks every restored copy must pass.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { expect, vi } from 'vitest';
import { parseLsn } from '../../src/index.js';
import { chownToServer, type Cluster } from '../harness/index.js';

export const exec = promisify(execFile);

/** One committed row of the writer: its id and a WAL position at or after its commit record. */
export interface Committed {
  id: number;
  lsnAfterCommit: bigint;
}

/**
 * At most `n` bodies at once: tests of a `describe.concurrent` file wait their turn, so the
 * servers, backups and restores of one file do not swamp a two-core CI runner.
 */
export function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Creates an empty writer table (so concurrent tests each have their own single writer). */
export async function createTicks(c: Cluster, table: string): Promise<void> {
  await c.sql(`create table ${table}(id bigserial primary key, at timestamptz not null)`);
}

/**
 * Keeps inserting rows into `table` in single-row transactions (autocommit) over its own
 * connection until stopped. After each commit it reads pg_current_wal_lsn(): a commit with
 * synchronous_commit on has been flushed, so that position is at or after the commit record.
 * `started` resolves once `minRows` rows are in, so a backup started then overlaps real traffic.
 */
export function startWriter(c: Cluster, table: string, minRows = 5): { started: Promise<void>; stop: () => Promise<Committed[]> } {
  let running = true;
  const done: Committed[] = [];
  let markStarted!: () => void;
  const started = new Promise<void>((res) => {
    markStarted = res;
  });
  const loop = (async () => {
    const client = new pg.Client({ host: c.socketDir, port: c.port, user: c.superuser, database: 'postgres' });
    // A server that goes away (a failed test's cluster destroyed) surfaces through the query.
    client.on('error', () => undefined);
    await client.connect();
    try {
      while (running) {
        const ins = await client.query<{ id: string }>(`insert into ${table}(at) values (clock_timestamp()) returning id`);
        const pos = await client.query<{ l: string }>('select pg_current_wal_lsn()::text l');
        done.push({ id: Number(ins.rows[0]!.id), lsnAfterCommit: parseLsn(pos.rows[0]!.l) });
        if (done.length === minRows) markStarted();
        // A steady trickle is all the checks need; a tight loop would only compete for the
        // CI's two cores with the servers and the backup itself.
        await new Promise((res) => setTimeout(res, 2));
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return {
    started: Promise.race([
      started,
      loop.then(() => {
        throw new Error('the writer stopped before it started');
      }),
    ]),
    stop: async () => {
      running = false;
      await loop;
      return done;
    },
  };
}

/** A digest of the rows up to `maxId`, computed the same way on both servers. */
const digestSql = (table: string) => `select count(*)::int n, coalesce(max(id), 0)::int mx,
  md5(coalesce(string_agg(id || '@' || at::text, ',' order by id), '')) d from ${table} where id <= $1`;

/**
 * The restored copy holds exactly the committed rows of a prefix of the writer's history:
 * every row whose commit preceded `endLsn` is there, rows form a gapless prefix (one writer,
 * so commit order is id order), and they are byte-for-byte the primary's rows (no row that
 * was never committed, no torn row). Returns the number of writer rows restored.
 */
export async function expectCommittedPrefix(
  restored: Cluster,
  primary: Cluster,
  table: string,
  committed: Committed[],
  endLsn: bigint,
): Promise<number> {
  const [all] = await restored.sql<{ n: number; mx: number }>(`select count(*)::int n, coalesce(max(id), 0)::int mx from ${table}`);
  const mustHave = committed.filter((c) => c.lsnAfterCommit <= endLsn);
  // The backup must have been taken while the writer was committing.
  expect(mustHave.length).toBeGreaterThan(0);
  expect(all!.mx).toBeGreaterThanOrEqual(mustHave[mustHave.length - 1]!.id);
  // A gapless prefix: as many rows as the highest id (ids start at 1; no rollbacks).
  expect(all!.n).toBe(all!.mx);
  // Nothing the writer did not commit.
  expect(all!.mx).toBeLessThanOrEqual(committed[committed.length - 1]!.id);
  const [mine] = await restored.sql<{ n: number; d: string }>(digestSql(table), [all!.mx]);
  const [theirs] = await primary.sql<{ n: number; d: string }>(digestSql(table), [all!.mx]);
  expect(mine).toEqual(theirs);
  return all!.n;
}

/** A restored server finished recovery: consistent, out of recovery, and its log says so. */
export async function expectRecovered(restored: Cluster): Promise<void> {
  // pg_ctl -w returns once connections are accepted, which archive recovery allows (hot
  // standby) before it has replayed the archive and promoted.
  await vi.waitFor(
    async () => {
      const [r] = await restored.sql<{ rec: boolean }>('select pg_is_in_recovery() rec');
      expect(r!.rec, `the restored server is still in recovery:\n${restored.logText()}`).toBe(false);
    },
    { timeout: 30_000, interval: 100 },
  );
  expect(restored.logText()).toMatch(/consistent recovery state reached/);
}

/** GNU tar -x into `dir` (created). */
export async function untar(file: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await exec('tar', ['-xf', file, '-C', dir]);
}

/** GNU tar's member list of an archive, sorted, directory slashes and leading ./ removed. */
export async function tarMembers(file: string): Promise<string[]> {
  const { stdout } = await exec('tar', ['-tf', file], { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((n) => n.replace(/^\.\//, '').replace(/\/$/, ''))
    .sort();
}

/**
 * Extract a tar-format backup (base.tar, <oid>.tar, pg_wal.tar when present) into a fresh
 * data directory, each tablespace into `tsRoot/<oid>`, tablespace_map rewritten to point there.
 */
export async function restoreTar(backupDir: string, dataDir: string, tsRoot: string): Promise<string[]> {
  await untar(join(backupDir, 'base.tar'), dataDir);
  const names = await readdir(backupDir);
  if (names.includes('pg_wal.tar')) await untar(join(backupDir, 'pg_wal.tar'), join(dataDir, 'pg_wal'));
  const tsDirs: string[] = [];
  const mapPath = join(dataDir, 'tablespace_map');
  const lines: string[] = [];
  for (const name of names) {
    const m = /^(\d+)\.tar$/.exec(name);
    if (!m) continue;
    const dir = join(tsRoot, m[1]!);
    await untar(join(backupDir, name), dir);
    await chownToServer(dir, { recursive: true });
    tsDirs.push(dir);
    lines.push(`${m[1]} ${dir}`);
  }
  if (existsSync(mapPath)) {
    const old = (await readFile(mapPath, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[0])
      .sort();
    expect(old).toEqual(lines.map((l) => l.split(' ')[0]).sort());
    await writeFile(mapPath, lines.map((l) => `${l}\n`).join(''));
  }
  return tsDirs;
}

/** Every path under `dir` (relative, sorted); directories included, symlinks not followed. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      out.push(p);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk('');
  return out.sort();
}

/** Replication slots on a server (waits up to 10 s for walsenders that are exiting to let go of temporary ones). */
export async function slotsAfterSettling(c: Cluster): Promise<string[]> {
  const slots = async () =>
    (await c.sql<{ slot_name: string }>('select slot_name from pg_replication_slots order by 1')).map((r) => r.slot_name);
  // What is still there after 10 s is the answer the caller checks, not a failure here.
  await vi.waitFor(async () => expect(await slots()).toEqual([]), { timeout: 10_000, interval: 100 }).catch(() => undefined);
  return slots();
}

/**
 * Sets server parameters with ALTER SYSTEM and reloads, resolving once a new session (a backup's
 * walsender is one) sees every value: pg_reload_conf() only signals the postmaster.
 */
export async function reloadSettings(c: Cluster, settings: Record<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(settings)) await c.sql(`alter system set ${name} = '${value}'`);
  await c.sql('select pg_reload_conf()');
  await vi.waitFor(
    async () => {
      const fresh = new pg.Client({ connectionString: c.connectionUri() });
      await fresh.connect();
      try {
        for (const [name, value] of Object.entries(settings)) {
          const { rows } = await fresh.query<{ v: string }>('select current_setting($1) v', [name]);
          expect(rows[0]!.v, name).toBe(value);
        }
      } finally {
        await fresh.end();
      }
    },
    { timeout: 10_000, interval: 50 },
  );
}

/** Nothing that looks like a finished backup: the directory is gone or empty. */
export async function expectNoBackupLeft(dir: string, existedBefore: boolean): Promise<void> {
  if (!existedBefore) {
    expect(existsSync(dir)).toBe(false);
    return;
  }
  expect(existsSync(dir)).toBe(true);
  expect(await readdir(dir)).toEqual([]);
}
