// The benchmark dataset: half pgbench tables (compressible rows, many small pages, indexes) and half
// random bytes (incompressible, so that compression is measured on data that does not shrink), built
// to a chosen total size and grown in place to the next size.
//
// Random bytes are made here (randomFillSync) and loaded by the server itself with
// pg_read_binary_file(path, offset, length) from a file the server user can read: no COPY client is
// needed and nothing is converted to text. The column is STORAGE EXTERNAL so that TOAST does not try
// pglz on data that cannot shrink.
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The superuser side of a cluster the dataset is written into. */
export interface DatasetTarget {
  /** Run SQL as the superuser. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Arguments that point pgbench at the cluster as the superuser (`-h`, `-p`, `-U`). */
  pgbenchConn: string[];
  /** pgbench (any recent major can initialise any server). */
  pgbench: string;
  /** A directory the server OS user can read, for the random-bytes file. */
  scratchDir: string;
}

const MB = 2 ** 20;
// pgbench -i: 100,000 pgbench_accounts rows per scale unit, about 15 MiB with the primary key.
const BYTES_PER_SCALE = 15.4 * MB;
const BATCH_BYTES = 64 * MB;
const ROW_BYTES = MB;

/** Sum of pg_database_size over all databases: what a base backup carries, minus a few MB of config and WAL. */
export async function databaseBytes(t: Pick<DatasetTarget, 'sql'>): Promise<number> {
  const [r] = await t.sql<{ n: string }>('SELECT sum(pg_database_size(oid))::bigint AS n FROM pg_database');
  return Number(r?.n ?? 0);
}

async function relBytes(t: DatasetTarget, pattern: string): Promise<number> {
  const [r] = await t.sql<{ n: string | null }>(
    `SELECT sum(pg_total_relation_size(c.oid))::bigint AS n FROM pg_class c
     WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND c.relname LIKE $1`,
    [pattern],
  );
  return Number(r?.n ?? 0);
}

