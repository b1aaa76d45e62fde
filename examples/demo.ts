/**
 * `npm run demo`: the whole story on a fresh machine, in about a minute.
 * Starts an embedded PostgreSQL (the newest major), loads data, takes a backup through the
 * library with WAL streamed while another connection keeps committing, restores it into a new
 * directory, starts a server on it, compares the data, and cleans up.
 *
 * The servers are started by the project's test harness (it also handles running as root by
 * creating an unprivileged OS user, as PostgreSQL refuses to run as root).
 */
import { join } from 'node:path';
import { formatLsn, runBackup } from 'pg-basebackup';
import { startCluster, type Cluster } from '../test/harness/cluster.js';
import { makeTempDir } from '../test/harness/run-root.js';

const MAJOR = 18;
const steps: { what: string; ms: number }[] = [];

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  process.stdout.write(`• ${what} … `);
  const value = await fn();
  const ms = performance.now() - t0;
  steps.push({ what, ms });
  process.stdout.write(`done in ${(ms / 1000).toFixed(2)} s\n`);
  return value;
}

/** A digest of a table's whole content, to compare two servers row for row. */
async function digest(c: Cluster, table: string): Promise<{ rows: number; md5: string }> {
  const [r] = await c.sql<{ rows: string; md5: string }>(
    `select count(*) as rows, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as md5 from ${table} t`,
  );
  return { rows: Number(r!.rows), md5: r!.md5 };
}

let primary: Cluster | undefined;
let restored: Cluster | undefined;
try {
  primary = await step(`start PostgreSQL ${MAJOR} (embedded, data checksums, wal_level=replica)`, () =>
    startCluster({ major: MAJOR, ssl: false }),
  );
  await step('load 200,000 accounts and 1,000 branches', async () => {
    await primary!.sql('create table branches(id int primary key, name text, balance bigint)');
    await primary!.sql('create table accounts(id int primary key, branch int references branches, balance bigint, note text)');
    await primary!.sql(`insert into branches select g, 'branch ' || g, 0 from generate_series(1, 1000) g`);
    await primary!.sql(`insert into accounts select g, 1 + g % 1000, g * 7 % 10007, md5(g::text) from generate_series(1, 200000) g`);
    await primary!.sql('create table ticks(id bigserial primary key, at timestamptz default clock_timestamp())');
    await primary!.sql('checkpoint');
  });

  // Another connection keeps committing during the backup, as production does.
  let writing = true;
  const writer = (async () => {
    let n = 0;
    while (writing) {
      await primary!.sql('insert into ticks default values');
      n++;
    }
    return n;
  })();

  const target = join(await makeTempDir('demo'), 'restored');
  const result = await step('back up with pg-basebackup (plain format, WAL streamed, fast checkpoint)', () =>
    runBackup({
      connection: primary!.connectionString(),
      checkpoint: 'fast',
      output: { format: 'plain', directory: target },
    }),
  );
  writing = false;
  const committedDuringRun = await writer;
  const before = { accounts: await digest(primary, 'accounts'), branches: await digest(primary, 'branches') };
  const ticksOnPrimary = (await digest(primary, 'ticks')).rows;

  restored = await step('start a server on the restored directory (crash recovery replays the streamed WAL)', () =>
    startCluster({ major: MAJOR, dataDir: target }),
  );
  const after = { accounts: await digest(restored, 'accounts'), branches: await digest(restored, 'branches') };
  const ticksRestored = (await digest(restored, 'ticks')).rows;

  const same = before.accounts.md5 === after.accounts.md5 && before.branches.md5 === after.branches.md5;
  console.log('');
  console.log(
    `backup: WAL ${formatLsn(result.startLsn)} → ${formatLsn(result.endLsn)} on timeline ${result.endTimeline}, ` +
      `${(result.stats.totalBytes / 1048576).toFixed(1)} MiB of data`,
  );
  console.log(`accounts: ${after.accounts.rows} rows, ${same ? 'identical' : 'DIFFERENT'} to the primary (md5 ${after.accounts.md5})`);
  console.log(
    `ticks committed during the backup: ${committedDuringRun}; restored: ${ticksRestored} ` +
      `(the restored copy holds what was committed before the backup ended; the primary now has ${ticksOnPrimary})`,
  );
  console.log('');
  for (const s of steps) console.log(`${(s.ms / 1000).toFixed(2).padStart(7)} s  ${s.what}`);
  if (!same || ticksRestored > ticksOnPrimary || ticksRestored === 0) {
    console.error('demo: the restored data does not match');
    process.exitCode = 1;
  }
} catch (err) {
  console.error('demo failed:', err);
  process.exitCode = 1;
} finally {
  await restored?.destroy();
  await primary?.destroy();
}
