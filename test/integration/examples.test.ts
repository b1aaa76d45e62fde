// Every example in examples/ run as a reader would run it: a child process (node with tsx's
// loader) importing the package by its own name, which resolves through package.json's exports
// to the BUILT dist/ (`npm test` builds first). The assertions are on real outcomes: the plain
// backup starts as a server and holds the rows, the .tar.gz passes gzip -t and restores, the
// listing agrees with the manifest, Ctrl-C and failures give a non-zero exit and leave nothing.
// The examples are also type-checked against the built declarations, and the demo is run.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseManifest } from '../../src/manifest/parse.js';
import { makeTempDir, ROLES, runRoot, startCluster, testMajors, type Cluster } from '../harness/index.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const major = Math.max(...testMajors());
const ROWS = 1234;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ReturnType<typeof spawn>;
  done: Promise<RunResult>;
  /** Output so far. */
  output(): { stdout: string; stderr: string };
}

/** The environment without any PG* variable of the runner, plus `pg`. */
function envWith(pg: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG') || k === 'PGBB_HARNESS_ROOT') env[k] = v;
  return { ...env, ...pg };
}

/** `node --import tsx examples/<name>.ts args...` from the package root, as `npx tsx` would run it. */
function start(name: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', join('examples', name), ...args], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<RunResult>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Polls `cond` (every 20 ms) until it holds; fails after `timeoutMs`. */
async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await vi.waitFor(async () => expect(await cond(), `waiting for ${what}`).toBe(true), { timeout: timeoutMs, interval: 20 });
}

function runExample(name: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs?: number): Promise<RunResult> {
  return start(name, args, env, timeoutMs).done;
}

