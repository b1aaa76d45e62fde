import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emergencyCleanup, formatRehearsalReport, parseDuration, parseRehearseCommandLine } from '../../../src/cli/rehearse.js';
import type { RehearsalResult } from '../../../src/entries/rehearse.js';

describe('pgbb rehearse command line', () => {
  it('maps every option to the library options', () => {
    const line = parseRehearseCommandLine([
      '/b',
      '--wal-archive',
      '/w',
      '--target-time',
      '2026-01-31 12:00:00.25+01',
      '--pg-bin',
      '/pg/bin',
      '--run-as',
      'postgres',
      '--check-sql',
      '/c.sql',
      '--timeout',
      '30m',
      '--keep-on-failure',
      '--json',
    ]);
    expect(line).toEqual({
      kind: 'run',
      options: {
        source: { kind: 'directory', backupDir: '/b', walArchive: '/w' },
        rehearsal: {
          target: { kind: 'time', time: new Date('2026-01-31T11:00:00.250Z'), microsecond: 0 },
          pgBin: '/pg/bin',
          runAs: 'postgres',
          timeoutMs: 1_800_000,
          keepOnFailure: true,
        },
        checkSqlFile: '/c.sql',
        json: true,
        verbose: 0,
      },
    });
  });

  it('rehearses a repository backup without a backup directory operand', () => {
    const line = parseRehearseCommandLine(['--repo', '/r', '--backup', '20261206-033800.123F', '--target-time', '2026-01-01 00:00:00+00']);
    expect(line).toMatchObject({
      kind: 'run',
      options: {
        source: { kind: 'repository', backupId: '20261206-033800.123F' },
        rehearsal: { target: { kind: 'time', time: new Date('2026-01-01T00:00:00Z') } },
        repo: '/r',
      },
    });
    // The repository may come from PGBB_REPO, resolved when the command runs.
    expect(parseRehearseCommandLine([])).toMatchObject({
      options: { source: { kind: 'repository', backupId: undefined }, repo: undefined },
    });
  });

  it('refuses contradictions and a target without an archive', () => {
    expect(() => parseRehearseCommandLine(['--repo', '/r', '--wal-archive', '/w'])).toThrow(/--wal-archive needs BACKUP/);
    expect(() => parseRehearseCommandLine(['/b', '--backup', 'x'])).toThrow(/give it without BACKUP/);
    expect(() =>
      parseRehearseCommandLine(['/b', '--wal-archive', '/w', '--target-time', '2026-01-01 00:00:00+00', '--end-of-archive']),
    ).toThrow(/not both/);
    expect(() => parseRehearseCommandLine(['/b', '--target-time', '2026-01-01 00:00:00+00'])).toThrow(/needs --wal-archive/);
  });

  it('parses durations', () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
    expect(() => parseDuration('0s')).toThrow(/invalid duration/);
  });
});

describe('the rehearsal report', () => {
  it('lists every step with its problems, then the figures', () => {
    const r: RehearsalResult = {
      ok: false,
      major: 17,
      startedAt: '2026-01-31T12:00:00.000Z',
      durationMs: 12_345,
      timedOut: false,
      keptDir: '/tmp/pgbb-rehearsal-x',
      figures: {
        restoreMs: 1000,
        replayMs: 2000,
        recoveryMs: 3000,
        walBytes: 4096,
        replayLsn: '0/3000100',
        lastTransactionTime: '2026-01-31T11:59:00.000000Z',
        backupStartLsn: '0/2000028',
      },
      steps: [
        { name: 'restore', status: 'passed', durationMs: 1000, detail: 'tar backup restored' },
        {
          name: 'read-tables',
          status: 'failed',
          durationMs: 50,
          detail: '3 tables read',
          problems: ['postgres: dmg: invalid page in block 1'],
        },
        { name: 'checksums', status: 'skipped', durationMs: 0, detail: 'the cluster has no data checksums' },
      ],
    };
    expect(formatRehearsalReport(r)).toBe(
      [
        'pgbb rehearse: FAILED (PostgreSQL 17) in 12.3 s',
        '  restore      passed     1.0 s  tar backup restored',
        '  read-tables  failed     0.1 s  3 tables read',
        '      postgres: dmg: invalid page in block 1',
        '  checksums    skipped    0.0 s  the cluster has no data checksums',
        'recovery time: 3.0 s (restore 1.0 s + replay 2.0 s)',
        'WAL replayed: 4096 bytes, from 0/2000028 to 0/3000100',
        'recovery point (last replayed transaction): 2026-01-31T11:59:00.000000Z',
        'the scratch directory is kept in /tmp/pgbb-rehearsal-x: remove it when done',
        '',
      ].join('\n'),
    );
  });
});

describe('the emergency cleanup of a second interrupt', () => {
  it('signals the server to stop at once and removes the scratch directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgbb-rehearse-unit-'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'PG_VERSION'), '17\n');
    // Stands in for the postmaster: SIGQUIT ends it as it ends a postmaster's immediate shutdown.
    const server = spawn('sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => server.on('exit', (_code, signal) => resolve(signal)));
    const r = emergencyCleanup({ scratchDir: dir, serverPid: server.pid });
    expect(r.removed).toEqual([dir]);
    expect(r.notes).toEqual([`the rehearsal's server (pid ${server.pid}) was told to stop at once`]);
    expect(existsSync(dir)).toBe(false);
    expect(await exited).toBe('SIGQUIT');
    expect(emergencyCleanup(undefined)).toEqual({ removed: [], failed: [] });
  });
});
