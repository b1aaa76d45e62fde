// `pgbb restore` argument checks: one target, targets need an archive, target options need a target.
import { describe, expect, it } from 'vitest';
import { parseRestoreCommandLine } from '../../../src/cli/restore.js';

describe('pgbb restore command line', () => {
  it('maps the options to restoreBackup', () => {
    const r = parseRestoreCommandLine([
      '/b',
      '-D',
      '/d',
      '--wal-archive',
      '/w',
      '--target-time',
      '2026-01-01 00:00:00.000123+00',
      '--target-exclusive',
      '--target-timeline',
      '2',
      '--target-action',
      'promote',
      '-T',
      '/a=/b',
      '--waldir',
      '/x',
      '--no-verify',
    ]);
    expect(r.kind).toBe('run');
    if (r.kind !== 'run') return;
    expect(r.options.restore).toMatchObject({
      backupDir: '/b',
      dataDir: '/d',
      walArchive: '/w',
      exclusive: true,
      targetTimeline: 2,
      targetAction: 'promote',
      walDir: '/x',
      verify: false,
      target: { kind: 'time', microsecond: 123 },
    });
    expect([...r.options.restore.tablespaceMapping!]).toEqual([['/a', '/b']]);
    expect(r.options.verbose).toBe(0);
  });

  it('counts -v like the other commands', () => {
    const r = parseRestoreCommandLine(['/b', '-D', '/d', '-v', '--verbose']);
    expect(r.kind === 'run' && r.options.verbose).toBe(2);
  });

  it('refuses two targets, a target without an archive, and target options without a target', () => {
    expect(() => parseRestoreCommandLine(['/b', '-D', '/d', '--wal-archive', '/w', '--target-xid', '5', '--target-name', 'x'])).toThrow(
      /only one recovery target/,
    );
    expect(() => parseRestoreCommandLine(['/b', '-D', '/d', '--target-lsn', '0/1'])).toThrow(/needs --wal-archive/);
    expect(() => parseRestoreCommandLine(['/b', '-D', '/d', '--wal-archive', '/w', '--target-action', 'promote'])).toThrow(
      /needs a recovery target/,
    );
    expect(() =>
      parseRestoreCommandLine(['/b', '-D', '/d', '--wal-archive', '/w', '--target-name', 'n', '--target-action', 'stop']),
    ).toThrow(/pause, promote or shutdown/);
    expect(() => parseRestoreCommandLine(['/b'])).toThrow(/-D/);
    expect(() => parseRestoreCommandLine(['-D', '/d'])).toThrow(/no backup directory/);
    expect(() => parseRestoreCommandLine(['/b', '-D', '/d', '--wal-archive', '/w', '--target-time', '2026-01-01 00:00:00'])).toThrow(
      /time zone/,
    );
  });

  it('restores from a repository with --repo [--backup ID]: a target needs no --wal-archive; a directory, --wal-archive or --backup alone are refused with it', () => {
    const r = parseRestoreCommandLine([
      '--repo',
      '/r',
      '--backup',
      '20261206-033800.123F',
      '-D',
      '/d',
      '--target-time',
      '2026-01-01 00:00:00+00',
    ]);
    expect(r.kind).toBe('run');
    if (r.kind !== 'run') return;
    expect(r.options.repository).toEqual({ address: '/r', backupId: '20261206-033800.123F' });
    expect(r.options.restore.target).toMatchObject({ kind: 'time' });
    expect(parseRestoreCommandLine(['--repo', '/r', '-D', '/d', '--target-timeline', '2'])).toMatchObject({
      options: { repository: { address: '/r', backupId: undefined }, restore: { targetTimeline: 2 } },
    });
    expect(() => parseRestoreCommandLine(['/b', '--repo', '/r', '-D', '/d'])).toThrow(/not both/);
    expect(() => parseRestoreCommandLine(['--repo', '/r', '--wal-archive', '/w', '-D', '/d'])).toThrow(/cannot be used with --repo/);
    expect(() => parseRestoreCommandLine(['/b', '--backup', 'x', '-D', '/d'])).toThrow(/--backup needs --repo/);
  });
});
