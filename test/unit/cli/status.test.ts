// pgbb status and pgbb metrics as the runner drives them, over a local-directory repository written with
// the library (no server: the identify call is the CLI library seam): arguments, exit codes (3 for bad
// arguments and an empty repository), -d asking the server and an unreachable server, the text format.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../../../src/cli/context.js';
import { runCli } from '../../../src/cli/run.js';
import { parseStatusCommandLine } from '../../../src/cli/status.js';
import { openRepository } from '../../../src/repository/repository.js';
import { walSegmentKey } from '../../../src/repository/wal-keys.js';
import { segmentFileName } from '../../../src/wal-segments.js';
import { parsePrometheusText } from '../status/prometheus-parser.js';
import { backup, SEG } from '../status/fixtures.js';

function context(identify: CliContext['lib']['identify']) {
  const out = { stdout: '', stderr: '' };
  const ctx: CliContext = {
    stdout: { write: (s: string | Uint8Array) => (out.stdout += String(s)) },
    stderr: { write: (s: string) => (out.stderr += s), isTTY: false },
    stdin: { isTTY: false, on: () => undefined, removeListener: () => undefined } as unknown as CliContext['stdin'],
    env: {},
    signal: new AbortController().signal,
    version: '9.9.9',
    lib: {
      identify,
      backup: async () => {
        throw new Error('not called');
      },
    },
    now: () => 0,
  };
  return { ctx, out };
}

const noServer = async (): Promise<never> => {
  throw new Error('could not connect to server: connection refused');
};

/** A repository with a backup that ended an hour ago and segments 2..5 archived. */
async function repository(): Promise<string> {
  const address = join(mkdtempSync(join(tmpdir(), 'pgbb-status-')), 'repo');
  await using repo = await openRepository(address);
  await repo.claim({ systemIdentifier: '7443990000000000001', majorVersion: 17, walSegmentSize: SEG });
  const b = backup(3_600_000, 2);
  await repo.commitBackup({ ...b, endTime: new Date(Date.now() - 3_600_000), startTime: new Date(Date.now() - 3_660_000) });
  for (let n = 2n; n <= 5n; n++) await repo.storage.put(walSegmentKey(segmentFileName(1, n, SEG)), Buffer.from('segment'));
  return address;
}

describe('pgbb status', () => {
  it('parses thresholds and the connection; bad arguments exit 3 (UNKNOWN)', async () => {
    expect(parseStatusCommandLine(['--repo', '/r', '--max-backup-age', '1d12h', '--max-wal-age', '30m', '-d', 'host=x'])).toEqual({
      kind: 'run',
      options: {
        repo: '/r',
        connection: { connectionString: 'host=x', passwordPrompt: 'auto' },
        json: false,
        thresholds: { maxBackupAgeMs: 129_600_000, maxWalAgeMs: 1_800_000 },
      },
    });
    const { ctx, out } = context(noServer);
    expect(await runCli(['status', '--repo', '/r', '--max-backup-age', 'soon'], ctx)).toBe(3);
    expect(out.stderr).toMatch(/invalid duration "soon"/);
    expect(await runCli(['status'], context(noServer).ctx)).toBe(3);
  });

  it('an empty repository is UNKNOWN (3)', async () => {
    const { ctx, out } = context(noServer);
    const address = join(mkdtempSync(join(tmpdir(), 'pgbb-status-')), 'repo');
    expect(await runCli(['status', '--repo', address], ctx)).toBe(3);
    expect(out.stdout).toBe(
      `PGBB UNKNOWN - repository UNKNOWN\nUNKNOWN: repository: nothing has been stored in ${address} yet: is the address right?\n`,
    );
  });

  it('asks the server with -d: the lag in bytes, and UNKNOWN when the server cannot be reached', async () => {
    const address = await repository();
    const reached = context(async () => ({
      systemId: '7443990000000000001',
      timeline: 1,
      xlogPos: '0/6000100',
      dbName: null,
      serverVersion: '17.2',
      serverVersionNum: 170002,
    }));
    expect(await runCli(['status', '--repo', address, '-d', 'host=db1 password=secret', '--max-backup-age', '1d'], reached.ctx)).toBe(0);
    expect(reached.out.stdout).toMatch(/^OK: wal-lag: server at 0\/6000100 \(timeline 1\), archive ends at 0\/6000000: 256 bytes behind$/m);
    const failed = context(noServer);
    expect(await runCli(['status', '--repo', address, '-d', 'host=db1 password=secret', '--json'], failed.ctx)).toBe(3);
    const report = JSON.parse(failed.out.stdout) as { state: string; checks: { name: string; state: string; message: string }[] };
    expect(report.state).toBe('UNKNOWN');
    expect(report.checks.find((c) => c.name === 'wal-lag')).toEqual({
      name: 'wal-lag',
      state: 'UNKNOWN',
      message: "the server's WAL position is not known: could not connect to server: connection refused",
    });
    expect(report.checks.filter((c) => c.state !== 'OK').map((c) => c.name)).toEqual(['wal-lag']);
    expect(failed.out.stdout + failed.out.stderr).not.toContain('secret');
  });
});

describe('pgbb metrics', () => {
  it('prints the Prometheus text format', async () => {
    const address = await repository();
    const { ctx, out } = context(noServer);
    expect(await runCli(['metrics', '--repo', address], ctx)).toBe(0);
    const families = parsePrometheusText(out.stdout);
    expect(families.get('pgbb_backups')?.samples).toEqual([
      { labels: { type: 'full' }, value: 1 },
      { labels: { type: 'incremental' }, value: 0 },
    ]);
    expect(families.get('pgbb_wal_archive_segments')?.samples).toEqual([{ labels: {}, value: 4 }]);
    expect(families.get('pgbb_wal_archive_lag_bytes')?.samples).toEqual([]);
  });
});
