import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/args.js';
import { backupTarget, parseBackupCommandLine, parseMaxRate, type BackupCliOptions } from '../../../src/cli/backup-flags.js';
import { ConfigError } from '../../../src/index.js';
import { parseCompressOption } from '../../../src/cli/compress-spec.js';

function run(...argv: string[]): BackupCliOptions {
  const r = parseBackupCommandLine(argv);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r.options;
}

function refuse(argv: string[]): string {
  try {
    parseBackupCommandLine(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).hint).toBe('Try "pgbb backup --help" for more information.');
    return (err as Error).message;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

/** The target check (after parsing, with the environment), as a usage error message. */
function refuseTarget(argv: string[], env: Record<string, string> = {}): string {
  try {
    backupTarget(run(...argv), env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

describe('pgbb backup defaults', () => {
  it('matches pg_basebackup defaults', () => {
    const o = run('-D', 'out');
    expect(o).toMatchObject({
      pgdata: 'out',
      toStdout: false,
      format: 'plain',
      walMethod: 'stream',
      checkpoint: 'spread',
      writeRecoveryConf: false,
      tablespaceMapping: new Map(),
      createSlot: false,
      temporarySlot: true,
      noClean: false,
      sync: true,
      progress: false,
      verbose: 0,
      manifest: true,
      manifestForceEncode: false,
      estimateSize: true,
      verifyChecksums: true,
      statusIntervalMs: 10_000,
      json: false,
      connection: { passwordPrompt: 'auto' },
    });
    expect(o.compression.algorithm).toBe('none');
    expect(o.maxRateKBps).toBeUndefined();
    expect(o.slot).toBeUndefined();
    expect(o.label).toBeUndefined();
  });

  it('reads every flag', () => {
    const o = run(
      '-D',
      '/b',
      '-Ft',
      '-r',
      '1M',
      '-R',
      '-Xfetch',
      '-z',
      '-c',
      'FAST',
      '-l',
      'nightly',
      '-n',
      '-N',
      '-P',
      '-vv',
      '--manifest-checksums=sha256',
      '--manifest-force-encode',
      '--no-verify-checksums',
      '-s',
      '5',
      '-d',
      'host=x',
      '-h',
      'h1',
      '-p',
      '5433',
      '-U',
      'u',
      '-W',
      '-i',
      '/old/backup_manifest',
      '--json',
      '--no-slot',
    );
    expect(o).toMatchObject({
      format: 'tar',
      maxRateKBps: 1024,
      writeRecoveryConf: true,
      walMethod: 'fetch',
      checkpoint: 'fast',
      label: 'nightly',
      noClean: true,
      sync: false,
      progress: true,
      verbose: 2,
      manifestChecksums: 'SHA256',
      manifestForceEncode: true,
      verifyChecksums: false,
      statusIntervalMs: 5000,
      json: true,
      temporarySlot: false,
      incrementalManifest: '/old/backup_manifest',
      connection: { connectionString: 'host=x', host: 'h1', port: 5433, user: 'u', passwordPrompt: 'prompt' },
    });
    expect(o.compression).toMatchObject({ algorithm: 'gzip', location: 'client', level: -1 });
  });

  it('lets the last of -w/-W win', () => {
    expect(run('-D', 'x', '-W', '-w').connection.passwordPrompt).toBe('never');
    expect(run('-D', 'x', '-w', '-W').connection.passwordPrompt).toBe('prompt');
  });

  it('answers --help, -? and -V wherever they are', () => {
    expect(parseBackupCommandLine(['--help']).kind).toBe('help');
    expect(parseBackupCommandLine(['-D', 'x', '-?']).kind).toBe('help');
    expect(parseBackupCommandLine(['-V']).kind).toBe('version');
    expect(parseBackupCommandLine(['--version']).kind).toBe('version');
  });
});

describe('pgbb backup flag values', () => {
  it('accepts format and wal-method spellings, including abbreviations', () => {
    expect(run('-D', 'x', '-F', 'plain').format).toBe('plain');
    expect(run('-D', 'x', '--format', 'tar').format).toBe('tar');
    for (const [v, m] of [
      ['n', 'none'],
      ['none', 'none'],
      ['f', 'fetch'],
      ['s', 'stream'],
      ['stream', 'stream'],
    ]) {
      expect(run('-D', 'x', `-X${v}`).walMethod).toBe(m);
    }
    expect(refuse(['-D', 'x', '-Fx'])).toBe('invalid output format "x", must be "plain" or "tar"');
    expect(refuse(['-D', 'x', '-Xq'])).toBe('invalid wal-method option "q", must be "fetch", "stream", or "none"');
    expect(refuse(['-D', 'x', '-c', 'slow'])).toBe('invalid checkpoint argument "slow", must be "fast" or "spread"');
  });

  it('checks -s like option_parse_int', () => {
    expect(run('-D', 'x', '-s', '0').statusIntervalMs).toBe(0);
    expect(refuse(['-D', 'x', '-s', 'abc'])).toBe('invalid value "abc" for option -s/--status-interval');
    expect(refuse(['-D', 'x', '-s', '-1'])).toBe('-s/--status-interval must be in range 0..2147483');
  });

  it('checks the port', () => {
    expect(refuse(['-D', 'x', '-p', 'http'])).toBe('invalid port number: "http"');
    expect(refuse(['-D', 'x', '-p', '70000'])).toBe('invalid port number: "70000"');
  });

  it('checks manifest checksum names case-insensitively', () => {
    expect(run('-D', 'x', '--manifest-checksums', 'crc32c').manifestChecksums).toBe('CRC32C');
    expect(refuse(['-D', 'x', '--manifest-checksums=md5'])).toMatch(/^unrecognized manifest checksum algorithm "md5"/);
  });

  it('refuses operands', () => {
    expect(refuse(['-D', 'x', 'y'])).toBe('too many command-line arguments (first is "y")');
  });

  it('refuses unknown options with getopt wording', () => {
    const msg = refuse(['--x']);
    expect(msg).toBe('unrecognized option "--x"');
  });
});

describe('pgbb backup rules (pg_basebackup main())', () => {
  it('-D is required, unless a repository is given (--repo or PGBB_REPO)', () => {
    expect(refuseTarget([])).toBe('no target directory specified (use -D/--pgdata)');
    expect(refuseTarget(['-Ft'])).toBe('no target directory specified (use -D/--pgdata)');
    expect(refuseTarget(['-Ft'], { PGBB_REPO: '' })).toBe('no target directory specified (use -D/--pgdata)');
    expect(refuse(['-D', ''])).toBe('no target directory specified (use -D/--pgdata)');
    expect(backupTarget(run('-D', 'x'), { PGBB_REPO: '/r' })).toEqual({ kind: 'directory' });
    expect(backupTarget(run(), { PGBB_REPO: '/r' })).toEqual({ kind: 'repository', address: '/r' });
    expect(backupTarget(run('--repo', 's3://b/p'), { PGBB_REPO: '/r' })).toEqual({ kind: 'repository', address: 's3://b/p' });
  });

  it('repository backups: tar format, no directory options; --if-older-than only with a repository', () => {
    expect(refuse(['--repo', '/r', '-D', 'x'])).toBe('-D/--pgdata and --repo are incompatible options');
    expect(refuseTarget(['--repo', '/r', '-Fp'])).toBe('-Fp cannot be used with a repository: a repository stores tar-format backups');
    expect(refuseTarget(['--repo', '/r', '-R'])).toMatch(/^-R\/--write-recovery-conf cannot be used with a repository/);
    expect(refuseTarget(['--repo', '/r', '-n'])).toMatch(/^-n\/--no-clean cannot be used with a repository/);
    expect(refuseTarget(['--repo', '/r', '-i', 'm'])).toBe(
      '-i m cannot be used with a repository: write -i auto: the reference is the newest backup in the repository',
    );
    expect(backupTarget(run('--repo', '/r', '-i', 'auto'), {})).toEqual({ kind: 'repository', address: '/r' });
    expect(refuseTarget(['-D', 'x', '--if-older-than', '1d'])).toBe('--if-older-than needs a repository (--repo or PGBB_REPO)');
    // Client compression without -Ft is fine: the repository stores tar.
    expect(run('--repo', '/r', '-z', '--if-older-than', '20h')).toMatchObject({ repo: '/r', ifOlderThan: '20h', pgdata: '' });
  });

  it('-C needs -S', () => {
    expect(refuse(['-D', 'x', '-C'])).toBe('--create-slot needs a slot to be specified using --slot');
    expect(run('-D', 'x', '-C', '-S', 's1')).toMatchObject({ createSlot: true, slot: 's1', temporarySlot: false });
  });

  it('--no-slot conflicts with -S', () => {
    expect(refuse(['-D', 'x', '--no-slot', '-S', 's1'])).toBe('--no-slot cannot be used with slot name');
  });

  it('-S needs -X stream', () => {
    expect(refuse(['-D', 'x', '-S', 's1', '-Xfetch'])).toBe('replication slots can only be used with WAL streaming');
    expect(refuse(['-D', 'x', '-S', 's1', '-Xnone'])).toBe('replication slots can only be used with WAL streaming');
  });

  it('refuses -X stream to stdout and allows fetch and none there', () => {
    // -X stream is the default: the message says what to write instead.
    const advice = 'cannot stream write-ahead logs in tar mode to stdout: use -X fetch or -X none with -D -';
    expect(refuse(['-D', '-', '-Ft'])).toBe(advice);
    expect(refuse(['-D', '-', '-Ft', '-Xs'])).toBe(advice);
    expect(run('-D', '-', '-Ft', '-Xfetch')).toMatchObject({ toStdout: true, walMethod: 'fetch' });
    expect(run('-D', '-', '-Ft', '-Xnone').toStdout).toBe(true);
  });

  it('refuses plain format to stdout', () => {
    expect(refuse(['-D', '-', '-Xfetch'])).toBe('cannot write a plain-format backup to standard output (use -Ft with -D -)');
  });

  it('allows -R with --no-manifest', () => {
    expect(run('-D', 'x', '-R', '--no-manifest')).toMatchObject({ writeRecoveryConf: true, manifest: false });
  });

  it('-T only in plain format', () => {
    expect(refuse(['-D', 'x', '-Ft', '-T', '/a=/b'])).toBe('tablespace mapping (-T) can only be used in plain mode');
    expect(run('-D', 'x', '-T', '/a=/b', '-T', '/c\\=d=/e').tablespaceMapping).toEqual(
      new Map([
        ['/a', '/b'],
        ['/c=d', '/e'],
      ]),
    );
    // pg_basebackup's get_tablespace_mapping: the first -T for a directory wins.
    expect(run('-D', 'x', '-T', '/a=/first', '-T', '/a/=/second').tablespaceMapping.get('/a')).toBe('/first');
  });

  it('--waldir only in plain format, and absolute', () => {
    expect(refuse(['-D', 'x', '-Ft', '--waldir', '/w'])).toBe('WAL directory location can only be specified in plain mode');
    expect(refuse(['-D', 'x', '--waldir', 'w'])).toBe('WAL directory location must be an absolute path');
    expect(run('-D', 'x', '--waldir', '/w//x/').walDir).toBe('/w/x');
  });

  it('compression only in tar format unless on the server', () => {
    expect(refuse(['-D', 'x', '-z'])).toBe('only tar mode backups can be compressed');
    expect(refuse(['-D', 'x', '-Z', 'client-lz4'])).toBe('only tar mode backups can be compressed');
    expect(run('-D', 'x', '-Z', 'server-zstd').compression).toMatchObject({ algorithm: 'zstd', location: 'server' });
    expect(run('-D', 'x', '-Z', '0').compression.algorithm).toBe('none');
    expect(run('-D', 'x', '-Z', 'none').compression.algorithm).toBe('none');
  });

  it('-z and -Z override each other in order', () => {
    expect(run('-D', 'x', '-Ft', '-Z', 'lz4', '-z').compression.algorithm).toBe('gzip');
    expect(run('-D', 'x', '-Ft', '-z', '-Z', 'lz4').compression.algorithm).toBe('lz4');
  });

  it('refuses a server-compressed tar to stdout with a manifest', () => {
    expect(refuse(['-D', '-', '-Ft', '-Xfetch', '-Z', 'server-gzip'])).toMatch(/^cannot inject manifest into a compressed tar file/);
    expect(run('-D', '-', '-Ft', '-Xfetch', '-Z', 'server-gzip', '--no-manifest').compression.location).toBe('server');
  });

  it('manifest options conflict with --no-manifest', () => {
    expect(refuse(['-D', 'x', '--no-manifest', '--manifest-checksums=SHA256'])).toBe(
      '--no-manifest and --manifest-checksums are incompatible options',
    );
    expect(refuse(['-D', 'x', '--no-manifest', '--manifest-force-encode'])).toBe(
      '--no-manifest and --manifest-force-encode are incompatible options',
    );
    expect(refuse(['-D', 'x', '--no-manifest', '-i', '/m'])).toBe('--incremental and --no-manifest are incompatible options');
  });

  it('--progress conflicts with --no-estimate-size', () => {
    expect(refuse(['-D', 'x', '-P', '--no-estimate-size'])).toBe('--progress and --no-estimate-size are incompatible options');
    expect(run('-D', 'x', '--no-estimate-size').estimateSize).toBe(false);
  });

  it('--json conflicts with a backup on stdout', () => {
    expect(refuse(['-D', '-', '-Ft', '-Xnone', '--json'])).toBe('--json cannot be used when the backup goes to standard output (-D -)');
  });
});

describe('parseMaxRate', () => {
  const p = (s: string) => parseMaxRate('pgbb backup', s);
  const bad = (s: string) => {
    try {
      p(s);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('accepted');
  };
  it('reads kB/s with k and M suffixes', () => {
    expect(p('32')).toBe(32);
    expect(p('100k')).toBe(100);
    expect(p('100 k')).toBe(100);
    expect(p('2M')).toBe(2048);
    expect(p('1.5M')).toBe(1536);
    expect(p('1024M')).toBe(1048576);
    expect(p('64.9')).toBe(64);
  });
  it('refuses what pg_basebackup refuses', () => {
    expect(bad('fast')).toBe('transfer rate "fast" is not a valid value');
    expect(bad('0')).toBe('transfer rate must be greater than zero');
    expect(bad('-5')).toBe('transfer rate must be greater than zero');
    expect(bad('10G')).toBe('invalid --max-rate unit: "G"');
    expect(bad('10kB')).toBe('invalid --max-rate unit: "kB"');
    expect(bad('31')).toBe('transfer rate "31" is out of range');
    expect(bad('1025M')).toBe('transfer rate "1025M" is out of range');
    expect(bad('5000000000')).toBe('transfer rate "5000000000" exceeds integer range');
  });
});

describe('-T uses the library parser (the same as combine -T)', () => {
  const bad = (spec: string) => {
    try {
      parseBackupCommandLine(['-D', 'x', '-T', spec]);
    } catch (e) {
      // A ConfigError from the library; the runner reports it as a usage error of pgbb backup.
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('accepted');
  };
  it('accepts Windows server paths for OLDDIR and \\= for a literal =', () => {
    expect(parseBackupCommandLine(['-D', 'x', '-T', 'C:\\ts=/new', '-T', '/a\\=b=/c\\=d'])).toMatchObject({
      kind: 'run',
      options: {
        tablespaceMapping: new Map([
          ['C:\\ts', '/new'],
          ['/a=b', '/c=d'],
        ]),
      },
    });
  });
  it("refuses malformed and relative mappings with pg_basebackup's reasons", () => {
    expect(bad('/a=/b=/c')).toMatch(/^multiple "=" signs in tablespace mapping/);
    expect(bad('/a')).toBe('invalid tablespace mapping format "/a", must be "OLDDIR=NEWDIR"');
    expect(bad('=/b')).toBe('invalid tablespace mapping format "=/b", must be "OLDDIR=NEWDIR"');
    expect(bad('/a=')).toBe('invalid tablespace mapping format "/a=", must be "OLDDIR=NEWDIR"');
    expect(bad('a=/b')).toBe('old directory is not an absolute path in tablespace mapping: a');
    expect(bad('/a=b')).toBe('new directory is not an absolute path in tablespace mapping: b');
  });
});

describe('parseCompressOption', () => {
  const ok = (s: string) => {
    const r = parseCompressOption(s);
    if (!r.ok) throw new Error(r.message);
    return r.spec;
  };
  const bad = (s: string) => {
    const r = parseCompressOption(s);
    if (r.ok) throw new Error('accepted');
    return r.message;
  };
  it('reads bare levels as gzip (0 as none)', () => {
    expect(ok('5')).toMatchObject({ algorithm: 'gzip', level: 5, levelExplicit: true, location: 'client', locationExplicit: false });
    expect(ok('0')).toMatchObject({ algorithm: 'none', level: 0 });
    expect(ok('server-9')).toMatchObject({ algorithm: 'gzip', level: 9, location: 'server' });
  });
  it('reads METHOD[:DETAIL] with locations', () => {
    expect(ok('lz4')).toMatchObject({ algorithm: 'lz4', level: 0, levelExplicit: false, location: 'client' });
    expect(ok('client-zstd:7')).toMatchObject({ algorithm: 'zstd', level: 7, location: 'client', locationExplicit: true, detail: '7' });
    expect(ok('server-zstd:level=-5,workers=4,long')).toMatchObject({
      algorithm: 'zstd',
      level: -5,
      workers: 4,
      longDistance: true,
      location: 'server',
      detail: 'level=-5,workers=4,long',
    });
    expect(ok('zstd:long=off').longDistance).toBe(false);
    expect(ok('gzip')).toMatchObject({ level: -1 });
    expect(ok('gzip:level=-1')).toMatchObject({ level: -1 });
  });
  it('validates like compression.c', () => {
    expect(bad('bzip2')).toBe('unrecognized compression algorithm: "bzip2"');
    expect(bad('server-brotli:3')).toBe('unrecognized compression algorithm: "brotli"');
    expect(bad('gzip:10')).toBe(
      'invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)',
    );
    expect(bad('gzip:0')).toMatch(/expects a compression level between 1 and 9/);
    expect(bad('lz4:13')).toBe(
      'invalid compression specification: compression algorithm "lz4" expects a compression level between 1 and 12 (default at 0)',
    );
    expect(bad('zstd:23')).toMatch(/"zstd" expects a compression level between -131072 and 22 \(default at 3\)/);
    expect(bad('none:1')).toBe('invalid compression specification: compression algorithm "none" does not accept a compression level');
    expect(bad('gzip:workers=2')).toBe('invalid compression specification: compression algorithm "gzip" does not accept a worker count');
    expect(bad('lz4:long')).toBe('invalid compression specification: compression algorithm "lz4" does not support long-distance mode');
    expect(bad('zstd:fast')).toBe('invalid compression specification: unrecognized compression option: "fast"');
    expect(bad('zstd:level')).toBe('invalid compression specification: compression option "level" requires a value');
    expect(bad('zstd:level=x')).toBe('invalid compression specification: value for compression option "level" must be an integer');
    expect(bad('zstd:long=maybe')).toBe('invalid compression specification: value for compression option "long" must be a Boolean value');
    expect(bad('zstd:level=3,,')).toBe('invalid compression specification: found empty string where a compression option was expected');
  });
});
