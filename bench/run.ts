// `npm run bench`: pgbb against pg_basebackup / pg_verifybackup on the same cluster, in the same run,
// alternating the two tools, with the results written to bench/results/ (JSON, Markdown, SVG chart).
// `npm run bench -- --help` lists the options. Not a test: nothing here fails on a slow result.
//
// Clusters are started by the test harness's startCluster (test/harness/cluster.ts) and removed when the
// process exits: Debian's PostgreSQL 15, against which pg_basebackup 15 runs too, and an embedded 17,
// which pg_basebackup 15 refuses (it only talks to servers of its own major or older), measured alone.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { HELP, parseBenchArgs, type BenchArgs } from './lib/args.js';
import { CASES, REPO_RESTORE_PREFIX, type CaseContext, type CaseDef, type Features, type SyncMode } from './lib/cases.js';
import { databaseBytes, growDataset, type DatasetTarget } from './lib/dataset.js';
import { CommandFailed, cleanupMeasure, measure, stats, type Sample } from './lib/measure.js';
import { boundOf, markDiskBound } from './lib/bound.js';
import { runArchiveLag } from './lib/archive-lag.js';
import { runRehearseOverhead } from './lib/rehearse-overhead.js';
import { startBenchRepository, type BenchRepository } from './lib/repository.js';
import { parseLsn } from '../src/lsn.js';
import { segmentFileName } from '../src/wal/segments.js';
import {
  machineInfo,
  toMarkdown,
  toSvg,
  versionInfo,
  type BenchResult,
  type CaseResult,
  type DatasetResult,
  type SideResult,
} from './lib/report.js';
import { debianBinDir, DEBIAN_BIN_DIR } from '../test/harness/binaries.js';
import { startCluster, type Cluster } from '../test/harness/cluster.js';
import { serverIdentity, TEST_OS_USER } from '../test/harness/os-user.js';
import { makeTempDir } from '../test/harness/run-root.js';

/**
 * The environment of both tools: this one without NODE_EXTRA_CA_CERTS, which makes every Node
 * start-up read and parse a CA bundle (about 50 ms here, where it is set machine-wide) for a
 * program that never verifies a certificate in these runs; pg_basebackup ignores it anyway.
 */
const BENCH_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS'));

const ROOT = resolve(import.meta.dirname, '..');
let CLI = join(ROOT, 'dist', 'cli', 'main.js');
/** How pgbb is run: `[node, dist/cli/main.js]`, the Node being --node's when given (set in main). */
let OURS = [process.execPath, CLI];
const REF_BACKUP = join(DEBIAN_BIN_DIR, 'pg_basebackup');
const REF_VERIFY = join(DEBIAN_BIN_DIR, 'pg_verifybackup');
const REF_RECEIVEWAL = join(DEBIAN_BIN_DIR, 'pg_receivewal');
/** The slot that keeps the WAL backlog of the receive-wal cases on the server. */
const HOLD_SLOT = 'bench_wal_hold';
const MB = 2 ** 20;

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

