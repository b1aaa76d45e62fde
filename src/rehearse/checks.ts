/**
 * The checks a rehearsal runs on the restored server, each over SQL sessions on its private socket:
 * every table read in full (heap and TOAST), amcheck where the extension can be created, page
 * checksums (the server verifies each page it reads when the cluster has them), and the user's checks.
 * Each returns its problems instead of throwing on the first, so that the report names them all.
 * @module
 */
import { SqlSession } from '../connection/sql-session.js';
import type { ConnectionOptions } from '../connection/types.js';
import { PgBackupError } from '../errors.js';

/** At most this many problems are kept per check. */
const MAX_PROBLEMS = 50;

/** How the checks reach the server. */
export interface CheckTarget {
  connection: ConnectionOptions;
  signal: AbortSignal;
  /** The server's major. */
  major: number;
}

/** A check's findings. */
export interface CheckOutcome {
  status: 'passed' | 'failed' | 'skipped';
  detail: string;
  problems: string[];
}

function message(err: unknown): string {
  if (err instanceof PgBackupError) return err.message.split('\n')[0]!;
  return err instanceof Error ? err.message : String(err);
}

/** A SQL literal. */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

async function withSession<T>(t: CheckTarget, database: string, fn: (s: SqlSession) => Promise<T>): Promise<T> {
  const s = await SqlSession.open({ ...t.connection, signal: t.signal }, database);
  try {
    return await fn(s);
  } finally {
    await s.close().catch(() => undefined);
  }
}

async function rows(s: SqlSession, sql: string, signal: AbortSignal): Promise<(string | null)[][]> {
  const results = await s.query(sql, { signal });
  return results.at(-1)?.rows ?? [];
}

