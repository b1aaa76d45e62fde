// The archive-lag case: how far behind the server an archiver stays while pgbench writes, for pgbb
// receive-wal and pg_receivewal on the same cluster, one after the other, with the same load.
//
// Each tool archives into an empty directory (fsync on: what an archiver does), with a status update
// every second (-s 1) and its own application_name. While `pgbench -T` runs, pg_stat_replication is
// read every half second: lag in bytes is the server's WAL flush position minus the write position
// the archiver last reported, lag in seconds is the server's own write_lag (the time from the server's
// flush to the archiver's report, walsender.c LagTrackerRead). When pgbench ends, catch-up is the time
// until the archiver reports the server's final position. Both lags include up to one status interval
// of reporting delay, for both tools alike. The archiver then gets SIGINT (both exit cleanly on it) and
// GNU time reports its CPU and peak RSS.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GNU_TIME, stats, type Stats } from './measure.js';
import type { DatasetTarget } from './dataset.js';

/** One tool's run under load. */
export interface ArchiveLagSide {
  command: string[];
  /** Server WAL flush position minus the archiver's reported write position, sampled every 0.5 s. */
  lagBytes: Stats & { p95: number };
  /** The server's write_lag for the archiver, seconds, sampled alike (null samples left out). */
  lagSeconds: Stats & { p95: number };
  /** From the end of the load until the archiver reported the final position, seconds. */
  catchUpSeconds: number;
  /** WAL the load wrote during this run, bytes. */
  walBytes: number;
  /** pgbench transactions per second during this run. */
  tps: number;
  samples: number;
  cpuMs: number;
  peakRssBytes: number;
}

export interface ArchiveLagResult {
  status: 'ok' | 'not available' | 'failed';
  reason?: string;
  /** pgbench settings. */
  load?: { seconds: number; clients: number };
  ours?: ArchiveLagSide;
  reference?: ArchiveLagSide;
}

export interface ArchiveLagSetup {
  /** Superuser access (pgbench tables exist: the dataset made them). */
  dataset: DatasetTarget;
  /** Replication connection string for both tools. */
  conn: string;
  /** `[node, main.js]` for ours. */
  ours: string[];
  /** pg_receivewal. */
  reference: string | undefined;
  env: NodeJS.ProcessEnv;
  work: string;
  loadSeconds: number;
  clients: number;
  log: (line: string) => void;
}

const SAMPLE_MS = 500;
const CONNECT_TIMEOUT_MS = 20_000;
const CATCH_UP_TIMEOUT_MS = 60_000;

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function withP95(values: number[]): Stats & { p95: number } {
  const s = [...values].sort((a, b) => a - b);
  return { ...stats(values), p95: s[Math.min(s.length - 1, Math.floor(s.length * 0.95))] ?? Number.NaN };
}

interface Position {
  flush: bigint;
  write: bigint | undefined;
  lagSeconds: number | undefined;
}

