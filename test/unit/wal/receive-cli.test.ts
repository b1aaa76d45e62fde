// pgbb receive-wal's command line: pg_receivewal's rules and messages, and the options it maps to.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/args.js';
import { eventToJson, parseReceiveWalCommandLine, receiveWalTarget } from '../../../src/cli/receive-wal.js';
import { formatLsn, lsn } from '../../../src/lsn.js';

function run(...argv: string[]) {
  const r = parseReceiveWalCommandLine(argv);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r.options;
}

function usage(...argv: string[]): string {
  try {
    parseReceiveWalCommandLine(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('no usage error');
}

function targetUsage(env: Record<string, string>, ...argv: string[]): string {
  try {
    receiveWalTarget(run(...argv), env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('no usage error');
}

describe('pgbb receive-wal command line', () => {
  it('refuses what pg_receivewal refuses, with its messages', () => {
    expect(targetUsage({})).toBe('no target directory specified');
    expect(targetUsage({ PGBB_REPO: '' })).toBe('no target directory specified');
    expect(usage('--create-slot')).toBe('--create-slot needs a slot to be specified using --slot');
    expect(usage('--drop-slot', '-D', 'x')).toBe('--drop-slot needs a slot to be specified using --slot');
    expect(usage('--create-slot', '--drop-slot', '-S', 's')).toBe('cannot use --create-slot together with --drop-slot');
    expect(usage('-D', 'x', '--synchronous', '--no-sync')).toBe('cannot use --synchronous together with --no-sync');
    expect(usage('-D', 'x', '-E', 'nope')).toBe('could not parse end position "nope"');
    expect(usage('-D', 'x', '-s', 'abc')).toBe('invalid value "abc" for option -s/--status-interval');
    expect(usage('-D', 'x', '-s', '-1')).toBe('-s/--status-interval must be in range 0..2147483');
    expect(usage('-D', 'x', '-Z', 'none:1')).toMatch(/compression algorithm "none" does not accept a compression level/);
    expect(usage('-D', 'x', '-Z', 'bzip2')).toMatch(/invalid compression specification/);
    expect(usage('-D', 'x', '-Z', 'server-gzip')).toMatch(/compresses on the client/);
    expect(usage('-D', 'x', 'extra')).toMatch(/too many command-line arguments/);
    expect(usage('-D', 'x', '-d', 'host=h replication=database')).toMatch(/database-specific/);
  });

  it('archives into -D, else --repo, else PGBB_REPO; a repository needs a slot and refuses --no-sync', () => {
    expect(receiveWalTarget(run('-D', 'arch'), { PGBB_REPO: '/r' })).toEqual({ kind: 'directory', directory: 'arch' });
    expect(receiveWalTarget(run('--repo', '/a', '-S', 's'), { PGBB_REPO: '/r' })).toEqual({ kind: 'repository', address: '/a' });
    expect(receiveWalTarget(run('-S', 's', '--spool', '/sp'), { PGBB_REPO: '/r' })).toEqual({ kind: 'repository', address: '/r' });
    expect(run('--repo', '/a', '-S', 's', '--spool', '/sp')).toMatchObject({ repo: '/a', spool: '/sp', slot: 's' });
    expect(targetUsage({}, '--repo', '/a')).toMatch(/^--repo needs a replication slot \(-S\)/);
    expect(targetUsage({}, '--repo', '/a', '-S', 's', '--no-sync')).toMatch(/^cannot use --no-sync with a repository/);
    expect(targetUsage({}, '-D', 'x', '--repo', '/a')).toBe('cannot use -D/--directory together with --repo');
    expect(targetUsage({}, '-D', 'x', '--spool', '/sp')).toBe('--spool needs a repository (--repo)');
    // Managing the slot needs no target.
    expect(run('--create-slot', '-S', 's').action).toBe('create-slot');
  });

  it('maps the flags', () => {
    const o = run(
      '-D',
      'arch',
      '-S',
      'slot1',
      '-E',
      '0/3000000',
      '-n',
      '--synchronous',
      '-s',
      '0',
      '-Z',
      'lz4:3',
      '-v',
      '-h',
      'db',
      '-p',
      '5433',
      '-U',
      'rep',
      '--json',
    );
    expect(o).toMatchObject({
      directory: 'arch',
      slot: 'slot1',
      action: 'stream',
      loop: false,
      sync: true,
      synchronous: true,
      statusIntervalMs: 0,
      verbose: 1,
      json: true,
      connection: { host: 'db', port: 5433, user: 'rep' },
    });
    expect(o.endLsn !== undefined && formatLsn(o.endLsn)).toBe('0/3000000');
    expect(o.compression).toMatchObject({ algorithm: 'lz4', level: 3 });
    expect(run('-D', 'a', '-Z', 'none').compression).toBeUndefined();
    expect(run('-D', 'a', '-Z', 'zstd').compression).toMatchObject({ algorithm: 'zstd' });
    expect(run('-D', 'a', '--no-sync').sync).toBe(false);
    expect(run('-D', 'a').statusIntervalMs).toBe(10_000);
    expect(run('--create-slot', '-S', 's', '--if-not-exists')).toMatchObject({ action: 'create-slot', ifNotExists: true });
    expect(run('--drop-slot', '-S', 's').action).toBe('drop-slot');
    expect(parseReceiveWalCommandLine(['--help']).kind).toBe('help');
  });

  it('prints events as JSON with LSNs as text', () => {
    expect(eventToJson({ type: 'timeline-switch', from: 1, to: 2, switchLsn: lsn(0x3000060n), restartLsn: lsn(0x3000000n) })).toEqual({
      event: 'timeline-switch',
      from: 1,
      to: 2,
      switchLsn: '0/3000060',
      restartLsn: '0/3000000',
    });
    expect(eventToJson({ type: 'reconnecting', attempt: 1, delayMs: 1000, error: new Error('gone') })).toEqual({
      event: 'reconnecting',
      attempt: 1,
      delayMs: 1000,
      error: 'gone',
    });
  });
});