/** The databases that allow connections. */
export async function listDatabases(t: CheckTarget): Promise<string[]> {
  return withSession(t, 'postgres', async (s) =>
    (await rows(s, 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname', t.signal)).map((r) => r[0]!),
  );
}

/** Relations of a database worth reading: tables and materialized views, permanent (unlogged ones are empty after recovery). */
const TABLES_SQL = `SELECT c.oid::regclass::text FROM pg_class c
  WHERE c.relkind IN ('r', 'm') AND c.relpersistence = 'p' ORDER BY c.oid`;

/**
 * Read every table in full: each row cast to text, which detoasts every column, so damaged heap and
 * TOAST pages both fail. The sum is computed by the server; no row comes to us.
 */
export async function readAllTables(t: CheckTarget, databases: readonly string[]): Promise<CheckOutcome> {
  const problems: string[] = [];
  let tables = 0;
  for (const db of databases) {
    await withSession(t, db, async (s) => {
      for (const [name] of await rows(s, TABLES_SQL, t.signal)) {
        tables++;
        try {
          await s.query(`SELECT sum(length(x::text)) FROM ${name!} AS x`, { signal: t.signal });
        } catch (err) {
          t.signal.throwIfAborted();
          if (problems.length < MAX_PROBLEMS) problems.push(`${db}: ${name!}: ${message(err)}`);
        }
      }
    });
  }
  return {
    status: problems.length === 0 ? 'passed' : 'failed',
    detail: `${tables} tables read in ${databases.length} databases${problems.length ? `, ${problems.length} unreadable` : ''}`,
    problems,
  };
}

/**
 * amcheck in every database where `CREATE EXTENSION amcheck` works: `verify_heapam` on every table
 * (14+), `bt_index_check(index, heapallindexed => true)` on every valid B-tree index.
 */
export async function runAmcheck(t: CheckTarget, databases: readonly string[]): Promise<CheckOutcome> {
  const problems: string[] = [];
  const unavailable: string[] = [];
  let heaps = 0;
  let indexes = 0;
  for (const db of databases) {
    await withSession(t, db, async (s) => {
      try {
        await s.query('CREATE EXTENSION IF NOT EXISTS amcheck', { signal: t.signal });
      } catch (err) {
        t.signal.throwIfAborted();
        unavailable.push(`${db} (${message(err)})`);
        return;
      }
      const schema =
        (
          await rows(
            s,
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'",
            t.signal,
          )
        )[0]?.[0] ?? 'public';
      const fn = (name: string) => `${quoteIdent(schema)}.${name}`;
      if (t.major >= 14) {
        const tables = await rows(
          s,
          `SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence = 'p' ORDER BY c.oid`,
          t.signal,
        );
        for (const [name] of tables) {
          heaps++;
          try {
            const found = await rows(
              s,
              `SELECT blkno, offnum, msg FROM ${fn('verify_heapam')}(${literal(name!)}::regclass) LIMIT 10`,
              t.signal,
            );
            for (const [blk, off, msg] of found) {
              if (problems.length < MAX_PROBLEMS) problems.push(`${db}: ${name!} block ${blk} offset ${off ?? '-'}: ${msg}`);
            }
          } catch (err) {
            t.signal.throwIfAborted();
            if (problems.length < MAX_PROBLEMS) problems.push(`${db}: ${name!}: ${message(err)}`);
          }
        }
      }
      const btrees = await rows(
        s,
        `SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
          WHERE a.amname = 'btree' AND c.relpersistence = 'p' AND i.indisvalid AND i.indisready ORDER BY c.oid`,
        t.signal,
      );
      for (const [name] of btrees) {
        indexes++;
        try {
          await s.query(`SELECT ${fn('bt_index_check')}(${literal(name!)}::regclass, true)`, { signal: t.signal });
        } catch (err) {
          t.signal.throwIfAborted();
          if (problems.length < MAX_PROBLEMS) problems.push(`${db}: index ${name!}: ${message(err)}`);
        }
      }
    });
  }
  if (unavailable.length === databases.length) {
    return { status: 'skipped', detail: `amcheck is not available: ${unavailable.join('; ')}`, problems: [] };
  }
  const parts = [`${t.major >= 14 ? `${heaps} tables (verify_heapam), ` : ''}${indexes} B-tree indexes checked`];
  if (unavailable.length > 0) parts.push(`not in ${unavailable.join('; ')}`);
  if (problems.length > 0) parts.push(`${problems.length} problems`);
  return { status: problems.length === 0 ? 'passed' : 'failed', detail: parts.join(', '), problems };
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** Whether the cluster has data checksums. */
export async function hasDataChecksums(t: CheckTarget): Promise<boolean> {
  return withSession(t, 'postgres', async (s) => (await rows(s, 'SHOW data_checksums', t.signal))[0]?.[0] === 'on');
}

/**
 * The checksum failures the server counted (`pg_stat_database.checksum_failures`): with checksums on,
 * every page the reads and amcheck went through was verified as it was read.
 */
export async function serverChecksumFailures(t: CheckTarget): Promise<CheckOutcome> {
  return withSession(t, 'postgres', async (s) => {
    // Statistics of the other sessions reach shared memory when they end; this makes ours current.
    if (t.major >= 15) await s.query('SELECT pg_stat_clear_snapshot()', { signal: t.signal });
    const found = await rows(
      s,
      "SELECT coalesce(datname, '(shared)'), checksum_failures FROM pg_stat_database WHERE checksum_failures > 0",
      t.signal,
    );
    const problems = found.map(([db, n]) => `${db}: ${n} checksum failures`);
    return {
      status: problems.length === 0 ? 'passed' : 'failed',
      detail:
        problems.length === 0
          ? 'data checksums on: no failure while every table and B-tree index was read'
          : `data checksums on: ${problems.join(', ')}`,
      problems,
    };
  });
}

/** The user's checks: each statement must return exactly one row holding true. */
export async function runSqlChecks(t: CheckTarget, database: string, statements: readonly string[]): Promise<CheckOutcome> {
  const problems: string[] = [];
  await withSession(t, database, async (s) => {
    for (const sql of statements) {
      const short = sql.replace(/\s+/g, ' ').slice(0, 120);
      try {
        const result = await rows(s, sql, t.signal);
        const value = result.length === 1 && result[0]!.length === 1 ? result[0]![0] : undefined;
        if (value !== 't') problems.push(`${short}: returned ${JSON.stringify(result.slice(0, 3))}, not a single true`);
      } catch (err) {
        t.signal.throwIfAborted();
        problems.push(`${short}: ${message(err)}`);
      }
    }
  });
  return {
    status: problems.length === 0 ? 'passed' : 'failed',
    detail: `${statements.length - problems.length} of ${statements.length} checks returned true`,
    problems,
  };
}
