// The command lines of `pgbb expire` and `pgbb verify --repo`, and expire's text report.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/args.js';
import { formatExpiry, parseExpireCommandLine } from '../../../src/cli/expire.js';
import { parseVerifyCommandLine } from '../../../src/cli/verify.js';
import type { ExpiryJson } from '../../../src/repository/expiry-json.js';

describe('pgbb expire arguments', () => {
  it('takes exactly one policy', () => {
    expect(parseExpireCommandLine(['--repo', '/r', '--retain-full', '2'])).toEqual({
      kind: 'run',
      options: { repo: '/r', policy: { retainFull: 2 }, dryRun: false, json: false },
    });
    expect(parseExpireCommandLine(['--retain-window', '1d12h', '--dry-run', '--json'])).toEqual({
      kind: 'run',
      options: { repo: undefined, policy: { retainWindowMs: 129_600_000 }, dryRun: true, json: true },
    });
    expect(() => parseExpireCommandLine(['--repo', '/r'])).toThrow(UsageError);
    expect(() => parseExpireCommandLine(['--retain-full', '1', '--retain-window', '7d'])).toThrow(/exactly one/);
    expect(() => parseExpireCommandLine(['--retain-full', '0'])).toThrow(UsageError);
    expect(() => parseExpireCommandLine(['--retain-window', '7'])).toThrow(/invalid duration/);
  });

  it('prints what it removes and the window before and after', () => {
    const report: ExpiryJson = {
      repository: '/r',
      dryRun: true,
      policy: { retainFull: 1 },
      removedBackups: [
        {
          id: '20261206-033800.123F',
          type: 'full',
          parent: null,
          status: 'complete',
          startTime: '2026-12-06T03:38:00.123Z',
          endTime: '2026-12-06T03:39:10.456Z',
          startLsn: '0/2000028',
          endLsn: '0/2000138',
          timeline: 1,
          endTimeline: 1,
          postgresVersion: '17.2',
          systemIdentifier: '1',
          originalSize: 1,
          storedSize: 1,
          compression: 'none',
          durationMs: 1,
          wal: 'stream',
          label: 'x',
        },
      ],
      keptBackups: ['20261207-033800.123F'],
      removedUncommitted: [],
      removedWal: [
        {
          timeline: 1,
          firstSegment: '000000010000000000000001',
          lastSegment: '000000010000000000000004',
          segments: 4,
          gaps: [],
          history: false,
        },
      ],
      removedRehearsals: [
        { id: '20261206-050000.000R', backupId: '20261206-033800.123F' },
        { id: '20261206-060000.000R', backupId: '20261206-033800.123F' },
      ],
      removedFailures: ['20261205-033800.000F'],
      unreadableHistory: [
        { key: 'failures/20261204-033800.000F.json', reason: 'not JSON', removed: true },
        { key: 'rehearsals/20261204-050000.000R.json', reason: 'not JSON', removed: false },
      ],
      before: { pitrWindow: { from: { time: '2026-12-06T03:39:10.456Z', lsn: '0/2000138', timeline: 1 }, to: null }, walArchive: [] },
      after: {
        pitrWindow: {
          from: { time: '2026-12-07T03:39:10.456Z', lsn: '0/5000138', timeline: 1 },
          to: { time: '2026-12-07T09:12:41.020Z', lsn: '0/9000000', timeline: 1 },
        },
        walArchive: [],
      },
    };
    expect(formatExpiry(report)).toBe(
      [
        'would remove backup 20261206-033800.123F (full, ended 2026-12-06 03:39:10Z)',
        'would remove 4 WAL segments of timeline 1: 000000010000000000000001 to 000000010000000000000004',
        'would remove 2 rehearsal records (of backups no longer kept: 20261206-033800.123F)',
        'would remove 1 failed-run record older than the oldest backup kept',
        'would remove 1 unreadable failed-run record older than the oldest backup kept, judged by key',
        '1 backups kept',
        'kept 1 unreadable history record (see the warnings)',
        'point-in-time window before: from 2026-12-06 03:39:10Z (0/2000138, timeline 1) to the end of each backup',
        'point-in-time window after:  from 2026-12-07 03:39:10Z (0/5000138, timeline 1) to 2026-12-07 09:12:41Z (0/9000000)',
        '',
      ].join('\n'),
    );
  });
});

describe('pgbb verify --repo arguments', () => {
  it('takes an optional backup id and the flags that apply', () => {
    const parsed = parseVerifyCommandLine(['--repo', '/r', '-s', '20261206-033800.123F']);
    expect(parsed).toMatchObject({
      kind: 'run',
      options: { repository: { address: '/r', id: '20261206-033800.123F' }, verify: { skipChecksums: true } },
    });
    expect(parseVerifyCommandLine(['--repo', '/r'])).toMatchObject({ options: { repository: { address: '/r', id: undefined } } });
    expect(() => parseVerifyCommandLine(['--repo', '/r', '-m', 'x'])).toThrow(/does not apply to --repo/);
    expect(() => parseVerifyCommandLine([])).toThrow(/no backup directory/);
  });
});