function help(sub: string): string {
  const r = spawnSync(OURS[0]!, [CLI, sub, '--help'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

async function dirBytes(path: string): Promise<number> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of await readdir(path)) n += await dirBytes(join(path, e));
  return n;
}

function syncDisks(): void {
  spawnSync('sync');
}

/** The server major of a connection string, via psql (pg_basebackup's own check is by major). */
function serverVersionOf(conn: string): { version: string; num: number } {
  const psql = join(DEBIAN_BIN_DIR, 'psql');
  const r = spawnSync(psql, ['-d', conn, '-Atc', 'SHOW server_version_num'], { encoding: 'utf8' });
  const v = spawnSync(psql, ['-d', conn, '-Atc', 'SHOW server_version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot query ${conn} with psql: ${r.stderr}`);
  return { version: `PostgreSQL ${v.stdout.trim()}`, num: Number(r.stdout.trim()) };
}

interface Target {
  name: string;
  conn: string;
  serverVersion: string;
  serverMajor: number;
  /** Superuser access for loading data; absent for --conn. */
  dataset: DatasetTarget | undefined;
  features: Features;
  cluster: Cluster | undefined;
}

const REFERENCE: Record<CaseDef['tool'], string> = {
  backup: REF_BACKUP,
  verify: REF_VERIFY,
  'receive-wal': REF_RECEIVEWAL,
  restore: 'tar',
};

async function startTarget(major: number): Promise<Target> {
  const flavor = major === 15 ? 'debian' : 'embedded';
  log(`starting PostgreSQL ${major} (${flavor})`);
  const cluster = await startCluster({
    major,
    flavor,
    ssl: false,
    // Room for the dataset's WAL between checkpoints; the backups' own checkpoints are fast.
    conf: { max_wal_size: '4GB', shared_buffers: '128MB' },
  });
  const [v] = await cluster.sql<{ v: string }>('SELECT version() AS v');
  // Held from now on: all the WAL the dataset writes stays on the server for the receive-wal cases.
  await cluster.sql(`SELECT pg_create_physical_replication_slot('${HOLD_SLOT}', true)`);
  const scratch = await makeTempDir('bench-load');
  return {
    name: `PostgreSQL ${major} (${flavor === 'debian' ? "Debian's build" : 'embedded build'})`,
    conn: cluster.connectionString(),
    serverVersion: (v?.v ?? '').split(' on ')[0] ?? '',
    serverMajor: major,
    cluster,
    dataset: {
      sql: (text, params) => cluster.sql(text, params),
      pgbenchConn: ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres'],
      pgbench: join(DEBIAN_BIN_DIR, 'pgbench'),
      scratchDir: scratch,
    },
    features: {
      oursCompress: false,
      oursVerify: false,
      oursReceiveWal: false,
      oursRestore: false,
      oursRepo: false,
      oursRepoRestore: false,
      startedCluster: true,
      // Debian builds with --with-zstd; the embedded builds link no zstd (checked below with ldd).
      serverZstd: flavor === 'debian' || linksZstd(join(cluster.binDir, 'postgres')),
      reference: major <= 15,
    },
  };
}

function linksZstd(binary: string): boolean {
  const r = spawnSync('ldd', [binary], { encoding: 'utf8' });
  return /libzstd/.test(r.stdout);
}

function side(command: string[], samples: Sample[], bytes: number, outputBytes: number | undefined): SideResult {
  const wall = stats(samples.map((x) => x.wallMs));
  return {
    command,
    samples,
    wallMs: wall,
    cpuMs: stats(samples.map((x) => x.userMs + x.sysMs)),
    peakRssBytes: stats(samples.map((x) => x.peakRssBytes)),
    throughputMBps: bytes / MB / (wall.median / 1000),
    outputBytes,
  };
}

/** A printable command line: the connection string quoted. */
function show(program: string[], args: string[]): string[] {
  return [...program.map((p) => (p === OURS[0] ? 'node' : p.startsWith(ROOT) ? p.slice(ROOT.length + 1) : p)), ...args];
}

interface Prepared {
  repository?: BenchRepository | undefined;
  repoRestoreSource?: CaseContext['repoRestoreSource'];
  /** The repository backup of repo-restore and rehearse. */
  repoRestoreAddress?: string | undefined;
  verifyDir?: string | undefined;
  walBacklog?: CaseContext['walBacklog'];
  restoreSource?: string | undefined;
}

async function runCase(
  def: CaseDef,
  sync: SyncMode | undefined,
  t: Target,
  args: BenchArgs,
  work: string,
  dataBytes: number,
  prepared: Prepared,
): Promise<CaseResult> {
  const base = { id: def.id, title: def.title, ...(sync ? { sync } : {}), compressed: def.compressed };
  const avail = def.available(t.features);
  if (avail !== true) return { ...base, status: 'not available', reason: avail };
  const target = join(work, 'target');
  const ctx: CaseContext = {
    conn: t.conn,
    target,
    sync: sync ?? 'nosync',
    verifyDir: prepared.verifyDir,
    walBacklog: prepared.walBacklog,
    restoreSource: prepared.restoreSource,
    ours: OURS,
    repository: prepared.repository,
    repoRestoreSource: prepared.repoRestoreSource,
  };
  const spec = def.command(ctx);
  const ours = [...OURS, def.tool];
  // tar needs no server; the PostgreSQL tools only talk to servers of their major or older.
  const ref = def.tool === 'restore' || t.features.reference ? [spec.reference?.program ?? REFERENCE[def.tool]] : undefined;
  const refArgs = spec.reference?.args ?? spec.args;
  const movedBytes = def.bytes?.(ctx) ?? dataBytes;
  const samples: { ours: Sample[]; ref: Sample[] } = { ours: [], ref: [] };
  const out: { ours: number | undefined; ref: number | undefined } = { ours: undefined, ref: undefined };
  const one = async (who: 'ours' | 'ref', program: string[], timed: boolean): Promise<void> => {
    if (def.writesTarget) await rm(target, { recursive: true, force: true });
    await def.prepare?.(ctx);
    syncDisks();
    const sample = await measure(program[0]!, [...program.slice(1), ...(who === 'ref' ? refArgs : spec.args)], spec.stdout, BENCH_ENV);
    if (timed) samples[who].push(sample);
    out[who] = def.writesTarget ? await dirBytes(target) : undefined;
  };
  try {
    for (let i = 0; i < args.warmup + args.runs; i++) {
      const timed = i >= args.warmup;
      await one('ours', ours, timed);
      if (ref) await one('ref', ref, timed);
    }
  } catch (err) {
    const said = err instanceof CommandFailed ? err.message.split('\n').slice(1).join(' ').trim() : '';
    if (err instanceof CommandFailed && def.id === 'server-zstd' && /zstd/i.test(said) && /support/i.test(said)) {
      return { ...base, status: 'not available', reason: `the server refused zstd: ${said}` };
    }
    // A flag the CLI lists but cannot run yet (a feature being built) is not a benchmark failure.
    if (err instanceof CommandFailed && samples.ours.length === 0 && /not wired|not implemented|not (yet )?supported yet/i.test(said)) {
      return { ...base, status: 'not available', reason: `pgbb says: ${said}` };
    }
    log(`  ${def.id}: FAILED ${err instanceof Error ? err.message : String(err)}`);
    return { ...base, status: 'failed', reason: said || (err instanceof Error ? err.message : String(err)) };
  } finally {
    if (def.writesTarget) await rm(target, { recursive: true, force: true });
  }
  const o = side(show(ours, spec.args), samples.ours, movedBytes, out.ours);
  const result: CaseResult = { ...base, status: 'ok', ours: o };
  if (ref) {
    const p = side(show(ref, refArgs), samples.ref, movedBytes, out.ref);
    result.reference = p;
    result.ratio = {
      wall: o.wallMs.median / p.wallMs.median,
      cpu: o.cpuMs.median / p.cpuMs.median,
      peakRss: o.peakRssBytes.median / p.peakRssBytes.median,
    };
  }
  result.bound = { ours: boundOf(o), ...(result.reference ? { reference: boundOf(result.reference) } : {}) };
  const r = result.ratio;
  log(
    `  ${def.id}${sync ? ` (${sync})` : ''}: pgbb ${(o.wallMs.median / 1000).toFixed(2)} s, ${(o.peakRssBytes.max / MB).toFixed(0)} MB` +
      (result.reference
        ? `; reference ${(result.reference.wallMs.median / 1000).toFixed(2)} s, ${(result.reference.peakRssBytes.max / MB).toFixed(0)} MB; wall ratio ${r!.wall.toFixed(3)}, CPU ratio ${r!.cpu.toFixed(3)}`
        : ''),
  );
  return result;
}

async function benchTarget(t: Target, args: BenchArgs, datasets: DatasetResult[]): Promise<void> {
  const cases = CASES.filter((c) => args.cases.includes(c.id));
  for (const size of t.dataset ? args.sizes : [0]) {
    let bytes: number;
    if (t.dataset) {
      log(`${t.name}: growing the dataset to ${(size / MB).toFixed(0)} MB`);
      bytes = await growDataset(t.dataset, size, (l) => log(`  ${l}`), args.shape);
    } else {
      bytes = await databaseBytes({ sql: async (text) => psqlRows(t.conn, text) });
    }
    log(`${t.name}: ${(bytes / MB).toFixed(0)} MB of data`);
    const work = args.workDir ? await mkdtempIn(args.workDir) : await makeTempDir('bench-work');
    const prepared: Prepared = {};
    if (cases.some((c) => c.id === 'verify') && t.features.oursVerify) {
      // One plain backup with streamed WAL, by the reference tool when it can, verified by both verifiers.
      prepared.verifyDir = join(work, 'verify-source');
      const program = t.features.reference ? [REF_BACKUP] : [...OURS, 'backup'];
      await measure(
        program[0]!,
        [...program.slice(1), '-d', t.conn, '-c', 'fast', '-D', prepared.verifyDir, '-Fp', '-X', 'stream'],
        'devnull',
      );
    }
    if (cases.some((c) => c.id === 'restore') && t.features.oursRestore) {
      // One tar backup with its WAL inside base.tar, restored by both.
      prepared.restoreSource = join(work, 'restore-source');
      const program = t.features.reference ? [REF_BACKUP] : [...OURS, 'backup'];
      await measure(
        program[0]!,
        [...program.slice(1), '-d', t.conn, '-c', 'fast', '-D', prepared.restoreSource, '-Ft', '-X', 'fetch'],
        'devnull',
      );
    }
    const rehearseWanted = args.cases.includes('rehearse') && t.features.oursRepoRestore && t.cluster !== undefined;
    if (rehearseWanted || cases.some((c) => c.id.startsWith('repo-') && c.available(t.features) === true)) {
      log('starting the S3 server (Swift) for the repository cases');
      prepared.repository = await startBenchRepository().catch((err: unknown) => {
        // Swift comes from Debian's packages (npm test's prepare step installs them); without it the other cases still run.
        log(`  the repository cases are skipped: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
        t.features.oursRepo = false;
        t.features.oursRepoRestore = false;
        return undefined;
      });
      if (prepared.repository) Object.assign(BENCH_ENV, prepared.repository.env);
      const repoRestoreWanted = cases.some((c) => c.id === 'repo-restore') && t.features.oursRepoRestore;
      if (prepared.repository && (repoRestoreWanted || rehearseWanted)) {
        // One backup by pgbb into the repository, restored (and rehearsed) by every run.
        const address = prepared.repository.address(REPO_RESTORE_PREFIX);
        await measure(
          OURS[0]!,
          [...OURS.slice(1), 'backup', '-d', t.conn, '-c', 'fast', '--repo', address, '-X', 'stream'],
          'devnull',
          BENCH_ENV,
        );
        prepared.repoRestoreAddress = address;
      }
      if (prepared.repoRestoreAddress && repoRestoreWanted) {
        // The same data in local tar files, restored by the reference side of repo-restore.
        const local = join(work, 'repo-restore-local');
        await measure(
          OURS[0]!,
          [...OURS.slice(1), 'backup', '-d', t.conn, '-c', 'fast', '-D', local, '-Ft', '-X', 'stream'],
          'devnull',
          BENCH_ENV,
        );
        prepared.repoRestoreSource = { address: prepared.repoRestoreAddress, local };
      }
    }
    if (cases.some((c) => c.tool === 'receive-wal') && t.features.oursReceiveWal && t.features.startedCluster)
      prepared.walBacklog = await walBacklog(t, size);
    const d: DatasetResult = {
      cluster: t.name,
      serverVersion: t.serverVersion,
      requestedBytes: size,
      databaseBytes: bytes,
      cases: [],
    };
    if (!t.features.reference) {
      d.referenceNote =
        `pg_basebackup 15 (the only one installed) refuses PostgreSQL ${t.serverMajor} ("incompatible server version"), ` +
        'so this cluster measures pgbb alone; the ratios come from the PostgreSQL 15 cluster.';
    }
    datasets.push(d);
    for (const def of cases) {
      const modes = def.writesTarget ? args.syncModes.filter((m) => !def.syncModes || def.syncModes.includes(m)) : [undefined];
      for (const sync of modes) {
        d.cases.push(await runCase(def, sync, t, args, work, bytes, prepared));
      }
    }
    markDiskBound(d.cases);
    if (args.cases.includes('rehearse')) {
      d.rehearse =
        prepared.repoRestoreAddress === undefined || t.cluster === undefined
          ? { status: 'not available', reason: 'needs a cluster the bench started and the S3 repository (pgbb restore --repo)' }
          : await runRehearseOverhead({
              ours: OURS,
              address: prepared.repoRestoreAddress,
              pgBin: t.cluster.binDir,
              // PostgreSQL refuses to run as root: the rehearsal's server runs as the test harness's user.
              runAs: serverIdentity() ? TEST_OS_USER : undefined,
              env: BENCH_ENV,
              work,
              runs: args.runs,
              log,
            });
    }
    if (args.cases.includes('archive-lag')) {
      // Last: the load changes the dataset.
      d.archiveLag = !t.features.oursReceiveWal
        ? { status: 'not available', reason: 'pgbb has no receive-wal command' }
        : !t.dataset
          ? { status: 'not available', reason: 'needs a cluster the bench started (pgbench writes into it), not --conn' }
          : await runArchiveLag({
              dataset: t.dataset,
              conn: t.conn,
              ours: OURS,
              reference: t.features.reference ? REF_RECEIVEWAL : undefined,
              env: BENCH_ENV,
              work,
              loadSeconds: args.lagSeconds,
              clients: 4,
              log,
            });
    }
    await prepared.repository?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The WAL the receive-wal cases catch up over: from the segment after the one holding the hold slot's
 * restart position to the current flush position (everything the dataset load wrote; flushed, so the
 * walsender can send all of it at once).
 */
/**
 * The WAL backlog the hold slot keeps, made at least `minBytes` long first: loading the dataset writes
 * a little less WAL than its size, and the catch-up cases are claimed over a backlog at least as large as
 * the dataset. The top-up is rows of pgbench_accounts copied into a table that is then dropped, so the
 * extra WAL is ordinary heap and index WAL (compressible as real WAL is) and the database is unchanged.
 */
async function walBacklog(t: Target, minBytes: number): Promise<CaseContext['walBacklog']> {
  const backlog = await topUpWalBacklog(t, minBytes);
  // pg_receivewal stops once it has received WAL beyond -E (its stop test is endpos < position), so on an
  // idle server it would wait for the next WAL anyone writes (10-20 s here): a committed transaction
  // after the end gives both tools WAL past it at once.
  await t.cluster?.sql('CREATE TABLE bench_wal_after_end (); DROP TABLE bench_wal_after_end');
  return backlog;
}

async function topUpWalBacklog(t: Target, minBytes: number): Promise<NonNullable<CaseContext['walBacklog']>> {
  let backlog = await measureWalBacklog(t);
  if (backlog.bytes >= minBytes || !t.cluster) return backlog;
  const t0 = performance.now();
  await t.cluster.sql('CREATE TABLE bench_wal_filler (LIKE pgbench_accounts INCLUDING INDEXES)');
  while (backlog.bytes < minBytes) {
    const before = backlog.bytes;
    await t.cluster.sql('INSERT INTO bench_wal_filler SELECT * FROM pgbench_accounts LIMIT 500000');
    await t.cluster.sql('TRUNCATE bench_wal_filler');
    backlog = await measureWalBacklog(t);
    if (backlog.bytes <= before) throw new Error('the WAL backlog does not grow: is the hold slot there?');
  }
  await t.cluster.sql('DROP TABLE bench_wal_filler');
  // As after loading the dataset: the backlog ends with a checkpoint's WAL, the state the runs start from.
  await t.cluster.sql('CHECKPOINT');
  backlog = await measureWalBacklog(t);
  log(`WAL backlog topped up to ${(backlog.bytes / MB).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return backlog;
}

async function measureWalBacklog(t: Target): Promise<NonNullable<CaseContext['walBacklog']>> {
  const rows = await psqlRows<{ n: string }>(
    t.conn.replace(/\breplication=\S+/, ''),
    `SELECT (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') || ' ' || restart_lsn || ' ' || pg_current_wal_flush_lsn() FROM pg_replication_slots WHERE slot_name = '${HOLD_SLOT}'`,
  );
  const [segText, restartText, endText] = (rows[0]?.n ?? '').split(' ');
  if (!segText || !restartText || !endText) throw new Error(`no ${HOLD_SLOT} slot on ${t.name}: cannot measure receive-wal`);
  const segmentSize = Number(segText);
  const restart = parseLsn(restartText);
  const end = parseLsn(endText);
  const seg = BigInt(segmentSize);
  const first = restart / seg + 1n;
  const timeline = 1;
  return { seedName: segmentFileName(timeline, first - 1n, segmentSize), segmentSize, endLsn: endText, bytes: Number(end - first * seg) };
}

async function mkdtempIn(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const p = join(dir, `bench-${process.pid}`);
  await mkdir(p, { recursive: true });
  return p;
}

async function psqlRows<T>(conn: string, text: string): Promise<T[]> {
  const r = spawnSync(join(DEBIAN_BIN_DIR, 'psql'), ['-d', conn, '-AtF', '\t', '-c', text], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  // Only single-column answers are asked for.
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => ({ n: line }) as T);
}

async function main(): Promise<void> {
  const parsed = parseBenchArgs(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const args = parsed;
  if (args.cli !== undefined) CLI = resolve(args.cli);
  OURS = [args.node !== undefined ? resolve(args.node) : process.execPath, CLI];
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm run bench does)`);
  if (!debianBinDir()) throw new Error(`Debian's PostgreSQL 15 is not installed (${DEBIAN_BIN_DIR}): apt-get install postgresql-15`);
  const startedAt = new Date();
  const loadAtStart = loadavg()[0] ?? 0;
  const oursCompress = /--compress/.test(help('backup'));
  const oursVerify = help('verify') !== '';
  const oursReceiveWal = help('receive-wal') !== '';
  const oursRestore = help('restore') !== '';
  const oursRepo = /--repo/.test(help('backup'));
  const oursRepoRestore = /--repo/.test(help('restore'));
  const datasets: DatasetResult[] = [];
  const targets: (() => Promise<Target>)[] = args.conn
    ? [
        async () => {
          const v = serverVersionOf(args.conn!);
          const major = Math.floor(v.num / 10000);
          return {
            name: `the server at --conn (PostgreSQL ${major})`,
            conn: args.conn!,
            serverVersion: v.version,
            serverMajor: major,
            dataset: undefined,
            cluster: undefined,
            // Unknown build: server-side zstd is tried, and a refusal reported as not available.
            features: {
              oursCompress,
              oursVerify,
              oursReceiveWal,
              oursRestore,
              oursRepo,
              oursRepoRestore,
              serverZstd: true,
              reference: major <= 15,
              startedCluster: false,
            },
          };
        },
      ]
    : args.clusters.map((m) => () => startTarget(m));
  if (args.serve) {
    const running: Target[] = [];
    for (const make of targets) {
      const t = await make();
      running.push(t);
      if (t.dataset) await growDataset(t.dataset, args.sizes.at(-1)!, (l) => log(`  ${l}`), args.shape);
      // A served cluster is for the backup cases through --conn; its hold slot would keep every WAL
      // segment those runs write (23 GB after an afternoon). The receive-wal cases need a cluster the
      // bench starts, whose slot holds exactly the dataset's WAL.
      await t.cluster?.sql(`SELECT pg_drop_replication_slot('${HOLD_SLOT}')`);
      process.stdout.write(`${t.name}: --conn='${t.conn}'\n`);
    }
    log('serving; Ctrl-C stops the clusters');
    // Signal listeners do not keep the event loop alive: a timer does.
    const keepAlive = setInterval(() => undefined, 60_000);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    clearInterval(keepAlive);
    for (const t of running) await t.cluster?.destroy();
    return;
  }
  for (const make of targets) {
    const t = await make();
    t.features.oursCompress = oursCompress;
    t.features.oursVerify = oursVerify;
    t.features.oursReceiveWal = oursReceiveWal;
    t.features.oursRestore = oursRestore;
    t.features.oursRepo = oursRepo;
    t.features.oursRepoRestore = oursRepoRestore;
    try {
      await benchTarget(t, args, datasets);
    } finally {
      await t.cluster?.destroy();
    }
  }
  await cleanupMeasure();

  const result: BenchResult = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: machineInfo(),
    loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
    versions: versionInfo(OURS, REF_BACKUP, REF_VERIFY, REF_RECEIVEWAL),
    settings: {
      runs: args.runs,
      warmup: args.warmup,
      syncModes: args.syncModes,
      order: 'alternating pgbb, reference, pgbb, reference, ...',
    },
    datasets,
  };
  const dir = resolve(ROOT, args.resultsDir);
  await mkdir(dir, { recursive: true });
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (args.keepTimestamped) {
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-').slice(0, 19);
    await writeFile(join(dir, `${stamp}${args.tag ? `-${args.tag}` : ''}.json`), json);
  }
  await writeFile(join(dir, 'latest.json'), json);
  const md = toMarkdown(result);
  await writeFile(join(dir, 'latest.md'), md);
  await writeFile(join(dir, 'latest.svg'), toSvg(result));
  process.stdout.write(md);
  log(`results in ${dir} (latest.json, latest.md, latest.svg)`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
