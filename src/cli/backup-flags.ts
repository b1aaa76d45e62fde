/**
 * The flags of `pgbb backup`: pg_basebackup's full option set, parsed into a
 * typed {@link BackupCliOptions} and checked with pg_basebackup's rules. Pure.
 * @module
 */
import { isAbsolute } from 'node:path';
import {
  MANIFEST_CHECKSUM_ALGORITHMS,
  MAX_RATE_LOWER_KBPS,
  MAX_RATE_UPPER_KBPS,
  tablespaceMappingFrom,
  type CheckpointMode,
  type ManifestChecksumAlgorithm,
  type WalMethod,
} from '../entries/backup.js';
import { parseArgs, parseIntOption, rejectOperands, UsageError, type CommandSpec, type OptionSpec, type ParsedArgs } from './args.js';
import { NO_COMPRESSION, parseCompressOption, type CompressionSpec } from './compress-spec.js';
import { connectionOptionSpecs, parseConnectionFlags, type CliConnectionFlags } from './connection-flags.js';
import type { CommandLine } from './context.js';

const OUT = 'Options controlling the output';
const GEN = 'General options';

const options: OptionSpec[] = [
  {
    key: 'pgdata',
    short: 'D',
    long: 'pgdata',
    arg: 'required',
    metavar: 'DIRECTORY',
    group: OUT,
    help: 'write the backup into this directory\n("-": standard output, tar format only)',
  },
  {
    key: 'repo',
    long: 'repo',
    arg: 'required',
    metavar: 'REPO',
    group: OUT,
    help: 'store the backup in this repository instead of -D\n(a directory or s3://BUCKET/PREFIX; default: $PGBB_REPO)',
  },
  {
    key: 'ifOlderThan',
    long: 'if-older-than',
    arg: 'required',
    metavar: 'DURATION',
    group: OUT,
    help: 'with a repository: do nothing unless the newest full backup\nis at least this old (e.g. 20h, 7d)',
  },
  { key: 'format', short: 'F', long: 'format', arg: 'required', metavar: 'p|t', group: OUT, help: 'output format: plain (default) or tar' },
  {
    key: 'maxRate',
    short: 'r',
    long: 'max-rate',
    arg: 'required',
    metavar: 'RATE',
    group: OUT,
    help: 'limit the transfer rate of the data directory\n(kB/s, or with suffix "k" or "M")',
  },
  { key: 'writeRecoveryConf', short: 'R', long: 'write-recovery-conf', group: OUT, help: 'write the configuration for a standby' },
  {
    key: 'tablespaceMapping',
    short: 'T',
    long: 'tablespace-mapping',
    arg: 'required',
    metavar: 'OLDDIR=NEWDIR',
    group: OUT,
    help: 'restore the tablespace found in OLDDIR into NEWDIR\n(repeatable; write "\\=" for a literal "=")',
  },
  { key: 'waldir', long: 'waldir', arg: 'required', metavar: 'WALDIR', group: OUT, help: 'put the write-ahead log directory here' },
  {
    key: 'walMethod',
    short: 'X',
    long: 'wal-method',
    arg: 'required',
    metavar: 'none|fetch|stream',
    group: OUT,
    help: 'how to include the WAL needed by the backup\n(default: stream)',
  },
  { key: 'gzip', short: 'z', long: 'gzip', group: OUT, help: 'gzip the tar output' },
  {
    key: 'compress',
    short: 'Z',
    long: 'compress',
    arg: 'required',
    metavar: '[{client|server}-]METHOD[:DETAIL]',
    group: OUT,
    help: 'compress on the client or the server\n(METHOD: gzip, lz4, zstd or none)',
  },
  {
    key: 'checkpoint',
    short: 'c',
    long: 'checkpoint',
    arg: 'required',
    metavar: 'fast|spread',
    group: GEN,
    help: 'checkpoint at once (fast) or spread out (default)',
  },
  { key: 'createSlot', short: 'C', long: 'create-slot', group: GEN, help: 'create the replication slot named by --slot' },
  {
    key: 'incremental',
    short: 'i',
    long: 'incremental',
    arg: 'required',
    metavar: 'OLDMANIFEST',
    group: GEN,
    help: 'take an incremental backup relative to this manifest\n(PostgreSQL 17 and later; with --repo: "auto",\nthe newest backup in the repository)',
  },
  { key: 'label', short: 'l', long: 'label', arg: 'required', metavar: 'LABEL', group: GEN, help: 'set the backup label' },
  { key: 'noClean', short: 'n', long: 'no-clean', group: GEN, help: 'leave partial output behind after an error' },
  { key: 'noSync', short: 'N', long: 'no-sync', group: GEN, help: 'do not fsync the output' },
  { key: 'progress', short: 'P', long: 'progress', group: GEN, help: 'show progress' },
  {
    key: 'slot',
    short: 'S',
    long: 'slot',
    arg: 'required',
    metavar: 'SLOTNAME',
    group: GEN,
    help: 'stream WAL through this replication slot',
  },
  { key: 'verbose', short: 'v', long: 'verbose', group: GEN, help: 'say more about what happens (repeatable)' },
  { key: 'version', short: 'V', long: 'version', group: GEN, help: 'print the version and exit' },
  {
    key: 'manifestChecksums',
    long: 'manifest-checksums',
    arg: 'required',
    metavar: 'SHA{224,256,384,512}|CRC32C|NONE',
    group: GEN,
    help: 'checksum algorithm for the backup manifest',
  },
  { key: 'manifestForceEncode', long: 'manifest-force-encode', group: GEN, help: 'hex-encode every file name in the manifest' },
  { key: 'noEstimateSize', long: 'no-estimate-size', group: GEN, help: 'do not ask the server to estimate the backup size' },
  { key: 'noManifest', long: 'no-manifest', group: GEN, help: 'do not produce a backup manifest' },
  { key: 'noSlot', long: 'no-slot', group: GEN, help: 'do not create a temporary replication slot' },
  { key: 'noVerifyChecksums', long: 'no-verify-checksums', group: GEN, help: 'do not have the server verify page checksums' },
  { key: 'json', long: 'json', group: GEN, help: 'report progress and the result as JSON lines on stdout' },
  { key: 'help', short: '?', long: 'help', group: GEN, help: 'print this help and exit' },
  ...connectionOptionSpecs({ statusInterval: true }),
];