async function position(d: DatasetTarget, appName: string): Promise<Position> {
  const rows = await d.sql<{ flush: string; write: string | null; lag: string | null }>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::text AS flush,
            (SELECT pg_wal_lsn_diff(write_lsn, '0/0')::text FROM pg_stat_replication WHERE application_name = $1 LIMIT 1) AS write,
            (SELECT extract(epoch FROM write_lag)::text FROM pg_stat_replication WHERE application_name = $1 LIMIT 1) AS lag`,
    [appName],
  );
  const r = rows[0];
  if (!r) throw new Error('no answer from the server');
  return {
    flush: BigInt(r.flush.split('.')[0]!),
    write: r.write == null ? undefined : BigInt(r.write.split('.')[0]!),
    lagSeconds: r.lag == null ? undefined : Number(r.lag),
  };
}

async function runPgbench(s: ArchiveLagSetup): Promise<number> {
  const args = [
    '-n',
    '-T',
    String(s.loadSeconds),
    '-c',
    String(s.clients),
    '-j',
    String(Math.min(2, s.clients)),
    ...s.dataset.pgbenchConn,
    'postgres',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(s.dataset.pgbench, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`pgbench exited with ${String(code)}: ${out.slice(-500)}`));
      const m = /tps = ([\d.]+)/.exec(out);
      resolve(m ? Number(m[1]) : Number.NaN);
    });
  });
}

async function oneSide(s: ArchiveLagSetup, who: 'ours' | 'reference', program: string[]): Promise<ArchiveLagSide> {
  const appName = `bench_lag_${who}`;
  const dir = join(s.work, `lag-${who}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const statsFile = join(s.work, `lag-${who}.time`);
  await rm(statsFile, { force: true });
  const conn = `${s.conn} application_name=${appName}`;
  const args = ['-d', conn, '-D', dir, '-n', '-s', '1'];
  const command = [...program, ...args];
  // Its own process group: SIGINT reaches the tool, and GNU time (which ignores it) reports on its exit.
  const child = spawn(GNU_TIME, ['-o', statsFile, '-f', '%e %U %S %M', ...command], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: s.env,
    detached: true,
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (t: string) => {
    if (stderr.length < 10_000) stderr += t;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    const t0 = Date.now();
    while ((await position(s.dataset, appName)).write === undefined) {
      if (Date.now() - t0 > CONNECT_TIMEOUT_MS) throw new Error(`${program.at(-1)} did not start streaming: ${stderr.trim()}`);
      await wait(100);
    }
    const start = await position(s.dataset, appName);
    const lagBytes: number[] = [];
    const lagSeconds: number[] = [];
    let loading = true;
    const load = runPgbench(s).finally(() => {
      loading = false;
    });
    load.catch(() => undefined);
    while (loading) {
      const p = await position(s.dataset, appName);
      if (p.write !== undefined) lagBytes.push(Number(p.flush - p.write));
      if (p.lagSeconds !== undefined) lagSeconds.push(p.lagSeconds);
      await wait(SAMPLE_MS);
    }
    const tps = await load;
    const end = await position(s.dataset, appName);
    const t1 = Date.now();
    for (;;) {
      const p = await position(s.dataset, appName);
      if (p.write !== undefined && p.write >= end.flush) break;
      if (Date.now() - t1 > CATCH_UP_TIMEOUT_MS)
        throw new Error(`${program.at(-1)} did not catch up within ${CATCH_UP_TIMEOUT_MS / 1000} s`);
      await wait(50);
    }
    const catchUpSeconds = (Date.now() - t1) / 1000;
    process.kill(-child.pid!, 'SIGINT');
    const code = await exited;
    if (code !== 0) throw new Error(`${program.at(-1)} exited with ${String(code)} on SIGINT: ${stderr.trim()}`);
    const [, user, sys, maxKb] = (await readFile(statsFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
    return {
      command,
      lagBytes: withP95(lagBytes),
      lagSeconds: withP95(lagSeconds),
      catchUpSeconds,
      walBytes: Number(end.flush - start.flush),
      tps,
      samples: lagBytes.length,
      cpuMs: ((user ?? 0) + (sys ?? 0)) * 1000,
      peakRssBytes: (maxKb ?? 0) * 1024,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** Both tools under the same pgbench load, ours first. */
export async function runArchiveLag(s: ArchiveLagSetup): Promise<ArchiveLagResult> {
  const load = { seconds: s.loadSeconds, clients: s.clients };
  try {
    s.log(`  archive-lag: pgbb receive-wal under pgbench -T ${s.loadSeconds} -c ${s.clients}`);
    const ours = await oneSide(s, 'ours', [...s.ours, 'receive-wal']);
    const result: ArchiveLagResult = { status: 'ok', load, ours };
    if (s.reference) {
      s.log(`  archive-lag: pg_receivewal under the same load`);
      result.reference = await oneSide(s, 'reference', [s.reference]);
    }
    const line = (n: string, x: ArchiveLagSide) =>
      `${n} lag median ${(x.lagBytes.median / 2 ** 20).toFixed(1)} MB / ${x.lagSeconds.median.toFixed(2)} s, max ${(x.lagBytes.max / 2 ** 20).toFixed(1)} MB / ${x.lagSeconds.max.toFixed(2)} s, catch-up ${x.catchUpSeconds.toFixed(2)} s`;
    s.log(`  archive-lag: ${line('pgbb', ours)}${result.reference ? `; ${line('pg_receivewal', result.reference)}` : ''}`);
    return result;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    s.log(`  archive-lag: FAILED ${reason}`);
    return { status: 'failed', reason, load };
  }
}