function run(program: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      err += s;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${program} ${args.join(' ')} exited with ${String(code)}: ${err}`)),
    );
  });
}

/**
 * The dataset's shape. `mixed` (the default): half pgbench tables, half random bytes in 1 MB rows stored
 * out of line (TOAST). `issue11`: the cluster issue 11's table was measured on, whatever the size asked:
 * pgbench at scale 50 plus 200,000 rows of 1 KB random bytes stored in the heap (978 MB in all).
 */
export type DatasetShape = 'mixed' | 'issue11';

/** Issue 11's cluster: pgbench scale and rows of random bytes, with their size. */
const ISSUE11 = { scale: 50, rows: 200_000, rowBytes: 1024 } as const;

/** Builds the `issue11` shape once (a cluster that has it is left as it is); returns the data's size. */
async function issue11Dataset(t: DatasetTarget, log: (line: string) => void): Promise<number> {
  const [has] = await t.sql<{ n: string }>(`SELECT count(*) AS n FROM pg_class WHERE relname = 'pgbench_accounts'`);
  if (Number(has?.n) === 0) {
    const t0 = performance.now();
    await run(t.pgbench, ['-i', '-q', '-s', String(ISSUE11.scale), ...t.pgbenchConn, 'postgres']);
    log(`pgbench -i -s ${ISSUE11.scale} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Rows this small stay in the heap (below the TOAST threshold), as in the issue's cluster.
    await t.sql('CREATE TABLE bench_random_rows (id bigserial PRIMARY KEY, b bytea NOT NULL)');
    await loadRandomRows(t, 'bench_random_rows', ISSUE11.rows * ISSUE11.rowBytes, ISSUE11.rowBytes);
    log(`${ISSUE11.rows} rows of ${ISSUE11.rowBytes} random bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  await t.sql('CHECKPOINT');
  return databaseBytes(t);
}

/** Loads `total` random bytes into `table` (id, b) as rows of `rowBytes`, through a file the server reads. */
async function loadRandomRows(t: DatasetTarget, table: string, total: number, rowBytes: number): Promise<void> {
  const file = join(t.scratchDir, 'random.bin');
  const buf = Buffer.allocUnsafe(BATCH_BYTES);
  for (let loaded = 0; loaded < total; ) {
    const bytes = Math.min(BATCH_BYTES, total - loaded);
    randomFillSync(buf, 0, bytes);
    await writeFile(file, buf.subarray(0, bytes));
    await chmod(file, 0o644);
    await t.sql(
      `INSERT INTO ${table} (b) SELECT pg_read_binary_file($1, o * ${rowBytes}::bigint, ${rowBytes}::bigint)
      FROM generate_series(0, ${Math.floor(bytes / rowBytes) - 1}) AS o`,
      [file],
    );
    loaded += bytes;
  }
  await rm(file, { force: true });
}

/**
 * Grow the cluster's data to about `targetBytes` (never shrinks it): pgbench tables (initialised once,
 * then copies of pgbench_accounts) up to half, random blobs for the rest. Ends with a CHECKPOINT so
 * every run starts from the same state. `log` gets one line per step.
 */
export async function growDataset(
  t: DatasetTarget,
  targetBytes: number,
  log: (line: string) => void,
  shape: DatasetShape = 'mixed',
): Promise<number> {
  if (shape === 'issue11') return issue11Dataset(t, log);
  const half = targetBytes / 2;
  const [has] = await t.sql<{ n: string }>(`SELECT count(*) AS n FROM pg_class WHERE relname = 'pgbench_accounts'`);
  if (Number(has?.n) === 0) {
    const scale = Math.max(1, Math.round(half / BYTES_PER_SCALE));
    const t0 = performance.now();
    await run(t.pgbench, ['-i', '-q', '-s', String(scale), ...t.pgbenchConn, 'postgres']);
    log(`pgbench -i -s ${scale} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  let compressible = await relBytes(t, 'pgbench%');
  const accounts = await relBytes(t, 'pgbench_accounts');
  let copies = 0;
  while (compressible + accounts / 2 < half && accounts > 0) {
    const [n] = await t.sql<{ n: string }>(`SELECT count(*) AS n FROM pg_class WHERE relname LIKE 'pgbench_accounts_copy%'`);
    await t.sql(`CREATE TABLE pgbench_accounts_copy${Number(n?.n ?? 0) + 1} AS SELECT * FROM pgbench_accounts`);
    compressible = await relBytes(t, 'pgbench%');
    copies++;
  }
  if (copies > 0) log(`${copies} copies of pgbench_accounts`);

  await t.sql('CREATE TABLE IF NOT EXISTS bench_random (id bigserial PRIMARY KEY, b bytea NOT NULL)');
  await t.sql('ALTER TABLE bench_random ALTER COLUMN b SET STORAGE EXTERNAL');
  const file = join(t.scratchDir, 'random.bin');
  const buf = Buffer.allocUnsafe(BATCH_BYTES);
  let total = await databaseBytes(t);
  const t0 = performance.now();
  let loaded = 0;
  while (total < targetBytes - BATCH_BYTES / 2) {
    const bytes = Math.min(BATCH_BYTES, Math.ceil((targetBytes - total) / ROW_BYTES) * ROW_BYTES);
    randomFillSync(buf, 0, bytes);
    await writeFile(file, buf.subarray(0, bytes));
    await chmod(file, 0o644);
    await t.sql(
      `INSERT INTO bench_random (b) SELECT pg_read_binary_file($1, o * ${ROW_BYTES}::bigint, ${ROW_BYTES}::bigint)
      FROM generate_series(0, ${bytes / ROW_BYTES - 1}) AS o`,
      [file],
    );
    loaded += bytes;
    total = await databaseBytes(t);
  }
  await rm(file, { force: true });
  if (loaded > 0) log(`${(loaded / MB).toFixed(0)} MB of random bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await t.sql('CHECKPOINT');
  return databaseBytes(t);
}
