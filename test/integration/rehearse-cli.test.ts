// pgbb rehearse on the command line against real servers: a passing rehearsal exits 0 with its result
// as JSON; a hole in the archive exits 1 with a report naming the missing segment; --help lists the
// options. Nothing is left in the scratch directory either way.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { atomicArchiveCommand, makeTempDir, serverIdentity, startCluster, TEST_OS_USER, type Cluster } from '../harness/index.js';
import { pgbbForServer, runPgbb, type ServerPgbb } from '../harness/pgbb-cli.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const majors = walTestMajors(WAL_MAJORS_15_17);
let runnable: ServerPgbb;
const runAs = serverIdentity() ? ['--run-as', TEST_OS_USER] : [];

beforeAll(async () => {
  if (!existsSync(join(root, 'dist/cli/main.js'))) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'pipe' });
  runnable = await pgbbForServer(root);
}, 180_000);

it('pgbb rehearse --help lists its options', async () => {
  const r = await runPgbb(runnable, ['rehearse', '--help']);
  expect(r.code).toBe(0);
  for (const o of [
    '--wal-archive',
    '--target-time',
    '--end-of-archive',
    '--pg-bin',
    '--run-as',
    '--check-sql',
    '--timeout',
    '--keep-on-failure',
    '--json',
  ]) {
    expect(r.stdout).toContain(o);
  }
});

