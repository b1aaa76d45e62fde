/**
 * `npm run demo`: the whole story on a fresh machine, in about a minute, through the package's public
 * entry points:
 *
 *  1. an embedded PostgreSQL (the newest major) with some data, and a backup repository in a local
 *     directory (`openRepository`);
 *  2. WAL archived continuously into the repository (`receiveWal` with the repository's WAL store, on a
 *     replication slot) while another connection keeps committing;
 *  3. a full backup into the repository (`backupToRepository`) while the rows are written; more rows, a
 *     WAL switch, and a wait until the archive holds them;
 *  4. a rehearsal (`rehearse`): the backup restored into a scratch directory, the archive replayed to its
 *     end, the server promoted and checked (every table read, amcheck, page checksums, and the demo's own
 *     SQL: the data equals the primary's); its report recorded in the repository (`recordRehearsal`);
 *  5. the repository's status as Nagios reads it (expected OK), and its Prometheus metrics;
 *  6. cleanup, also on failure. The exit code is 1 when any check fails.
 *
 * The server and the temporary directories come from the project's test harness. It also handles running
 * as root: PostgreSQL refuses root, so the harness runs it as an unprivileged OS user, and so does the
 * rehearsal (`runAs`), whose server reads the WAL archive through `pgbb restore-wal` as that user.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { formatLsn, parseLsn, receiveWal, type Lsn } from 'pg-basebackup';
import { recordRehearsal, rehearse, type RehearsalResult } from 'pg-basebackup/rehearse';
import {
  backupToRepository,
  openRepository,
  RepositoryWalStore,
  type BackupRecord,
  type Repository,
  type RepositoryWalArchive,
} from 'pg-basebackup/repository';
import { evaluateStatus, formatPrometheus, formatStatusReport, readRepositoryState, repositoryMetrics } from 'pg-basebackup/status';
import { startCluster, type Cluster } from '../test/harness/cluster.js';
import { chownToServer, serverIdentity, TEST_OS_USER } from '../test/harness/os-user.js';
import { pgbbForServer } from '../test/harness/pgbb-cli.js';
import { makeTempDir } from '../test/harness/run-root.js';

const MAJOR = 18;
const ACCOUNTS = 100_000;
const SLOT = 'demo_archiver';
/** How long the archive may take to hold the switched segment (it takes well under a second when idle). */
const ARCHIVE_WAIT_MS = 60_000;
/** One transfer: a row in `ticks`, and a balance changed, so that the check below sees replayed updates too. */
const TRANSFER = `with t as (insert into ticks default values returning id)
  update accounts set balance = balance + 1 where id = (select id from t) % ${ACCOUNTS} + 1`;
/** A digest of the accounts, computed the same way on the primary and on the rehearsal's server. */
const ACCOUNTS_MD5 = `select md5(string_agg(id || ':' || balance, ',' order by id)) from accounts`;

const steps: { what: string; ms: number }[] = [];
const failures: string[] = [];

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  console.log(`• ${what}`);
  const value = await fn();
  const ms = performance.now() - t0;
  steps.push({ what, ms });
  console.log(`  done in ${seconds(ms)}`);
  return value;
}

/** Prints a check's outcome; a failed one makes the demo exit 1. */
function check(ok: boolean, what: string): void {
  console.log(`  ${ok ? '✓' : '✗ FAILED:'} ${what}`);
  if (!ok) failures.push(what);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A connection committing transfers in a loop until told how many more to commit. */
function startWriter(c: Cluster) {
  let commits = 0;
  let limit = Number.POSITIVE_INFINITY;
  const done = (async () => {
    while (commits < limit) {
      await c.sql(TRANSFER);
      commits++;
    }
    return commits;
  })();
  done.catch(() => undefined); // reported by whoever awaits stopAfter()
  return {
    get commits() {
      return commits;
    },
    /** Commits `more` transactions, then stops; resolves to the number committed in all. */
    stopAfter(more: number): Promise<number> {
      limit = commits + more;
      return done;
    },
  };
}

/** Polls the repository's WAL archive until it reaches `lsn`: the segment holding it is stored. */
async function archiveReaching(repo: Repository, lsn: Lsn, receiverFailed: () => unknown): Promise<RepositoryWalArchive> {
  const deadline = Date.now() + ARCHIVE_WAIT_MS;
  for (;;) {
    const failed = receiverFailed();
    if (failed !== undefined) throw failed;
    const archive = await repo.walArchive();
    if (archive !== undefined && archive.newest.endLsn >= lsn) return archive;
    if (Date.now() > deadline) {
      throw new Error(
        `the WAL archive did not reach ${formatLsn(lsn)} in ${ARCHIVE_WAIT_MS / 1000} s (it ends at ${archive ? formatLsn(archive.newest.endLsn) : 'nothing'})`,
      );
    }
    await sleep(200);
  }
}

function printRehearsal(backup: BackupRecord, r: RehearsalResult): void {
  const f = r.figures;
  console.log(`  rehearsal of backup ${backup.id}: ${r.ok ? 'passed' : 'FAILED'} in ${seconds(r.durationMs)}, PostgreSQL ${r.major}`);
  console.log(`  recovery time: ${seconds(f.recoveryMs)} (restore ${seconds(f.restoreMs)}, replay ${seconds(f.replayMs)})`);
  console.log(
    `  recovery point: ${f.lastTransactionTime ?? 'no transaction replayed'} at ${f.replayLsn ?? '?'}, ` +
      `${f.walBytes === undefined ? '?' : (f.walBytes / 1048576).toFixed(1)} MiB of WAL replayed from ${f.backupStartLsn ?? '?'}`,
  );
  for (const s of r.steps) {
    const mark = s.status === 'passed' ? '✓' : s.status === 'failed' ? '✗' : '-';
    console.log(`    ${mark} ${s.name.padEnd(11)} ${seconds(s.durationMs).padStart(8)}  ${s.detail}`);
    for (const p of s.problems ?? []) console.log(`        ${p}`);
  }
}

const packageRoot = fileURLToPath(new URL('../', import.meta.url));
const tempDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  tempDirs.push(dir);
  return dir;
}