/** The option table of `pgbb backup`. */
export const BACKUP_COMMAND: CommandSpec = {
  prog: 'pgbb backup',
  summary: 'pgbb backup takes a base backup of a running PostgreSQL server.',
  options,
  epilog: 'Connection settings not given here come from the PG* environment variables\nand ~/.pgpass, as with libpq.',
  examples: [
    {
      comment: 'a plain copy of the data directory, WAL streamed beside it, with progress',
      command: 'pgbb backup -h db1 -U replicator -D /backups/db1 -c fast -P',
    },
    {
      comment: 'tar files compressed with zstd on the server, a standby configuration in base.tar',
      command: 'pgbb backup -d "host=db1 user=replicator" -D /backups/db1 -Ft -Z server-zstd -R',
    },
    {
      comment: 'one tar on standard output (WAL fetched at the end: it cannot be streamed there)',
      command: 'pgbb backup -h db1 -D - -Ft -X fetch | gzip > db1.tar.gz',
    },
    {
      comment: 'relocate a tablespace, limit the rate to 50 MB/s',
      command: 'pgbb backup -h db1 -D /backups/db1 -T /srv/ts1=/backups/ts1 -r 50M',
    },
    {
      comment: 'an incremental backup (PostgreSQL 17+) against the last one',
      command: 'pgbb backup -h db1 -D /backups/db1-inc -i /backups/db1/backup_manifest',
    },
  ],
};

/** Everything `pgbb backup` was told, typed and checked. */
export interface BackupCliOptions {
  /** `-D`; `-` means standard output (tar format only); `''` when the backup goes to a repository. */
  pgdata: string;
  /** `--repo`: the repository address. Without it and without `-D`, `PGBB_REPO` (see {@link backupTarget}). */
  repo?: string;
  /**
   * `--if-older-than` as written (repository backups only). Parsed with the repository code, which is
   * loaded only for `--repo` (see `runRepositoryBackup`).
   */
  ifOlderThan?: string;
  /** `-F p` was written out (a repository refuses it; the default plain format is tar there). */
  plainExplicit: boolean;
  /** `-D -`. */
  toStdout: boolean;
  /** @default 'plain' */
  format: 'plain' | 'tar';
  /** `-r`, in kB/s (32 – 1048576); absent: no limit. */
  maxRateKBps?: number;
  writeRecoveryConf: boolean;
  /** `-T`, old directory → new directory; for an old directory given twice, the first `-T` (as pg_basebackup). */
  tablespaceMapping: ReadonlyMap<string, string>;
  /** `--waldir`, absolute. */
  walDir?: string;
  /** @default 'stream' */
  walMethod: WalMethod;
  compression: CompressionSpec;
  /** @default 'spread' */
  checkpoint: CheckpointMode;
  createSlot: boolean;
  /** `-S`: a permanent slot to stream through. */
  slot?: string;
  /** Whether the WAL streamer should create a temporary slot (no `-S`, no `--no-slot`). */
  temporarySlot: boolean;
  /** `-i`: path of the previous backup's manifest. */
  incrementalManifest?: string;
  /** `-l`; absent: the library's default (pg_basebackup's label). */
  label?: string;
  /** `-n`: keep partial output after an error. */
  noClean: boolean;
  /** False with `-N`. @default true */
  sync: boolean;
  progress: boolean;
  /** Number of `-v`. */
  verbose: number;
  /** False with `--no-manifest`. @default true */
  manifest: boolean;
  manifestChecksums?: ManifestChecksumAlgorithm;
  manifestForceEncode: boolean;
  /** False with `--no-estimate-size`. @default true */
  estimateSize: boolean;
  /** False with `--no-verify-checksums`. @default true */
  verifyChecksums: boolean;
  /** `-s`, in milliseconds. @default 10000 */
  statusIntervalMs: number;
  /** `-d`, `-h`, `-p`, `-U`, `-w`, `-W`. */
  connection: CliConnectionFlags;
  json: boolean;
}

