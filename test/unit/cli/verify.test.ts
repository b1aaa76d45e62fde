import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/args.js';
import { formatVerifyProgress, parseVerifyCommandLine, VERIFY_COMMAND } from '../../../src/cli/verify.js';
import { formatHelp } from '../../../src/cli/args.js';

describe('pgbb verify command line', () => {
  it('maps pg_verifybackup flags to library options', () => {
    const r = parseVerifyCommandLine([
      '-e',
      '-i',
      'a/b',
      '--ignore=c',
      '-m',
      '/m',
      '-n',
      '-s',
      '-w',
      '/w',
      '-F',
      't',
      '--pg-waldump',
      '/bin/pg_waldump',
      'dir',
    ]);
    expect(r).toEqual({
      kind: 'run',
      options: {
        quiet: false,
        progress: false,
        json: false,
        verify: {
          backupDir: 'dir',
          exitOnError: true,
          ignore: ['a/b', 'c'],
          manifestPath: '/m',
          noWal: true,
          skipChecksums: true,
          walDir: '/w',
          format: 'tar',
          pgWaldumpPath: '/bin/pg_waldump',
        },
      },
    });
    expect(parseVerifyCommandLine(['--wal-directory', '/x', '-qF', 'plain', 'd'])).toMatchObject({
      kind: 'run',
      options: { quiet: true, verify: { walDir: '/x', format: 'plain' } },
    });
    expect(parseVerifyCommandLine(['--help'])).toEqual({ kind: 'help' });
    expect(parseVerifyCommandLine(['-V'])).toEqual({ kind: 'version' });
  });

  it('rejects what pg_verifybackup rejects', () => {
    const err = (argv: string[]) => {
      try {
        parseVerifyCommandLine(argv);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      return undefined;
    };
    expect(err([])).toBe('no backup directory specified');
    expect(err(['a', 'b'])).toBe('too many command-line arguments (first is "b")');
    expect(err(['-P', '-q', 'a'])).toBe('cannot specify both -P/--progress and -q/--quiet');
    expect(err(['-F', 'x', 'a'])).toBe('invalid backup format "x", must be "plain" or "tar"');
    expect(err(['-x', 'a'])).toBe('invalid option -- "x"');
  });

  it('prints help and the progress line as pg_verifybackup does', () => {
    const help = formatHelp(VERIFY_COMMAND);
    expect(help).toContain('pgbb verify [OPTION]... BACKUPDIR');
    for (const flag of [
      '--exit-on-error',
      '--ignore=RELATIVE_PATH',
      '--manifest-path=PATH',
      '--no-parse-wal',
      '--progress',
      '--quiet',
      '--skip-checksums',
      '--wal-path=PATH',
      '--json',
    ]) {
      expect(help).toContain(flag);
    }
    expect(formatVerifyProgress({ phase: 'checksums', doneBytes: 5 * 1024, totalBytes: 20 * 1024 })).toBe(' 5/20 kB (25%) verified');
    expect(formatVerifyProgress({ phase: 'checksums', doneBytes: 0, totalBytes: 0 })).toBe('0/0 kB (0%) verified');
  });
});