describe.each(majors)('pgbb rehearse on PostgreSQL %i', (major) => {
  let c: Cluster;
  let archive: string;
  let backupDir: string;
  /** A time between the two batches written after the backup. */
  let between: string;

  beforeAll(async () => {
    archive = await makeTempDir('archive');
    c = await startCluster({
      major,
      walSegmentSizeMb: 1,
      ssl: false,
      conf: { archive_mode: 'on', archive_command: atomicArchiveCommand(archive) },
    });
    await c.sql('CREATE TABLE t (n int PRIMARY KEY)');
    await c.sql('INSERT INTO t SELECT generate_series(1, 1000)');
    backupDir = await makeTempDir('backup');
    const b = await runPgbb(runnable, ['backup', '-d', c.connectionString(), '-D', backupDir, '-Ft', '-X', 'none', '-c', 'fast']);
    expect(b.code, b.stderr).toBe(0);
    for (let i = 0; i < 2; i++) {
      await c.sql('INSERT INTO t SELECT generate_series(2001 + 1000 * $1::int, 2999 + 1000 * $1::int)', [i]);
      await c.sql('SELECT pg_switch_wal()');
      if (i === 0) {
        const [row] = await c.sql<{ t: string }>(
          "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t",
        );
        between = row!.t;
      }
    }
    const [prev] = await c.sql<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn() - 1024 * 1024) AS f');
    await vi.waitFor(() => expect(existsSync(join(archive, prev!.f))).toBe(true), { timeout: 60_000, interval: 100 });
  }, 120_000);

  it('exits 0 with the result as JSON when every step passes', async () => {
    const scratch = await makeTempDir('scratch');
    const checks = join(await makeTempDir('checks'), 'checks.sql');
    writeFileSync(checks, 'SELECT count(*) = 2998 FROM t;\n');
    const r = await runPgbb(runnable, [
      'rehearse',
      backupDir,
      '--wal-archive',
      archive,
      '--pg-bin',
      c.binDir,
      ...runAs,
      '--check-sql',
      checks,
      '--timeout',
      '80s',
      '--scratch-dir',
      scratch,
      '--json',
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const done = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e['event'] === 'done')!;
    expect(done).toMatchObject({ ok: true, major, timedOut: false });
    expect((done['steps'] as { name: string; status: string }[]).find((s) => s.name === 'sql-checks')).toMatchObject({ status: 'passed' });
    expect((done['figures'] as { walBytes: number }).walBytes).toBeGreaterThan(1024 * 1024);
    expect(readdirSync(scratch)).toEqual([]);
  }, 90_000);

  it('exits 1 with a report naming the missing segment when the archive has a hole', async () => {
    const holed = await makeTempDir('holed');
    const names = readdirSync(archive)
      .filter((n) => /^[0-9A-F]{24}$/.test(n))
      .sort();
    const label = readdirSync(archive).find((n) => n.endsWith('.backup'))!;
    const missing = names.find((n) => n > label.slice(0, 24))!;
    for (const n of readdirSync(archive)) if (n !== missing) copyFileSync(join(archive, n), join(holed, n));
    const scratch = await makeTempDir('scratch');
    const r = await runPgbb(runnable, [
      'rehearse',
      backupDir,
      '--wal-archive',
      holed,
      '--pg-bin',
      c.binDir,
      ...runAs,
      '--scratch-dir',
      scratch,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^pgbb rehearse: FAILED/);
    expect(r.stdout).toMatch(new RegExp(`failed .*${missing} is missing`));
    expect(readdirSync(scratch)).toEqual([]);
    // With a target after the hole, the restore's pre-flight refuses it, naming the segment too.
    const t = await runPgbb(runnable, [
      'rehearse',
      backupDir,
      '--wal-archive',
      holed,
      '--target-time',
      between,
      '--pg-bin',
      c.binDir,
      ...runAs,
      '--scratch-dir',
      scratch,
      '--json',
    ]);
    expect(t.code).toBe(1);
    const done = JSON.parse(t.stdout.trim().split('\n').at(-1)!) as { steps: { name: string; status: string; error?: unknown }[] };
    expect(done.steps.find((s) => s.status === 'failed')).toMatchObject({
      name: 'restore',
      error: { code: 'ERR_PGBB_REHEARSAL', missingSegment: missing },
    });
    expect(readdirSync(scratch)).toEqual([]);
  }, 60_000);

  it('--target-time replays to the first commit after the time and promotes there', async () => {
    const scratch = await makeTempDir('scratch');
    const checks = join(await makeTempDir('checks'), 'checks.sql');
    writeFileSync(checks, 'SELECT count(*) = 1999 FROM t;\n');
    const r = await runPgbb(runnable, [
      'rehearse',
      backupDir,
      '--wal-archive',
      archive,
      '--target-time',
      between,
      '--pg-bin',
      c.binDir,
      ...runAs,
      '--check-sql',
      checks,
      '--scratch-dir',
      scratch,
      '--json',
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { figures: { lastTransactionTime: string } };
    expect(Date.parse(done.figures.lastTransactionTime)).toBeLessThanOrEqual(Date.parse(between.replace(' ', 'T').replace('+00', 'Z')));
    expect(readdirSync(scratch)).toEqual([]);
  }, 60_000);

  it('--timeout fails the rehearsal and cleans up', async () => {
    const scratch = await makeTempDir('scratch');
    const r = await runPgbb(runnable, [
      'rehearse',
      backupDir,
      '--wal-archive',
      archive,
      '--pg-bin',
      c.binDir,
      ...runAs,
      '--timeout',
      '1ms',
      '--scratch-dir',
      scratch,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('the rehearsal ran out of time (--timeout)');
    expect(r.stdout).toMatch(/failed .*timed out after 1 ms/);
    expect(readdirSync(scratch)).toEqual([]);
  }, 60_000);

  it('SIGINT during replay stops the server and leaves nothing behind', async () => {
    const scratch = await makeTempDir('scratch');
    const child = spawn(
      runnable.node,
      [runnable.cli, 'rehearse', backupDir, '--wal-archive', archive, '--pg-bin', c.binDir, ...runAs, '--scratch-dir', scratch, '-v'],
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    let pid: string | undefined;
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /start: passed: postgres started \(pid (\d+)\)/.exec(stderr);
      if (m && pid === undefined) {
        pid = m[1];
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(pid, stderr).toBeDefined();
    expect(code).not.toBe(0);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(readdirSync(scratch)).toEqual([]);
    // No process of the scratch directory is left either.
    for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      expect(cmd.includes(scratch), cmd).toBe(false);
    }
  }, 60_000);
});