/** What the command line asks for. */
export type BackupCommandLine = CommandLine<BackupCliOptions>;

/**
 * Parse `-r`: a positive number in kB/s, optionally followed by `k` (kB/s) or `M`
 * (MB/s), white space allowed around the suffix, result in 32 kB/s – 1 GB/s, as
 * pg_basebackup's parse_max_rate. Returns kB/s (truncated to an integer, as the
 * C cast does).
 */
export function parseMaxRate(prog: string, src: string): number {
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(.*)$/s.exec(src);
  if (!m) throw new UsageError(prog, `transfer rate "${src}" is not a valid value`);
  let result = Number(m[1]);
  if (!(result > 0)) throw new UsageError(prog, 'transfer rate must be greater than zero');
  const tail = (m[2] ?? '').trim();
  if (tail !== '') {
    if (tail === 'k') {
      // kilobytes is the unit already
    } else if (tail === 'M') {
      result *= 1024;
    } else {
      throw new UsageError(prog, `invalid --max-rate unit: "${(m[2] ?? '').replace(/^\s+/, '')}"`);
    }
  }
  if (result >= 2 ** 32) throw new UsageError(prog, `transfer rate "${src}" exceeds integer range`);
  const kbps = Math.trunc(result);
  if (kbps < MAX_RATE_LOWER_KBPS || kbps > MAX_RATE_UPPER_KBPS) {
    throw new UsageError(prog, `transfer rate "${src}" is out of range`);
  }
  return kbps;
}

/** `--waldir` as PostgreSQL's canonicalize_path leaves it for the common cases: no doubled or trailing slashes, no `.` parts. */
function canonicalize(p: string): string {
  let out = p
    .replace(/\/{2,}/g, '/')
    .replace(/\/(\.\/)+/g, '/')
    .replace(/\/\.$/, '');
  if (out.length > 1) out = out.replace(/\/+$/, '');
  return out;
}

/**
 * Parse and check `pgbb backup`'s command line.
 * Throws {@link UsageError} with pg_basebackup's message for each broken rule.
 */
export function parseBackupCommandLine(argv: readonly string[]): BackupCommandLine {
  const args = parseArgs(BACKUP_COMMAND, argv);
  if (args.has('help')) return { kind: 'help' };
  if (args.has('version')) return { kind: 'version' };
  rejectOperands(BACKUP_COMMAND, args);
  return { kind: 'run', options: backupOptionsFromArgs(args) };
}

function incompatible(a: string, b: string): UsageError {
  return new UsageError(BACKUP_COMMAND.prog, `${a} and ${b} are incompatible options`);
}