let primary: Cluster | undefined;
let repo: Repository | undefined;
let writer: ReturnType<typeof startWriter> | undefined;
let slotCreated = false;
const stopArchiving = new AbortController();
let archiving: Promise<number> | undefined;
let archiveError: unknown;

try {
  // 1. A server with data, and a repository.
  primary = await step(`start PostgreSQL ${MAJOR} (embedded, data checksums, wal_level=replica)`, () =>
    startCluster({ major: MAJOR, ssl: false }),
  );
  const pg = primary;
  await step(`load ${ACCOUNTS.toLocaleString('en')} accounts`, async () => {
    await pg.sql('create table accounts(id int primary key, balance bigint not null, note text)');
    await pg.sql(`insert into accounts select g, g * 7 % 10007, md5(g::text) from generate_series(1, ${ACCOUNTS}) g`);
    await pg.sql('create table ticks(id bigserial primary key, at timestamptz not null default clock_timestamp())');
  });
  const repoDir = join(await tempDir('demo-repo'), 'repository');
  const repository = await step(`open a backup repository in ${repoDir}`, () => openRepository(repoDir));
  repo = repository;

  // 2. Continuous WAL archiving into the repository, on a slot: the server keeps every byte not yet stored.
  await step(`archive WAL into the repository continuously (slot ${SLOT}, segments compressed with lz4)`, async () => {
    await pg.sql('select pg_create_physical_replication_slot($1, true)', [SLOT]);
    slotCreated = true;
    const store = new RepositoryWalStore(repository, { spoolDirectory: await tempDir('demo-spool'), compression: 'lz4' });
    const receiver = receiveWal({ connection: pg.connectionString(), slotName: SLOT, store, signal: stopArchiving.signal });
    archiving = (async () => {
      let stored = 0;
      try {
        for await (const ev of receiver) if (ev.type === 'segment-completed') stored++;
      } catch (err) {
        archiveError = err;
      }
      return stored;
    })();
  });
  writer = startWriter(pg);
  console.log('  another connection now commits transfers in a loop');

  // 3. A full backup while the rows are written; then more rows, and the archive made to cover them.
  const outcome = await step('full backup into the repository (fast checkpoint, lz4) while transfers commit', () =>
    backupToRepository(repository, { connection: pg.connectionString(), checkpoint: 'fast', compression: 'lz4' }),
  );
  if (outcome.skipped) throw new Error('the backup was skipped');
  const backup = outcome.record;
  const duringBackup = writer.commits;
  console.log(`  backup ${backup.id}: WAL ${formatLsn(backup.startLsn)} → ${formatLsn(backup.endLsn)}, ${backup.objects.length} objects`);
  const w = writer;
  const expected = await step('commit 200 more transfers after the backup, then switch WAL', async () => {
    const total = await w.stopAfter(200);
    const [ticks] = await pg.sql<{ n: string }>('select count(*) as n from ticks');
    const [digest] = await pg.sql<{ md5: string }>(ACCOUNTS_MD5);
    const [sw] = await pg.sql<{ lsn: string }>('select pg_switch_wal() as lsn');
    console.log(`  ${total} transfers committed (${duringBackup} by the end of the backup); WAL switched at ${sw!.lsn}`);
    return { ticks: Number(ticks!.n), md5: digest!.md5, switchLsn: parseLsn(sw!.lsn) };
  });
  const archive = await step(`wait until the repository's WAL archive reaches ${formatLsn(expected.switchLsn)}`, () =>
    archiveReaching(repository, expected.switchLsn, () => archiveError),
  );
  const first = archive.timelines[0]!;
  console.log(`  archive: ${first.firstSegment} to ${archive.newest.segment} on timeline ${archive.newest.timeline}`);
  // The rehearsal replays the archive as it is now; in production the receiver would go on.
  const stored = await step('stop archiving', async () => {
    stopArchiving.abort();
    return (await archiving) ?? 0;
  });
  check(
    archiveError === undefined,
    `the receiver stored ${stored} segments and stopped cleanly${archiveError ? `: ${String(archiveError)}` : ''}`,
  );

  // 4. The rehearsal. A local repository keeps the backup's objects as files under backups/<id>/ and the
  // segments under wal/ with PostgreSQL's names: the backup directory and the WAL archive rehearse takes.
  const asRoot = serverIdentity() !== undefined;
  if (asRoot) await chownToServer(repoDir, { recursive: true }); // restore-wal runs as the server's user
  const pgbb = asRoot ? await pgbbForServer(packageRoot) : undefined;
  const workDir = await tempDir('demo-rehearsal');
  const result = await step('rehearse the backup with the archived WAL', () =>
    rehearse({
      source: { backupDir: join(repoDir, 'backups', backup.id), walArchive: join(repoDir, 'wal') },
      pgBin: pg.binDir, // the embedded server's binaries
      workDir,
      ...(pgbb ? { runAs: TEST_OS_USER, pgbbCommand: [pgbb.node, pgbb.cli] } : {}),
      // Each check returns a single true: the data replayed is the data the primary had at the switch.
      checkSql: `select count(*) = ${expected.ticks} from ticks;\nselect (${ACCOUNTS_MD5}) = '${expected.md5}';\n`,
      timeoutMs: 60_000,
    }),
  );
  printRehearsal(backup, result);
  check(
    result.ok,
    `every step of the rehearsal passed; its SQL checks found ${expected.ticks} ticks and the accounts' digest ${expected.md5}, as on the primary`,
  );
  const record = await recordRehearsal(repository, result, { backupId: backup.id, archiveEndTime: archive.newest.storedAt });
  console.log(`  recorded as rehearsals/${record.id}.json`);

  // 5. Monitoring: what `pgbb status` and `pgbb metrics` print.
  await step('status of the repository (as `pgbb status` prints it for Nagios/Icinga)', async () => {
    const [pos] = await pg.sql<{ lsn: string; tli: number }>(
      'select pg_current_wal_lsn() as lsn, (select timeline_id from pg_control_checkpoint()) as tli',
    );
    const state = await readRepositoryState(repository, { server: { lsn: parseLsn(pos!.lsn), timeline: Number(pos!.tli) } });
    const now = new Date();
    const report = evaluateStatus(state, { maxBackupAgeMs: 86_400_000, maxWalAgeMs: 3_600_000, maxRehearsalAgeMs: 7 * 86_400_000 }, now);
    console.log(formatStatusReport(report).trimEnd().replace(/^/gm, '    '));
    check(report.state === 'OK', `status ${report.state} (exit code ${report.exitCode}), OK expected`);
    console.log('  metrics (as `pgbb metrics` prints them, without the # HELP and # TYPE lines):');
    const metrics = formatPrometheus(repositoryMetrics(state, now));
    for (const line of metrics.split('\n')) if (line !== '' && !line.startsWith('#')) console.log(`    ${line}`);
  });
} catch (err) {
  console.error('demo failed:', err);
  failures.push('a step failed');
} finally {
  // 6. Cleanup, whatever happened above.
  try {
    await writer?.stopAfter(0).catch(() => undefined);
    stopArchiving.abort();
    await archiving;
    if (slotCreated) await primary?.sql('select pg_drop_replication_slot($1)', [SLOT]);
    await repo?.close();
    await primary?.destroy();
    for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
    console.log('• cleaned up: receiver stopped, slot dropped, server and temporary directories removed');
  } catch (err) {
    console.error('demo: cleanup failed:', err);
    failures.push('cleanup');
  }
}

console.log('');
for (const s of steps) console.log(`${seconds(s.ms).padStart(9)}  ${s.what}`);
if (failures.length > 0) {
  console.error(`demo: FAILED: ${failures.join('; ')}`);
  process.exitCode = 1;
} else {
  console.log('demo: every check passed');
}
