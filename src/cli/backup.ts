/**
 * `pgbb backup`: pg_basebackup's command line, mapped onto the library's backup
 * options plus an output plan, run through the library with the reporter.
 * @module
 */
import type { BaseBackupOptions, ConnectionOptions } from '../index.js';
import { BACKUP_COMMAND, parseBackupCommandLine, type BackupCliOptions, type TablespaceMapping } from './backup-flags.js';
import type { CompressionSpec } from './compress-spec.js';
import {
  connectionOptionsFromFlags, maybePromptPassword, parseOrExit, reporterFor, scrubberFor, type CliCommand,
} from './context.js';
import type { BackupOutcome } from './library.js';

/**
 * Where and how the backup is written: what the library's sinks need beyond the
 * protocol options.
 */
export interface BackupOutputPlan {
  /**
   * `plain`: extract into `directory` (tablespaces at their mapped locations);
   * `tar`: `base.tar`, `<oid>.tar`, `pg_wal.tar` and `backup_manifest` in `directory`;
   * `stdout`: the single tar stream on standard output (one tablespace only, the
   * manifest injected into it).
   */
  kind: 'plain' | 'tar' | 'stdout';
  /** The `-D` directory; `undefined` for `stdout`. */
  directory: string | undefined;
  /** `-T` mappings, in order (first match wins, as pg_basebackup's get_tablespace_mapping). */
  tablespaceMappings: TablespaceMapping[];
  /** `--waldir`: pg_wal becomes a symlink to it (plain format). */
  walDir: string | undefined;
  /** `-z` / `-Z`; client-side compression applies to tar output, server-side is requested from the server. */
  compression: CompressionSpec;
  /** `-R`: write standby.signal and primary_conninfo (into base.tar in tar format). */
  writeRecoveryConf: boolean;
  /** `-N` clears it: fsync the output at the end. */
  sync: boolean;
  /** `-n`: leave partial output behind on failure. */
  noClean: boolean;
  /** `-i`: the previous backup's manifest to take an incremental backup against (17+). */
  incrementalManifest: string | undefined;
}

/** The library's backup options and the output plan for a command line. */
export interface MappedBackup {
  backup: BaseBackupOptions;
  output: BackupOutputPlan;
}

/**
 * Map checked flags to the library's options. Pure.
 * `connection` is the connection options built from the flags (password included
 * when `-W` asked for one); `signal` aborts the backup.
 *
 * @example
 * ```ts
 * const { backup, output } = mapBackupOptions(cli, { connection: {}, signal });
 * ```
 */
export function mapBackupOptions(cli: BackupCliOptions, o: { connection: ConnectionOptions; signal?: AbortSignal }): MappedBackup {
  const backup: BaseBackupOptions = {
    connection: o.connection,
    checkpoint: cli.checkpoint,
    wal: cli.walMethod,
    // pg_basebackup asks the server for tablespace_map in tar format only; plain
    // format recreates the pg_tblspc symlinks from the tablespace list instead.
    tablespaceMap: cli.format === 'tar',
    manifest: cli.manifest,
    manifestForceEncode: cli.manifestForceEncode,
    verifyChecksums: cli.verifyChecksums,
    estimateSize: cli.estimateSize,
    statusIntervalMs: cli.statusIntervalMs,
  };
  if (cli.label !== undefined) backup.label = cli.label;
  if (cli.maxRateKbps !== undefined) backup.maxRateKBps = cli.maxRateKbps;
  if (cli.manifestChecksums !== undefined) backup.manifestChecksums = cli.manifestChecksums;
  if (cli.walMethod === 'stream') {
    if (cli.slot !== undefined) backup.slot = cli.slot;
    if (cli.createSlot) backup.createSlot = true;
    if (!cli.temporarySlot && cli.slot === undefined) backup.useSlot = false;
  }
  if (o.signal !== undefined) backup.signal = o.signal;
  const output: BackupOutputPlan = {
    kind: cli.toStdout ? 'stdout' : cli.format,
    directory: cli.toStdout ? undefined : cli.pgdata,
    tablespaceMappings: cli.tablespaceMappings,
    walDir: cli.walDir,
    compression: cli.compression,
    writeRecoveryConf: cli.writeRecoveryConf,
    sync: cli.sync,
    noClean: cli.noClean,
    incrementalManifest: cli.incrementalManifest,
  };
  return { backup, output };
}

/** The text pgbb prints with `-v` at the end of a backup. */
export function formatOutcome(outcome: BackupOutcome): string[] {
  const lines: string[] = [];
  if (outcome.startLsn !== undefined) {
    lines.push(`write-ahead log start point: ${outcome.startLsn}${outcome.timeline !== undefined ? ` on timeline ${outcome.timeline}` : ''}`);
  }
  if (outcome.endLsn !== undefined) lines.push(`write-ahead log end point: ${outcome.endLsn}`);
  lines.push('base backup completed');
  return lines;
}

/** `pgbb backup`. */
export const backupCommand: CliCommand = {
  name: 'backup',
  summary: 'take a base backup of a running server (like pg_basebackup)',
  async run(argv, ctx) {
    const cli = parseOrExit(ctx, argv, BACKUP_COMMAND, parseBackupCommandLine);
    if (typeof cli === 'number') return cli;
    const base = { json: cli.json, progress: cli.progress, verbose: cli.verbose };
    let reporter = reporterFor(ctx, { ...base, scrub: scrubberFor(ctx, cli.connection) });
    try {
      const password = await maybePromptPassword(cli.connection, ctx);
      reporter = reporterFor(ctx, { ...base, scrub: scrubberFor(ctx, cli.connection, password) });
      const connection = connectionOptionsFromFlags(cli.connection, ctx, { password });
      const { backup, output } = mapBackupOptions(cli, { connection, signal: ctx.signal });
      // The single call into the library (wired in src/cli/library.ts).
      const outcome = await ctx.lib.backup({ backup, output }, {
        progress: (p, force) => reporter.progress(p, force),
        info: (m) => reporter.info(m),
        warning: (m) => reporter.warning(m),
      });
      reporter.finishProgress();
      for (const line of formatOutcome(outcome)) reporter.info(line);
      reporter.done({ ...outcome });
      return 0;
    } catch (err) {
      return reporter.error(err);
    }
  },
};