/** Build and check {@link BackupCliOptions} from parsed arguments. */
export function backupOptionsFromArgs(args: ParsedArgs): BackupCliOptions {
  const prog = BACKUP_COMMAND.prog;
  const usage = (msg: string) => new UsageError(prog, msg);

  let format: 'plain' | 'tar' = 'plain';
  const f = args.last('format');
  if (f !== undefined) {
    if (f === 'p' || f === 'plain') format = 'plain';
    else if (f === 't' || f === 'tar') format = 'tar';
    else throw usage(`invalid output format "${f}", must be "plain" or "tar"`);
  }

  let walMethod: WalMethod = 'stream';
  const x = args.last('walMethod');
  if (x !== undefined) {
    if (x === 'n' || x === 'none') walMethod = 'none';
    else if (x === 'f' || x === 'fetch') walMethod = 'fetch';
    else if (x === 's' || x === 'stream') walMethod = 'stream';
    else throw usage(`invalid wal-method option "${x}", must be "fetch", "stream", or "none"`);
  }

  let checkpoint: CheckpointMode = 'spread';
  const c = args.last('checkpoint');
  if (c !== undefined) {
    // pg_basebackup compares case-insensitively here.
    if (c.toLowerCase() === 'fast') checkpoint = 'fast';
    else if (c.toLowerCase() === 'spread') checkpoint = 'spread';
    else throw usage(`invalid checkpoint argument "${c}", must be "fast" or "spread"`);
  }

  // -z and -Z override each other in command-line order, as in pg_basebackup.
  let compression: CompressionSpec = NO_COMPRESSION;
  for (const o of args.occurrences) {
    if (o.key === 'gzip') {
      compression = { algorithm: 'gzip', location: 'client', locationExplicit: false, level: -1, levelExplicit: false };
    } else if (o.key === 'compress') {
      const r = parseCompressOption(o.value ?? '');
      if (!r.ok) throw usage(r.message);
      compression = r.spec;
    }
  }

  const maxRate = args.last('maxRate');
  const maxRateKBps = maxRate === undefined ? undefined : parseMaxRate(prog, maxRate);
  // The library's parser, shared with `combine -T`; its ConfigError becomes a usage error in the runner.
  const tablespaceMapping = tablespaceMappingFrom(args.all('tablespaceMapping'));

  let manifestChecksums: ManifestChecksumAlgorithm | undefined;
  const mc = args.last('manifestChecksums');
  if (mc !== undefined) {
    // The server matches these names case-insensitively (pg_checksum_parse_type).
    const up = mc.toUpperCase() as ManifestChecksumAlgorithm;
    if (!MANIFEST_CHECKSUM_ALGORITHMS.includes(up)) {
      throw usage(`unrecognized manifest checksum algorithm "${mc}", must be one of ${MANIFEST_CHECKSUM_ALGORITHMS.join(', ')}`);
    }
    manifestChecksums = up;
  }

  const connection = parseConnectionFlags(prog, args);
  const statusInterval = args.last('statusInterval');
  const statusIntervalMs =
    statusInterval === undefined
      ? 10_000
      : parseIntOption(prog, statusInterval, '-s/--status-interval', 0, Math.trunc(2147483647 / 1000)) * 1000;

  const pgdata = args.last('pgdata');
  const slot = args.last('slot');
  const createSlot = args.has('createSlot');
  const noSlot = args.has('noSlot');
  const manifest = !args.has('noManifest');
  const progress = args.has('progress');
  const estimateSize = !args.has('noEstimateSize');
  const json = args.has('json');
  const walDirRaw = args.last('waldir');
  const incrementalManifest = args.last('incremental');
  const toStdout = pgdata === '-';
  const repo = args.last('repo');
  const ifOlderThan = args.last('ifOlderThan');

  // The checks below follow pg_basebackup's main(), in its order, so the first
  // complaint is the one pg_basebackup would give.
  if (repo !== undefined && pgdata !== undefined) throw incompatible('-D/--pgdata', '--repo');
  if (repo === '') throw usage('the repository address (--repo) is empty');
  // Without -D or --repo the target may still come from PGBB_REPO: backupTarget() decides.
  if (pgdata === '') throw usage('no target directory specified (use -D/--pgdata)');
  // A repository stores tar format whatever -F says (backupTarget refuses an explicit -Fp).
  if (format === 'plain' && pgdata !== undefined && compression.location === 'client' && compression.algorithm !== 'none') {
    throw usage('only tar mode backups can be compressed');
  }
  if (format === 'plain' && toStdout) {
    throw usage('cannot write a plain-format backup to standard output (use -Ft with -D -)');
  }
  if (format === 'tar' && walMethod === 'stream' && toStdout) {
    // -X stream is the default, so say what to write instead.
    throw usage('cannot stream write-ahead logs in tar mode to stdout: use -X fetch or -X none with -D -');
  }
  if (slot !== undefined && walMethod !== 'stream') {
    throw usage('replication slots can only be used with WAL streaming');
  }
  if (noSlot && slot !== undefined) throw usage('--no-slot cannot be used with slot name');
  if (createSlot) {
    if (slot === undefined) throw usage('--create-slot needs a slot to be specified using --slot');
    if (noSlot) throw incompatible('--create-slot', '--no-slot');
  }
  let walDir: string | undefined;
  if (walDirRaw !== undefined) {
    if (format !== 'plain') throw usage('WAL directory location can only be specified in plain mode');
    walDir = canonicalize(walDirRaw);
    if (!isAbsolute(walDir)) throw usage('WAL directory location must be an absolute path');
  }
  if (tablespaceMapping.size > 0 && format !== 'plain') {
    // pg_basebackup ignores -T in tar mode; we refuse rather than silently do nothing.
    throw usage('tablespace mapping (-T) can only be used in plain mode');
  }
  if (progress && !estimateSize) throw incompatible('--progress', '--no-estimate-size');
  if (!manifest && manifestChecksums !== undefined) throw incompatible('--no-manifest', '--manifest-checksums');
  if (!manifest && args.has('manifestForceEncode')) throw incompatible('--no-manifest', '--manifest-force-encode');
  if (!manifest && incrementalManifest !== undefined) throw incompatible('--incremental', '--no-manifest');
  if (toStdout && format === 'tar' && manifest && compression.location === 'server' && compression.algorithm !== 'none') {
    // Putting the manifest into the one output archive means parsing it, which a
    // server-compressed archive does not allow (pg_basebackup's CreateBackupStreamer).
    throw usage(
      'cannot inject manifest into a compressed tar file: use client-side compression, ' +
        'write to a directory rather than standard output, or use --no-manifest',
    );
  }
  if (json && toStdout) throw usage('--json cannot be used when the backup goes to standard output (-D -)');

  const out: BackupCliOptions = {
    pgdata: pgdata ?? '',
    plainExplicit: f === 'p' || f === 'plain',
    toStdout,
    format,
    writeRecoveryConf: args.has('writeRecoveryConf'),
    tablespaceMapping,
    walMethod,
    compression,
    checkpoint,
    createSlot,
    temporarySlot: slot === undefined && !noSlot,
    noClean: args.has('noClean'),
    sync: !args.has('noSync'),
    progress,
    verbose: args.count('verbose'),
    manifest,
    manifestForceEncode: args.has('manifestForceEncode'),
    estimateSize,
    verifyChecksums: !args.has('noVerifyChecksums'),
    statusIntervalMs,
    connection,
    json,
  };
  if (maxRateKBps !== undefined) out.maxRateKBps = maxRateKBps;
  if (walDir !== undefined) out.walDir = walDir;
  if (slot !== undefined) out.slot = slot;
  const label = args.last('label');
  if (label !== undefined) out.label = label;
  if (incrementalManifest !== undefined) out.incrementalManifest = incrementalManifest;
  if (manifestChecksums !== undefined) out.manifestChecksums = manifestChecksums;
  if (repo !== undefined) out.repo = repo;
  if (ifOlderThan !== undefined) out.ifOlderThan = ifOlderThan;
  return out;
}

