import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { appendFile, chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { binDirFor, DEBIAN_MAJOR, type Flavor } from './binaries.js';
import { baseConf, renderConf, renderHba, roleSql, ROLES, SUPERUSER, type Roles } from './config.js';
import { chownToServer, run, runOk } from './os-user.js';
import { nextId, register, runRoot, unregister } from './run-root.js';
import { ensureTlsMaterial, type TlsMaterial } from './tls.js';

/** A running (or stopped) PostgreSQL server started by {@link startCluster}. */
export interface Cluster {
  /** PostgreSQL major version (13..18). */
  major: number;
  /** `server_version` as the server reports it, e.g. `16.14`. */
  version: string;
  /** `server_version_num`, e.g. 160014. */
  versionNum: number;
  /** Which build runs the server. */
  flavor: Flavor;
  /** Directory holding initdb, pg_ctl and postgres (and, for Debian, pg_basebackup and friends). */
  binDir: string;
  /** The data directory. */
  dataDir: string;
  /** The server listens on loopback IPv4 only. */
  host: '127.0.0.1';
  /** The TCP port, unique in this run. */
  port: number;
  /** The cluster's own unix socket directory (`unix_socket_directories`). */
  socketDir: string;
  /** The bootstrap superuser; reachable over the socket and TCP with trust. */
  superuser: 'postgres';
  /** Roles and their password; see {@link ROLES}. */
  roles: Roles;
  /** The run's TLS files when the server has `ssl=on`, else `undefined`. */
  tls: TlsMaterial | undefined;
  /**
   * A libpq key=value connection string: host 127.0.0.1, the port, dbname postgres, user {@link Roles.trust},
   * sslmode=disable; `extra` entries override or add (e.g. `{ user: c.roles.scram, password: c.roles.secret }`).
   */
  connectionString(extra?: Record<string, string>): string;
  /** The same as a `postgresql://` URI, user, password and parameters percent-encoded. */
  connectionUri(extra?: Record<string, string>): string;
  /** Run SQL as the superuser over the unix socket (one pooled node-postgres client per cluster). */
  // biome-ignore lint/suspicious/noExplicitAny: rows are whatever the SQL selects; each test names their shape.
  sql<T = any>(text: string, params?: unknown[]): Promise<T[]>;
  /** Path of a program in this cluster's bin dir; throws when the build does not ship it. */
  pgBin(tool: string): string;
  /** Stop the server (`pg_ctl stop -m <mode>`, waiting). @default 'fast' */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Start the server again with the same port and options. */
  start(): Promise<void>;
  /** Stop (fast) and start. */
  restart(): Promise<void>;
  /** The server log (pg_ctl -l) so far. */
  logText(): string;
  /** Stop (immediate) and remove the cluster's directories (a caller-provided dataDir is left to the run's cleanup). */
  destroy(): Promise<void>;
  /** How long the harness took to prepare the data directory and to start the server, in ms. */
  timings: { prepareMs: number; startMs: number };
}

/** Options of {@link startCluster}. */
export interface StartOptions {
  /** PostgreSQL major, 13..18. */
  major: number;
  /** `debian` runs /usr/lib/postgresql/15/bin (major must be 15). @default 'embedded' */
  flavor?: Flavor;
  /** Turn TLS on with the run's server certificate (ignored for an existing dataDir, whose conf decides). @default true */
  ssl?: boolean;
  /** Extra postgresql.conf settings, appended after the harness's own (so they win). */
  conf?: Record<string, string>;
  /** Extra pg_hba.conf lines, placed first (the first matching line wins). */
  hba?: string[];
  /**
   * Start on this existing data directory (e.g. a restored backup) instead of a new one: the harness copies
   * nothing, gives it to the server OS user, sets mode 0700, and picks its own port and socket directory through
   * command-line options (which override postgresql.conf and postgresql.auto.conf).
   */
  dataDir?: string;
  /** Initialise a new data directory (into `dataDir` when given, which must be empty). @default true when dataDir is absent */
  init?: boolean;
  /** Further directories (e.g. tablespace locations) to give to the server OS user; pg_tblspc links are followed anyway. */
  chownPaths?: string[];
  /**
   * Copy the per-run template made by initdb (fast) instead of running initdb for this cluster. Clusters copied from
   * one template share their system identifier; pass false when a test needs a distinct one. @default true
   */
  template?: boolean;
  /** initdb `--wal-segsize` in MB (a power of two, 1..1024), e.g. 1 for fast WAL tests. @default 16 (initdb's) */
  walSegmentSizeMb?: number;
}

const live = new Set<Cluster>();

/** Clusters this process started and has not destroyed. */
export function liveClusters(): Cluster[] {
  return [...live];
}

/** Destroy every cluster this process started (each test file does this in afterAll). */
export async function destroyAllClusters(): Promise<void> {
  await Promise.allSettled([...live].map((c) => c.destroy()));
}

/** Ask the kernel for a free loopback port. Another process may take it before the server binds: callers retry. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function quoteConnValue(v: string): string {
  return v === '' || /[\s'\\]/.test(v) ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : v;
}

async function pgCtl(binDir: string, args: string[], timeoutMs = 90_000) {
  return run(join(binDir, 'pg_ctl'), args, { asServer: true, timeoutMs });
}

/**
 * initdb plus the harness roles into an empty data directory. The server is started once on a socket only
 * (listen_addresses='') to create the roles, so no TCP port is involved.
 */
async function initDataDir(binDir: string, dataDir: string, workDir: string, walSegmentSizeMb?: number): Promise<void> {
  const segsize = walSegmentSizeMb === undefined ? [] : [`--wal-segsize=${walSegmentSizeMb}`];
  await runOk(
    join(binDir, 'initdb'),
    ['-D', dataDir, '--data-checksums', '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', ...segsize],
    { asServer: true, timeoutMs: 120_000 },
  );
  const sock = join(workDir, 'initsock');
  await mkdir(sock, { recursive: true, mode: 0o755 });
  await chownToServer(sock);
  const log = join(workDir, 'init.log');
  const opts = `-c listen_addresses='' -c unix_socket_directories='${sock}' -c port=5432 -c logging_collector=off`;
  const started = await pgCtl(binDir, ['start', '-D', dataDir, '-l', log, '-w', '-t', '60', '-o', opts]);
  if (started.code !== 0) {
    throw new Error(`bootstrap start of ${dataDir} failed:\n${started.stdout}${started.stderr}\n${safeRead(log)}`);
  }
  const client = new pg.Client({ host: sock, port: 5432, user: SUPERUSER, database: 'postgres' });
  try {
    await client.connect();
    for (const stmt of roleSql()) await client.query(stmt);
  } finally {
    await client.end().catch(() => undefined);
    await runOk(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60'], { asServer: true });
  }
  await rm(sock, { recursive: true, force: true });
}

const templates = new Map<string, Promise<string>>();

/**
 * The run's template data directory for a bin dir: built once per run (initdb + roles) and copied per cluster.
 * Workers are separate processes, so a lock directory (mkdir is atomic) makes one of them build it while the
 * others wait; a lock whose holder died is taken over.
 */
function templateFor(key: string, binDir: string, walSegmentSizeMb?: number): Promise<string> {
  let p = templates.get(key);
  if (!p) {
    p = buildTemplate(key, binDir, walSegmentSizeMb);
    p.catch(() => templates.delete(key));
    templates.set(key, p);
  }
  return p;
}

async function buildTemplate(key: string, binDir: string, walSegmentSizeMb?: number): Promise<string> {
  const dir = join(runRoot(), 'templates', key);
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (existsSync(join(dir, 'ready'))) return join(dir, 'data');
    let locked = false;
    try {
      await mkdir(lock);
      locked = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (locked) {
      try {
        await writeFile(join(lock, 'pid'), String(process.pid));
        if (existsSync(join(dir, 'ready'))) return join(dir, 'data');
        const tmp = `${dir}.${process.pid}.tmp`;
        await rm(tmp, { recursive: true, force: true });
        await mkdir(tmp, { recursive: true, mode: 0o755 });
        await chownToServer(tmp);
        await initDataDir(binDir, join(tmp, 'data'), tmp, walSegmentSizeMb);
        await writeFile(join(tmp, 'ready'), '');
        await rename(tmp, dir);
        return join(dir, 'data');
      } finally {
        await rm(lock, { recursive: true, force: true });
      }
    }
    const holder = Number(safeRead(join(lock, 'pid')));
    if (holder > 0 && !processAlive(holder)) {
      // The builder died (killed worker): its half-built template is discarded with its tmp dir.
      await rm(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for another worker to build template ${dir}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Tablespace directories a data directory links to from pg_tblspc/. */
function tablespaceDirs(dataDir: string): string[] {
  const dir = join(dataDir, 'pg_tblspc');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    try {
      return [realpathSync(join(dir, name))];
    } catch {
      return [];
    }
  });
}

async function giveToServer(path: string): Promise<void> {
  await chownToServer(path, { recursive: true });
  // PostgreSQL refuses a data directory (and tablespace directories) with group/world permissions beyond 0750.
  await chmod(path, 0o700);
}

/**
 * Start a PostgreSQL server for a test: a new cluster from the run's template, or an existing data directory.
 * The server is stopped and its directories removed by {@link Cluster.destroy}, by the test file's afterAll
 * (registered by test/harness/index.ts), or at the latest by global teardown.
 */
export async function startCluster(opts: StartOptions): Promise<Cluster> {
  const flavor = opts.flavor ?? 'embedded';
  if (flavor === 'debian' && opts.major !== DEBIAN_MAJOR) {
    throw new Error(`flavor 'debian' provides PostgreSQL ${DEBIAN_MAJOR} only; asked for ${opts.major}`);
  }
  const init = opts.init ?? opts.dataDir === undefined;
  if (!init && opts.dataDir === undefined) throw new Error('startCluster: init: false needs a dataDir');
  const t0 = Date.now();
  const binDir = await binDirFor(opts.major, flavor);
  const root = runRoot();
  const id = nextId(`${flavor === 'debian' ? 'd' : 'e'}${opts.major}-`);
  const clusterDir = join(root, 'clusters', id);
  await mkdir(clusterDir, { recursive: true, mode: 0o755 });
  await chownToServer(clusterDir);
  const socketDir = join(clusterDir, 's');
  await mkdir(socketDir, { mode: 0o755 });
  await chownToServer(socketDir);
  const logFile = join(clusterDir, 'server.log');
  const dataDir = opts.dataDir ?? join(clusterDir, 'data');
  const ownsDataDir = opts.dataDir === undefined;
  const wantSsl = opts.ssl ?? true;
  const tls = wantSsl || !init ? await ensureTlsMaterial(root) : undefined;

  if (init) {
    if (opts.dataDir !== undefined && existsSync(dataDir) && readdirSync(dataDir).length > 0) {
      throw new Error(`startCluster: init into ${dataDir}, which is not empty`);
    }
    if (opts.template === false) {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      await chownToServer(dataDir);
      await initDataDir(binDir, dataDir, clusterDir, opts.walSegmentSizeMb);
    } else {
      const seg = opts.walSegmentSizeMb === undefined ? '' : `-seg${opts.walSegmentSizeMb}`;
      const template = await templateFor(`${flavor}-${opts.major}${seg}`, binDir, opts.walSegmentSizeMb);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      // cp -a keeps owner and modes (root copying the server user's files leaves them the server user's).
      await runOk('cp', ['-a', `${template}/.`, dataDir]);
      await giveToServer(dataDir);
    }
    const conf = { ...baseConf(wantSsl ? tls : undefined), ...(opts.conf ?? {}) };
    await appendFile(join(dataDir, 'postgresql.conf'), `\n# pgbb test harness\n${renderConf(conf)}\n`);
    await writeFile(join(dataDir, 'pg_hba.conf'), renderHba(opts.hba));
  } else {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) throw new Error(`startCluster: ${dataDir} is not a data directory (no PG_VERSION)`);
    if (opts.conf) await appendFile(join(dataDir, 'postgresql.conf'), `\n# pgbb test harness\n${renderConf(opts.conf)}\n`);
    if (opts.hba) {
      const hbaPath = join(dataDir, 'pg_hba.conf');
      const old = existsSync(hbaPath) ? await readFile(hbaPath, 'utf8') : '';
      await writeFile(hbaPath, `${opts.hba.join('\n')}\n${old}`);
    }
    if (opts.ssl === false) await appendFile(join(dataDir, 'postgresql.conf'), `\nssl = off\n`);
    // Files our tests wrote as root into the restored backup must belong to the server user.
    await giveToServer(dataDir);
    for (const p of new Set([...(opts.chownPaths ?? []), ...tablespaceDirs(dataDir)])) await giveToServer(p);
  }
  const prepareMs = Date.now() - t0;

  let port = 0;
  let pool: pg.Pool | undefined;
  const getPool = () => {
    if (!pool) {
      pool = new pg.Pool({ host: socketDir, port, user: SUPERUSER, database: 'postgres', max: 1 });
      // A restart or an immediate stop kills the idle connection; the pool reconnects on the next query.
      pool.on('error', () => undefined);
    }
    return pool;
  };
  const endPool = async () => {
    const p = pool;
    pool = undefined;
    if (p) await p.end().catch(() => undefined);
  };
  let running = false;

  const startServer = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      if (port === 0 || attempt > 1) port = await freePort();
      // Command-line settings override postgresql.conf and postgresql.auto.conf, which a restored backup carries.
      const o = `-c port=${port} -c unix_socket_directories='${socketDir}' -c listen_addresses='127.0.0.1'`;
      const sizeBefore = safeRead(logFile).length;
      const r = await pgCtl(binDir, ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '120', '-o', o]);
      if (r.code === 0) {
        running = true;
        return;
      }
      const log = safeRead(logFile).slice(sizeBefore);
      // Another process took the port between freePort() and the bind: pick another.
      if (/could not bind|could not create any TCP\/IP sockets|Address already in use/.test(log) && attempt < 8) continue;
      throw new Error(`PostgreSQL ${opts.major} (${flavor}) failed to start on ${dataDir}:\n${r.stdout}${r.stderr}\n--- log ---\n${log}`);
    }
  };

  const entry = { id, dataDir, binDir, workerPid: process.pid };
  await register(entry);
  const t1 = Date.now();
  try {
    await startServer();
  } catch (err) {
    await rm(clusterDir, { recursive: true, force: true });
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    await unregister(id);
    throw err;
  }
  const startMs = Date.now() - t1;

  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await endPool();
    if (!running) return;
    const r = await pgCtl(binDir, ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '120']);
    // pg_ctl exits 1 with "no server running" when it is already gone: that is what we wanted.
    if (r.code !== 0 && !/no server running|PID file .* does not exist/i.test(r.stderr)) {
      throw new Error(`pg_ctl stop -m ${mode} failed for ${dataDir}:\n${r.stdout}${r.stderr}`);
    }
    running = false;
  };

  const cluster: Cluster = {
    major: opts.major,
    version: '',
    versionNum: 0,
    flavor,
    binDir,
    dataDir,
    host: '127.0.0.1',
    port,
    socketDir,
    superuser: 'postgres',
    roles: ROLES,
    tls: wantSsl ? tls : undefined,
    timings: { prepareMs, startMs },
    connectionString(extra = {}) {
      const params: Record<string, string> = {
        host: '127.0.0.1',
        port: String(cluster.port),
        dbname: 'postgres',
        user: ROLES.trust,
        sslmode: 'disable',
        ...extra,
      };
      return Object.entries(params)
        .map(([k, v]) => `${k}=${quoteConnValue(v)}`)
        .join(' ');
    },
    connectionUri(extra = {}) {
      const { user = ROLES.trust, password, host = '127.0.0.1', port: p = String(cluster.port), dbname = 'postgres', ...rest } = extra;
      const params = new URLSearchParams({ sslmode: 'disable', ...rest });
      const auth = encodeURIComponent(user) + (password === undefined ? '' : `:${encodeURIComponent(password)}`);
      // URLSearchParams encodes spaces as '+', which libpq does not decode: use %20.
      return `postgresql://${auth}@${host}:${p}/${encodeURIComponent(dbname)}?${params.toString().replace(/\+/g, '%20')}`;
    },
    // biome-ignore lint/suspicious/noExplicitAny: as declared in Cluster.sql.
    async sql<T = any>(text: string, params?: unknown[]): Promise<T[]> {
      const res = await getPool().query(text, params);
      return res.rows as T[];
    },
    pgBin(tool) {
      const path = join(binDir, tool);
      if (!existsSync(path)) {
        throw new Error(
          `${tool} is not in ${binDir} (the embedded builds ship only initdb, pg_ctl and postgres; use debianBinDir() for client tools)`,
        );
      }
      return path;
    },
    stop,
    async start() {
      if (running) return;
      await startServer();
      cluster.port = port;
    },
    async restart() {
      await stop('fast');
      await cluster.start();
    },
    logText() {
      return safeRead(logFile);
    },
    async destroy() {
      if (!live.delete(cluster)) return;
      try {
        await stop('immediate');
      } finally {
        await rm(clusterDir, { recursive: true, force: true });
        if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
        await unregister(id);
      }
    },
  };
  live.add(cluster);
  try {
    const [row] = await cluster.sql<{ server_version: string; num: string }>(
      "select current_setting('server_version') as server_version, current_setting('server_version_num') as num",
    );
    cluster.version = row!.server_version;
    cluster.versionNum = Number(row!.num);
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  return cluster;
}