/** Fails with the child's output, so a broken example says why. */
function expectSuccess(r: RunResult): void {
  if (r.code !== 0) throw new Error(`exit ${String(r.code)} (${String(r.signal)})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

let primary: Cluster;

beforeAll(async () => {
  if (!existsSync(join(root, 'dist/index.d.ts'))) {
    throw new Error('dist/ is missing: the examples import the built package; run `npm run build` (npm test does) first');
  }
  primary = await startCluster({ major });
  await primary.sql(`create table example_rows as select g as id, md5(g::text) as note from generate_series(1, ${ROWS}) g`);
});

afterAll(async () => {
  await primary?.destroy();
});

describe(`examples against PostgreSQL ${major}`, () => {
  it('backup-to-directory.ts (connection string argument, SCRAM) writes a directory a server starts on', async () => {
    const target = join(await makeTempDir('ex-plain'), 'data');
    const conn = primary.connectionString({ user: ROLES.scram, password: ROLES.secret });
    const r = await runExample('backup-to-directory.ts', [conn, target], envWith());
    expectSuccess(r);
    expect(r.stdout).toMatch(/^backup complete in .*: WAL [0-9A-F]+\/[0-9A-F]+ to [0-9A-F]+\/[0-9A-F]+ on timeline 1, \d+ bytes$/m);
    expect(r.stderr).toMatch(/^\d+ kB of \d+ kB \(100%\), archive 1\/1$/m);
    expect(r.stderr).not.toContain(ROLES.secret);
    const wal = await readdir(join(target, 'pg_wal'));
    expect(wal.some((f) => /^[0-9A-F]{24}$/.test(f))).toBe(true);
    expect(wal.some((f) => f.endsWith('.partial'))).toBe(false);
    expect(existsSync(join(target, 'backup_manifest'))).toBe(true);

    const restored = await startCluster({ major, dataDir: target });
    try {
      const [row] = await restored.sql<{ n: string }>('select count(*) as n from example_rows');
      expect(Number(row!.n)).toBe(ROWS);
    } finally {
      await restored.destroy();
    }
  });

  it('stream-tar-to-writable.ts (PG* environment, md5) writes a base.tar.gz that restores on its own', async () => {
    const out = join(await makeTempDir('ex-stream'), 'out');
    const r = await runExample(
      'stream-tar-to-writable.ts',
      [out],
      envWith({
        PGHOST: primary.host,
        PGPORT: String(primary.port),
        PGUSER: ROLES.md5,
        PGPASSWORD: ROLES.secret,
        PGDATABASE: 'postgres',
        PGSSLMODE: 'disable',
      }),
    );
    expectSuccess(r);
    expect(r.stdout).toMatch(/^backup complete in /m);
    expect((await readdir(out)).sort()).toEqual(['backup_manifest', 'base.tar.gz']);

    const gz = join(out, 'base.tar.gz');
    await exec('gzip', ['-t', gz]);
    const { stdout: list } = await exec('tar', ['-tzf', gz], { maxBuffer: 64 * 1024 * 1024 });
    const names = list.split('\n').filter((n) => n !== '');
    expect(names).toContain('backup_label');
    expect(names).toContain('global/pg_control');
    // wal: 'fetch' appended the WAL the backup needs.
    expect(names.some((n) => /^pg_wal\/[0-9A-F]{24}$/.test(n))).toBe(true);
    // Every regular file but the WAL segments is in the manifest (archive_status/*.done too), and nothing else is.
    const manifest = parseManifest(await readFile(join(out, 'backup_manifest')));
    const dataFiles = names.filter((n) => !n.endsWith('/') && !/^pg_wal\/[0-9A-F]{24}$/.test(n));
    expect(new Set(dataFiles)).toEqual(new Set(manifest.files.keys()));

    const data = join(await makeTempDir('ex-stream-restore'), 'data');
    await mkdir(data, { mode: 0o700 });
    await exec('tar', ['-xzf', gz, '-C', data]);
    const restored = await startCluster({ major, dataDir: data });
    try {
      const [row] = await restored.sql<{ n: string }>('select count(*) as n from example_rows');
      expect(Number(row!.n)).toBe(ROWS);
    } finally {
      await restored.destroy();
    }
  });

  it('list-entries.ts prints a tar -tv listing that agrees with the manifest', async () => {
    const r = await runExample('list-entries.ts', [primary.connectionString()], envWith());
    expectSuccess(r);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('# base.tar');
    expect(r.stdout).toMatch(/^-rw------- \S+\/\S+ +8192 \d{4}-\d\d-\d\d \d\d:\d\d global\/pg_control$/m);
    expect(r.stdout).toMatch(/^-rw------- .* backup_label$/m);
    expect(r.stdout).toMatch(/^drwx------ .* base\/$/m);
    expect(r.stdout).toMatch(/^-rw------- .* pg_wal\/[0-9A-F]{24}$/m);
    // Count the listed regular files ourselves and compare with both totals the example prints.
    const listed = lines.filter((l) => l.startsWith('-') && !/ pg_wal\/[0-9A-F]{24}$/.test(l)).length;
    const inArchives = /^(\d+) data files in the archives$/m.exec(r.stdout);
    const inManifest = /^manifest: (\d+) files$/m.exec(r.stdout);
    expect(Number(inArchives?.[1])).toBe(listed);
    expect(Number(inManifest?.[1])).toBe(listed);
    expect(listed).toBeGreaterThan(500);
    expect(r.stderr).toMatch(/^progress: \d+ bytes \(100%\), 1\/1 archives$/m);
  });
});

describe(`examples interrupted mid-transfer, PostgreSQL ${major}`, () => {
  // About 120 MB, so that the transfer lasts long enough (seconds here) for a signal sent at
  // its first bytes to land mid-way; dropped afterwards so the other backups stay small.
  beforeAll(async () => {
    await primary.sql(`create table example_big as select g, repeat(md5(g::text), 30) as pad from generate_series(1, 100000) g`);
  });
  afterAll(async () => {
    await primary?.sql('drop table if exists example_big');
  });

  const cases: { name: string; output: boolean; started: (out: { stdout: string; stderr: string }, target: string) => boolean }[] = [
    // The first progress report comes with the first bytes of base.tar.
    { name: 'backup-to-directory.ts', output: true, started: (o) => / kB of /.test(o.stderr) },
    { name: 'stream-tar-to-writable.ts', output: true, started: (_o, target) => existsSync(join(target, 'base.tar.gz')) },
    { name: 'list-entries.ts', output: false, started: (o) => o.stdout.split('\n').length > 20 },
  ];
  for (const { name, output, started } of cases) {
    it(`${name}: Ctrl-C during the transfer exits 130, removes the output, leaves no slot or walsender`, async () => {
      const target = join(await makeTempDir('ex-int'), 'out');
      const run = start(name, [primary.connectionString(), ...(output ? [target] : [])], envWith());
      await waitFor(`${name} to start receiving`, () => started(run.output(), target) || run.child.exitCode !== null);
      run.child.kill('SIGINT');
      const r = await run.done;
      if (r.code !== 130) throw new Error(`exit ${String(r.code)}\nstdout:\n${r.stdout.slice(-2000)}\nstderr:\n${r.stderr}`);
      expect(r.stderr).toMatch(/^interrupted: the backup was stopped/m);
      expect(r.stdout).not.toMatch(/^(backup complete|manifest:)/m);
      if (output) expect(existsSync(target)).toBe(false);
      // The temporary slot (wal: 'stream') dies with its connection; no walsender stays behind.
      await waitFor(
        'the walsenders to exit',
        async () => Number((await primary.sql<{ n: string }>('select count(*) as n from pg_stat_replication'))[0]!.n) === 0,
        10_000,
      );
      expect(await primary.sql('select slot_name from pg_replication_slots')).toEqual([]);
    });
  }
});

describe('examples on failure', () => {
  let server: Server;
  let port = 0;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    // Accepts and never answers: the examples wait in the startup exchange until interrupted.
    server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    port = typeof addr === 'object' && addr ? addr.port : 0;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const cases = [
    { name: 'backup-to-directory.ts', output: true },
    { name: 'stream-tar-to-writable.ts', output: true },
    { name: 'list-entries.ts', output: false },
  ];
  for (const { name, output } of cases) {
    it(`${name}: Ctrl-C aborts, exits 130 and leaves no output`, async () => {
      const target = join(await makeTempDir('ex-sigint'), 'out');
      const connected = once(server, 'connection');
      const run = start(name, [`host=127.0.0.1 port=${port} user=u sslmode=disable`, ...(output ? [target] : [])], envWith());
      await connected;
      run.child.kill('SIGINT');
      const r = await run.done;
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/^interrupted: the backup was stopped/m);
      expect(r.stdout).toBe('');
      if (output) expect(existsSync(target)).toBe(false);
    });

    it(`${name}: a connection failure exits 1 with the error code`, async () => {
      // A port nothing listens on (the fake server's, closed for this: take a fresh one).
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const addr = probe.address();
      const deadPort = typeof addr === 'object' && addr ? addr.port : 0;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const target = join(await makeTempDir('ex-fail'), 'out');
      const r = await runExample(name, [`host=127.0.0.1 port=${deadPort} user=u sslmode=disable`, ...(output ? [target] : [])], envWith());
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/failed: ERR_PGBB_CONNECTION: /);
      if (output) expect(existsSync(target)).toBe(false);
    });
  }
});

describe('examples typecheck', () => {
  it('tsc -p examples/tsconfig.json passes against the built declarations', async () => {
    // tsx strips types without checking them: this is what keeps the examples honest about the API.
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const r = await exec(process.execPath, [tsc, '-p', 'examples/tsconfig.json'], { cwd: root }).catch(
      (err: { stdout?: string; stderr?: string }) => {
        throw new Error(`tsc failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      },
    );
    expect(r.stdout).toBe('');
  }, 90_000);
});

