/**
 * A pgbench write load on a harness cluster, with Debian's pgbench 15 (the embedded builds ship no client
 * tools). pgbench 15 speaks plain SQL and the frontend protocol, so it drives servers 13..18 alike.
 * The load survives server restarts: when the server goes away every pgbench client aborts, pgbench exits,
 * and the load starts a new pgbench once the server accepts connections again.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { oracleBin } from './binaries.js';
import type { Cluster } from './cluster.js';

/** Options of {@link startPgbench}. */
export interface PgbenchOptions {
  /** pgbench `-c`. @default 2 */
  clients?: number;
  /**
   * pgbench `-R`: transactions per second over all clients. A bound keeps the WAL a test produces (and so the
   * segments it must compare before the server recycles them) proportional to the test's length.
   * @default 400
   */
  rateTps?: number;
}

/** A running pgbench load. */
export interface PgbenchLoad {
  /** pgbench processes started so far (more than one after a server restart). */
  readonly runs: number;
  /** Stop the load (SIGINT to the running pgbench) and wait for it; resolves to the transactions committed. */
  stop(): Promise<number>;
}

function pgbenchEnv(c: Cluster): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGUSER: c.superuser,
    PGDATABASE: 'postgres',
    PGSSLMODE: 'disable',
  };
}

/** `pgbench -i -s 1` (100 000 accounts): run once per cluster before {@link startPgbench}. */
export function initPgbench(c: Cluster): void {
  const r = spawnSync(oracleBin('pgbench'), ['-i', '-s', '1', '-q', '--no-vacuum'], { env: pgbenchEnv(c), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgbench -i failed (${String(r.status)}): ${r.stderr}`);
}

/**
 * The built-in TPC-B-like script (`-N`-less: updates of accounts, tellers, branches and an insert into history)
 * at {@link PgbenchOptions.rateTps}, until `stop()`.
 */
export function startPgbench(c: Cluster, o: PgbenchOptions = {}): PgbenchLoad {
  const clients = o.clients ?? 2;
  const rate = o.rateTps ?? 400;
  let stopped = false;
  let runs = 0;
  let child: ChildProcess | undefined;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      runs++;
      // -T long enough for any test; -n: no vacuum before the run (it would wait on locks after a restart).
      child = spawn(oracleBin('pgbench'), ['-n', '-c', String(clients), '-j', '1', '-R', String(rate), '-T', '3600'], {
        env: pgbenchEnv(c),
        stdio: 'ignore',
      });
      child.on('exit', () => resolve());
      child.on('error', () => resolve());
    });
  const running = (async () => {
    while (!stopped) {
      await one();
      // The server is restarting (every client aborted): try again shortly.
      if (!stopped) await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    get runs() {
      return runs;
    },
    async stop() {
      stopped = true;
      child?.kill('SIGINT');
      await running;
      const [row] = await c.sql<{ n: string }>('select count(*)::text n from pgbench_history');
      return Number(row!.n);
    },
  };
}
