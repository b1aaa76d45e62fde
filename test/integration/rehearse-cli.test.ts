// pgbb rehearse on the command line against real servers: a passing rehearsal exits 0 with its result
// as JSON; a hole in the archive exits 1 with a report naming the missing segment; --help lists the
// options. Nothing is left in the scratch directory either way.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, serverIdentity, TEST_OS_USER, type Cluster } from '../harness/index.js';
import { pgbbForFile, runPgbb } from '../harness/pgbb-cli.js';
import { WAL_MAJORS_15_17, walTestMajors } from './receive-wal-helpers.js';
import { archiveWithHole, archivingCluster, cliBackup, processesUnder, waitArchivedBeforeCurrent } from './rehearse-helpers.js';

const majors = walTestMajors(WAL_MAJORS_15_17);
const pgbb = pgbbForFile({ forServer: true });
const runAs = serverIdentity() ? ['--run-as', TEST_OS_USER] : [];

it('pgbb rehearse --help lists its options', async () => {
  const r = await runPgbb(pgbb(), ['rehearse', '--help']);
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
  /** `rehearse BACKUP --wal-archive WAL --pg-bin DIR [--run-as USER] --scratch-dir SCRATCH ARGS`. */
  const rehearseArgs = (walArchive: string, scratch: string, args: string[] = []) => [
    'rehearse',
    backupDir,
    '--wal-archive',
    walArchive,
    '--pg-bin',
    c.binDir,
    ...runAs,
    '--scratch-dir',
    scratch,
    ...args,
  ];
  const rehearseCli = (walArchive: string, scratch: string, args: string[] = []) =>
    runPgbb(pgbb(), rehearseArgs(walArchive, scratch, args));

  beforeAll(async () => {
    ({ cluster: c, archive } = await archivingCluster(major));
    await c.sql('CREATE TABLE t (n int PRIMARY KEY)');
    await c.sql('INSERT INTO t SELECT generate_series(1, 1000)');
    backupDir = await cliBackup(pgbb(), c, ['-Ft', '-X', 'none']);
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
    await waitArchivedBeforeCurrent(c, archive);
  }, 120_000);

  it('exits 0 with the result as JSON when every step passes', async () => {
    const scratch = await makeTempDir('scratch');
    const checks = join(await makeTempDir('checks'), 'checks.sql');
    writeFileSync(checks, 'SELECT count(*) = 2998 FROM t;\n');
    const r = await rehearseCli(archive, scratch, ['--check-sql', checks, '--timeout', '80s', '--json']);
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
    const { holed, missing } = await archiveWithHole(archive);
    const scratch = await makeTempDir('scratch');
    const r = await rehearseCli(holed, scratch);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^pgbb rehearse: FAILED/);
    expect(r.stdout).toMatch(new RegExp(`failed .*${missing} is missing`));
    expect(readdirSync(scratch)).toEqual([]);
    // With a target after the hole, the restore's pre-flight refuses it, naming the segment too.
    const t = await rehearseCli(holed, scratch, ['--target-time', between, '--json']);
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
    const r = await rehearseCli(archive, scratch, ['--target-time', between, '--check-sql', checks, '--json']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { figures: { lastTransactionTime: string } };
    expect(Date.parse(done.figures.lastTransactionTime)).toBeLessThanOrEqual(Date.parse(between.replace(' ', 'T').replace('+00', 'Z')));
    expect(readdirSync(scratch)).toEqual([]);
  }, 60_000);

  it('--timeout fails the rehearsal and cleans up', async () => {
    const scratch = await makeTempDir('scratch');
    const r = await rehearseCli(archive, scratch, ['--timeout', '1ms']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('the rehearsal ran out of time (--timeout)');
    expect(r.stdout).toMatch(/failed .*timed out after 1 ms/);
    expect(readdirSync(scratch)).toEqual([]);
  }, 60_000);

  it('SIGINT during replay stops the server and leaves nothing behind', async () => {
    const scratch = await makeTempDir('scratch');
    const child = spawn(pgbb().node, [pgbb().cli, ...rehearseArgs(archive, scratch, ['-v'])], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
    expect(processesUnder(scratch)).toEqual([]);
  }, 60_000);
});