describe('npm run demo (examples/demo.ts)', () => {
  it('archives WAL into a repository, backs up under concurrent commits, rehearses, reports status OK, leaves nothing', async () => {
    // The demo starts its own server through the harness; it inherits this run's root.
    const r = await runExample('demo.ts', [], envWith(), 110_000);
    expectSuccess(r);
    expect(r.stdout).toMatch(/^ {2}✓ the receiver stored [1-9]\d* segments and stopped cleanly$/m);
    expect(r.stdout).toMatch(/^ {2}rehearsal of backup \S+: passed in /m);
    expect(r.stdout).toMatch(/^ {2}recovery time: [\d.]+ s \(restore [\d.]+ s, replay [\d.]+ s\)$/m);
    expect(r.stdout).toMatch(/^ {2}recovery point: \d{4}-\d\d-\d\dT[\d:.]+Z at [0-9A-F]+\/[0-9A-F]+, /m);
    // The demo's own checks ran inside the rehearsal: the replayed data equals the primary's.
    expect(r.stdout).toMatch(/^ {4}✓ sql-checks .* 2 of 2 checks returned true$/m);
    expect(r.stdout).toMatch(
      /^ {2}✓ every step of the rehearsal passed; its SQL checks found [1-9]\d* ticks and the accounts' digest [0-9a-f]{32}, as on the primary$/m,
    );
    expect(r.stdout).toMatch(/^ {2}✓ status OK \(exit code 0\), OK expected$/m);
    expect(r.stdout).toMatch(/^ {4}PGBB OK - all checks passed \| /m);
    expect(r.stdout).toMatch(/^ {4}OK: rehearsal: last rehearsal \S+ of \S+ .* passed/m);
    expect(r.stdout).toMatch(/^ {4}pgbb_rehearsal_last_success 1$/m);
    expect(r.stdout).toMatch(/^• cleaned up: receiver stopped, slot dropped, server and temporary directories removed$/m);
    expect(r.stdout).toMatch(/^demo: every check passed$/m);
    expect(r.stderr).toBe('');
    // The repository, the spool and the rehearsal's work directory were removed.
    expect((await readdir(join(runRoot(), 'tmp'))).filter((n) => n.startsWith('demo-'))).toEqual([]);
  }, 120_000);
});
