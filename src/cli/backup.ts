/**
 * `pgbb backup`: pg_basebackup's command line, mapped straight onto the library's `runBackup`
 * options, run through the runner with the reporter.
 * @module
 */
import { Writable } from 'node:stream';
import type { RunBackupOptions, RunBackupResult } from '../entries/backup.js';
import type { ConnectionOptions } from '../entries/connection.js';
import { formatLsn } from '../entries/lsn.js';
import { BACKUP_COMMAND, backupTarget, parseBackupCommandLine, type BackupCliOptions } from './backup-flags.js';
import { connectionOptionsFromFlags, defineCommand, maybePromptPassword, type CliContext } from './context.js';
import { emergencyCleanupFor, snapshotTargets } from './targets.js';

/**
 * Map checked flags to the library's options. Pure: the callbacks that report are added by the
 * command. `connection` is the connection options built from the flags (password included when
 * `-W` asked for one); `stdout` is where `-D -` writes; `signal` aborts the backup.
 *
 * @example
 * ```ts
 * const options = mapBackupOptions(cli, { connection: {}, stdout: process.stdout, signal });
 * await runBackup(options);
 * ```
 */
export function mapBackupOptions(
  cli: BackupCliOptions,
  o: { connection: ConnectionOptions; stdout: Writable; signal?: AbortSignal },
): RunBackupOptions {
  let output: RunBackupOptions['output'];
  if (cli.toStdout) {
    output = { format: 'tar-stream', stream: o.stdout };
  } else if (cli.format === 'tar') {
    output = { format: 'tar', directory: cli.pgdata };
  } else {
    output = {
      format: 'plain',
      directory: cli.pgdata,
      ...(cli.tablespaceMapping.size > 0 ? { tablespaceMapping: cli.tablespaceMapping } : {}),
      ...(cli.walDir !== undefined ? { waldir: cli.walDir } : {}),
    };
  }
  const options: RunBackupOptions = {
    connection: o.connection,
    output,
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
    writeRecoveryConf: cli.writeRecoveryConf,
    noClean: cli.noClean,
    noSync: !cli.sync,
  };
  if (cli.label !== undefined) options.label = cli.label;
  if (cli.maxRateKBps !== undefined) options.maxRateKBps = cli.maxRateKBps;
  if (cli.manifestChecksums !== undefined) options.manifestChecksums = cli.manifestChecksums;
  // -Z: client-side compression is applied by the tar outputs, server-side asked of the server.
  if (cli.compression.algorithm !== 'none') options.compression = cli.compression;
  // -i: UPLOAD_MANIFEST + BASE_BACKUP (INCREMENTAL); the session reads the file.
  if (cli.incrementalManifest !== undefined) options.incrementalManifest = cli.incrementalManifest;
  if (cli.walMethod === 'stream') {
    if (cli.slot !== undefined) options.slot = cli.slot;
    if (cli.createSlot) options.createSlot = true;
    if (!cli.temporarySlot && cli.slot === undefined) options.useSlot = false;
  }
  if (o.signal !== undefined) options.signal = o.signal;
  return options;
}

/** The lines pgbb prints with `-v` at the end of a backup (the start point was printed when it arrived). */
export function formatOutcome(result: Pick<RunBackupResult, 'endLsn'>): string[] {
  return [`write-ahead log end point: ${formatLsn(result.endLsn)}`, 'base backup completed'];
}

/** The JSON `done` event's fields: the library's result, in its names. */
export function outcomeFields(result: RunBackupResult): Record<string, unknown> {
  return {
    startLsn: formatLsn(result.startLsn),
    startTimeline: result.startTimeline,
    endLsn: formatLsn(result.endLsn),
    endTimeline: result.endTimeline,
    totalBytes: result.stats.totalBytes,
    outputs: result.outputs,
  };
}

/** Standard output as a stream: the process's own, or one over a test double's `write`. */
function stdoutStream(ctx: CliContext): Writable {
  return (
    ctx.stdoutStream ??
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        ctx.stdout.write(chunk);
        callback();
      },
    })
  );
}

/** `pgbb backup`. */
export const backupCommand = defineCommand<BackupCliOptions>({
  name: 'backup',
  spec: BACKUP_COMMAND,
  parse: parseBackupCommandLine,
  reporting: (cli) => ({ json: cli.json, progress: cli.progress, verbose: cli.verbose, connectionString: cli.connection.connectionString }),
  async execute(cli, run) {
    const { ctx, reporter, addSecret } = run;
    const target = backupTarget(cli, ctx.env);
    const password = await maybePromptPassword(cli.connection, ctx);
    addSecret(password);
    const connection = connectionOptionsFromFlags(cli.connection, ctx, { password });
    const options: RunBackupOptions = {
      ...mapBackupOptions(cli, { connection, stdout: stdoutStream(ctx), signal: ctx.signal }),
      onPhase: (e) => reporter.phase(e),
      onProgress: (p) => reporter.progress(p, p.finished),
      onNotice: (n) => reporter.warning(`${n.severity}: ${n.message}`),
      onChecksumFailure: (f) =>
        reporter.warning(
          f.block !== undefined
            ? `checksum failure in file "${f.file}", block ${f.block}`
            : `file "${f.file}" has ${f.count ?? 'several'} checksum failures`,
        ),
      onWarning: (w) => reporter.warning(w.message),
    };
    // The repository code (and the storage clients behind it) is loaded only for --repo.
    if (target.kind === 'repository') return (await import('./backup-repo.js')).runRepositoryBackup(target.address, cli, options, run);
    // Taken before anything is written: what a forced exit may remove.
    const targets = cli.noClean ? [] : await snapshotTargets(cli);
    // A slot made with -C is dropped by the library's cleanup, which a forced exit does not wait for.
    const slotNote =
      cli.createSlot && cli.slot !== undefined
        ? [
            `replication slot "${cli.slot}" created by this run may remain on the server: drop it with SELECT pg_drop_replication_slot('${cli.slot}')`,
          ]
        : [];
    const unregister = ctx.onEmergencyExit?.(() => ({ ...emergencyCleanupFor(targets), notes: slotNote }));
    let result: RunBackupResult;
    try {
      result = await ctx.lib.backup(options);
    } finally {
      unregister?.();
    }
    reporter.finishProgress();
    for (const line of formatOutcome(result)) reporter.info(line);
    reporter.done(outcomeFields(result));
    return 0;
  },
});