/** Where `pgbb backup` writes: a directory (or standard output), or a repository. */
export type BackupTarget = { kind: 'directory' } | { kind: 'repository'; address: string };

/**
 * The target of a parsed command line: `-D`, else `--repo`, else the `PGBB_REPO` environment variable;
 * and the rules of repository backups (tar format, the archives go to storage, so no directory options).
 * Throws {@link UsageError}.
 */
export function backupTarget(cli: BackupCliOptions, env: Readonly<Record<string, string | undefined>>): BackupTarget {
  const prog = BACKUP_COMMAND.prog;
  const usage = (msg: string) => new UsageError(prog, msg);
  const address = cli.pgdata !== '' ? undefined : (cli.repo ?? (env['PGBB_REPO'] || undefined));
  if (cli.pgdata === '' && address === undefined) throw usage('no target directory specified (use -D/--pgdata)');
  if (address === undefined) {
    if (cli.ifOlderThan !== undefined) throw usage('--if-older-than needs a repository (--repo or PGBB_REPO)');
    return { kind: 'directory' };
  }
  const refuse = (what: string, why: string) => usage(`${what} cannot be used with a repository: ${why}`);
  if (cli.plainExplicit) throw refuse('-Fp', 'a repository stores tar-format backups');
  if (cli.writeRecoveryConf) throw refuse('-R/--write-recovery-conf', 'the recovery settings are written at restore');
  if (cli.tablespaceMapping.size > 0) throw refuse('-T/--tablespace-mapping', 'tablespaces are mapped at restore');
  if (cli.walDir !== undefined) throw refuse('--waldir', 'the WAL directory is chosen at restore');
  if (cli.noClean) throw refuse('-n/--no-clean', 'a failed backup never leaves objects behind');
  if (cli.incrementalManifest !== undefined && cli.incrementalManifest !== 'auto') {
    throw refuse(`-i ${cli.incrementalManifest}`, 'write -i auto: the reference is the newest backup in the repository');
  }
  return { kind: 'repository', address };
}
