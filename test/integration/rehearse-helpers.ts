// Shared by the rehearse integration tests (rehearse.test.ts, rehearse-cli.test.ts, rehearse-damage.test.ts):
// a source cluster archiving into a directory, a backup taken with the CLI,
// a copy of the archive with a hole, and the checks that a rehearsal left nothing running or on disk.
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import type { RehearsalResult } from '../../src/rehearse/types.js';
import { atomicArchiveCommand, makeTempDir, serverIdentity, startCluster, TEST_OS_USER, type Cluster } from '../harness/index.js';
import { runPgbb, type ServerPgbb } from '../harness/pgbb-cli.js';

/** A primary with 1 MB segments whose archive_command copies each completed segment into `archive`. */
export async function archivingCluster(major: number): Promise<{ cluster: Cluster; archive: string }> {
  const archive = await makeTempDir('archive');
  const cluster = await startCluster({
    major,
    walSegmentSizeMb: 1,
    ssl: false,
    conf: { archive_mode: 'on', archive_command: atomicArchiveCommand(archive) },
  });
  return { cluster, archive };
}

/**
 * Waits until the segment before the current one is in `archive` (so is every earlier one: the archiver
 * goes in order); returns the name of the current segment, which is not archived yet.
 */
export async function waitArchivedBeforeCurrent(c: Cluster, archive: string): Promise<string> {
  const [row] = await c.sql<{ cur: string; prev: string }>(
    'SELECT pg_walfile_name(pg_current_wal_lsn()) AS cur, pg_walfile_name(pg_current_wal_lsn() - 1024 * 1024) AS prev',
  );
  const { cur, prev } = row!;
  await vi.waitFor(() => expect(existsSync(join(archive, prev)), `${prev} archived`).toBe(true), { timeout: 60_000, interval: 100 });
  expect(cur > prev).toBe(true);
  return cur;
}

/** `pgbb backup -d C -D NEWDIR -c fast ARGS`, which must succeed without an error message; returns NEWDIR. */
export async function cliBackup(runnable: ServerPgbb, c: Cluster, args: readonly string[]): Promise<string> {
  const dir = await makeTempDir('backup');
  const r = await runPgbb(runnable, ['backup', '-d', c.connectionString(), '-D', dir, '-c', 'fast', ...args]);
  expect(r.stderr).not.toMatch(/error/i);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

/**
 * A copy of `archive` without the segment that follows the backup's own (the one its `.backup` history
 * file names): a hole between the backup and the end of the archive.
 */
export async function archiveWithHole(archive: string): Promise<{ holed: string; missing: string }> {
  const holed = await makeTempDir('holed-archive');
  const names = readdirSync(archive)
    .filter((n) => /^[0-9A-F]{24}$/.test(n))
    .sort();
  const label = readdirSync(archive).find((n) => n.endsWith('.backup'));
  expect(label).toBeDefined();
  const missing = names.find((n) => n > label!.slice(0, 24));
  expect(missing).toBeDefined();
  // The hole lies inside the archive: a later segment is there.
  expect(names.at(-1)! > missing!).toBe(true);
  for (const n of readdirSync(archive)) if (n !== missing) copyFileSync(join(archive, n), join(holed, n));
  return { holed, missing: missing! };
}

/** Processes whose command line names `dir` (a server of the scratch directory would). */
export function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(dir)) found.push(`${pid}: ${cmd}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** No process of the scratch directory runs, and the directory is empty. */
export function expectNothingLeft(workDir: string): void {
  expect(processesUnder(workDir)).toEqual([]);
  expect(readdirSync(workDir)).toEqual([]);
}

/** The step of a rehearsal result by name. */
export function stepOf(r: RehearsalResult, name: string): RehearsalResult['steps'][number] | undefined {
  return r.steps.find((s) => s.name === name);
}

/**
 * The flags that run a rehearsal's server from the test cluster's binaries, as the unprivileged test
 * user when the tests run as root, with its scratch directory and timeout:
 * `--pg-bin DIR [--run-as USER] --scratch-dir SCRATCH --timeout TIMEOUT`.
 */
export function rehearsalServerFlags(c: Cluster, scratch: string, timeout: string): string[] {
  return ['--pg-bin', c.binDir, ...(serverIdentity() ? ['--run-as', TEST_OS_USER] : []), '--scratch-dir', scratch, '--timeout', timeout];
}
