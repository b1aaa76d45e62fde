/**
 * The whole job `pg_basebackup` does, as one call: check the target, start the session,
 * route every archive into a sink (plain directory, tar files, or one Writable), stream WAL
 * beside it, write the manifest and the recovery settings, fsync, and on any failure remove
 * what this run created so that nothing that looks like a finished backup is left behind.
 * @module
 */
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { ConnectionOptions } from '../connection/types.js';
import { resolveConnectionOptions } from '../connection/options.js';
import { AbortError, ChecksumFailureError, ConfigError } from '../errors.js';
import { buildPrimaryConninfo, recoveryConfigContents, STANDBY_SIGNAL_FILE } from '../recovery/standby.js';
import { checkCompressionAvailable } from '../compress/backends.js';
import { resolveCompression, type CompressionSpec } from '../compress/spec.js';
import { DirectorySink } from '../sinks/directory.js';
import { TarFilesSink } from '../sinks/tar-files.js';
import type { BackupSink, Injection } from '../sinks/types.js';
import { WritableSink } from '../sinks/writable.js';
import { DirectoryWalSink } from '../wal/directory-sink.js';
import type { BackupPhaseEvent, BackupProgress, ChecksumFailureEvent } from './events.js';
import type { BaseBackupOptions } from './options.js';
import { PhaseClock } from './phases.js';
import { startBackup, type BackupResult, type BackupSession } from './session.js';
import { TarFileWalSink } from './tar-wal.js';

/** Plain format (`-Fp`): a data directory ready to start. */
export interface PlainOutput {
  format: 'plain';
  /** The data directory to create; it must be empty or absent (`-D`). */
  directory: string;
  /** Tablespace relocation, server location → local location, both absolute (`-T OLD=NEW`). */
  tablespaceMapping?: ReadonlyMap<string, string>;
  /** Put the WAL in this absolute directory, `pg_wal` becoming a symlink to it (`--waldir`). */
  waldir?: string;
}

/** Tar format (`-Ft`) into a directory: `base.tar`, `<oid>.tar`, `pg_wal.tar`, `backup_manifest`. */
export interface TarOutput {
  format: 'tar';
  /** The output directory; it must be empty or absent (`-D`). */
  directory: string;
}

/**
 * Tar format into one Writable (`-D -`): the single `base.tar`, with `backup_manifest` injected
 * into it, as pg_basebackup writes to standard output. Only a cluster without user tablespaces
 * can be written this way, and WAL must be `none` or `fetch`. For uploads with streamed WAL,
 * use a {@link SinkOutput}.
 */
export interface StreamOutput {
  format: 'tar-stream';
  /** Where the tar goes, e.g. `process.stdout` or an upload stream. */
  stream: Writable;
  /**
   * End the stream when the backup is complete. With `true` the stream belongs to the backup: a
   * failed backup destroys it (without an error, so a pipeline sees a premature close). With
   * `false` it is left open either way.
   *
   * The default differs from {@link WritableSink} and {@link BackupArchive.pipeTo} (both `true`)
   * on purpose: the stream here is typically `process.stdout` (`pgbb backup -D -`), which a
   * library must not end, while those building blocks are handed a stream made for the one
   * archive. Set `true` for an upload or a file stream, so that its consumer sees the end.
   * @default false
   */
  end?: boolean;
}

/**
 * Any {@link BackupSink} of your own (an object-store upload, say): it gets each archive as the
 * server sends it (`base.tar`, `<oid>.tar`, named `.gz`/`.lz4`/`.zst` with server-side
 * compression), then, with `wal: 'stream'`, `pg_wal.tar` (pushed through the sink's
 * `openArchiveStream` as the WAL arrives when it has one, and then a permanent slot is told of no
 * flushed WAL, since the stream is durable only once complete; without one the session spools the
 * WAL in `tempDir` and hands it over last), then the manifest
 * (`writeManifest`), then `finish()`; `cleanup()` after a failure unless `noClean`. The archives
 * come as they are: client-side compression and `writeRecoveryConf` are the sink's business and
 * are refused here.
 *
 * @example
 * ```ts
 * await runBackup({ connection, output: { sink: new MyUploadSink(bucket, prefix) } });
 * ```
 */
export interface SinkOutput {
  /** Optional tag: `{ sink }` alone is enough. */
  format?: 'sink';
  /** Where the archives and the manifest go. */
  sink: BackupSink;
}

/** Options of {@link runBackup}: the backup itself plus where it goes. */
export interface RunBackupOptions extends BaseBackupOptions {
  /** Where the backup is written. */
  output: PlainOutput | TarOutput | StreamOutput | SinkOutput;
  /**
   * Write `standby.signal` and `primary_conninfo` (and `primary_slot_name` with a named slot)
   * into `postgresql.auto.conf`, inside `base.tar` for tar output (`-R`).
   * @default false
   */
  writeRecoveryConf?: boolean;
  /** Keep what was written when the backup fails (`-n`/`--no-clean`). @default false */
  noClean?: boolean;
  /** Skip the final fsync (`-N`/`--no-sync`). @default false */
  noSync?: boolean;
  /**
   * Called with progress (throttled by `progressIntervalMs`, plus a final call once the data and
   * WAL arrived). Its `phase` is the run's, as reported to {@link RunBackupOptions.onPhase}.
   */
  onProgress?: (progress: BackupProgress) => void;
  /** Called for each damaged page (or file total) the server reports. */
  onChecksumFailure?: (failure: ChecksumFailureEvent) => void;
  /** Called with things that went wrong without failing the backup (e.g. cleanup problems). */
  onWarning?: (warning: Error) => void;
  /** Called once the server has started the backup (checkpoint done). */
  onStart?: (session: BackupSession) => void;
  /**
   * Called each time the run enters a phase, as the session's `onPhase` (`checkpoint` as soon
   * as BASE_BACKUP is sent, `data` when the checkpoint completed), except that here `manifest`
   * also covers writing `backup_manifest` and the final fsync, and `done` comes once the output
   * is complete and synced.
   * @default none
   */
  onPhase?: (event: BackupPhaseEvent) => void;
}

/**
 * What {@link runBackup} reports after a successful backup. Its `stats.phases` and
 * `stats.durationMs` cover the whole run: the manifest phase includes writing the manifest
 * and the final fsync, and the duration runs from the call to the end of the run.
 */
export interface RunBackupResult extends BackupResult {
  /** The files or directories written (tar: archive files; plain: the data directory and tablespaces). */
  outputs: string[];
}

/** The spec when it asks for compression on the client (the tar outputs' job), else `undefined`. */
function clientSide(spec: CompressionSpec): CompressionSpec | undefined {
  return spec.location === 'client' && spec.algorithm !== 'none' ? spec : undefined;
}

function makeSink(
  o: RunBackupOptions,
  groupReadable: boolean,
  injection: Injection | undefined,
  clientCompression: CompressionSpec | undefined,
): BackupSink {
  const out = o.output;
  const noSync = o.noSync ?? false;
  // Server-side compression is asked of the server by the session.
  const compression = clientCompression ? { compression: clientCompression } : {};
  switch (out.format) {
    case 'plain':
      return new DirectorySink({
        directory: out.directory,
        groupReadable,
        noSync,
        ...(out.tablespaceMapping ? { tablespaceMapping: out.tablespaceMapping } : {}),
        ...(out.waldir !== undefined ? { waldir: out.waldir } : {}),
        ...(injection ? { injection } : {}),
      });
    case 'tar':
      return new TarFilesSink({ directory: out.directory, noSync, ...(injection ? { injection } : {}), ...compression });
    case 'tar-stream':
      return new WritableSink(out.stream, {
        injectManifest: o.manifest ?? true,
        end: out.end ?? false,
        ...(injection ? { injection } : {}),
        ...compression,
      });
    default:
      return out.sink;
  }
}

function checkOutput(o: RunBackupOptions, spec: CompressionSpec): void {
  const out = o.output;
  if (out.format === undefined || out.format === 'sink') {
    if (typeof out.sink?.writeArchive !== 'function') throw new ConfigError('invalid output: give a format, or a sink with writeArchive()');
    if (spec.algorithm !== 'none' && spec.location === 'client') {
      throw new ConfigError(
        'a custom sink receives the archives as they come: compress in the sink, or ask the server to (server-gzip, server-lz4, server-zstd)',
      );
    }
    if (o.writeRecoveryConf) {
      throw new ConfigError(
        'writeRecoveryConf cannot be applied to a custom sink: add standby.signal and primary_conninfo in the sink, or write to a directory',
      );
    }
    return;
  }
  if (spec.algorithm !== 'none') {
    if (spec.location === 'client' && out.format === 'plain') {
      // pg_basebackup: "only tar mode backups can be compressed".
      throw new ConfigError(
        'only tar output can be compressed on the client: choose tar output, or server-side compression (decompressed here into the plain directory)',
      );
    }
    if (spec.location === 'server' && out.format === 'tar-stream' && ((o.manifest ?? true) || o.writeRecoveryConf)) {
      // pg_basebackup: "cannot inject manifest into a compressed tar file".
      throw new ConfigError(
        'cannot inject the manifest or recovery settings into a tar the server compressed, written to a stream: ' +
          'compress on the client, or set manifest to false and drop writeRecoveryConf',
      );
    }
    // A missing library fails now, before anything is written or any connection is made. Plain output
    // decompresses server-compressed archives; -R into a server-compressed base.tar.* does both.
    if (spec.location === 'client') checkCompressionAvailable(spec, 'compress');
    if (spec.location === 'server' && (out.format === 'plain' || o.writeRecoveryConf)) checkCompressionAvailable(spec, 'decompress');
    if (spec.location === 'server' && out.format === 'tar' && o.writeRecoveryConf) checkCompressionAvailable(spec, 'compress');
  }
  if (out.format === 'tar-stream' && (o.wal ?? 'stream') === 'stream') {
    // pg_basebackup: "cannot stream write-ahead logs in tar mode to stdout".
    throw new ConfigError(
      "WAL cannot be streamed into a single tar written to a stream: use wal 'fetch' or 'none', or write to a directory",
    );
  }
  if (out.format !== 'plain' && o.walSink !== undefined) {
    throw new ConfigError('walSink is chosen by runBackup for its outputs: use startBackup() to route WAL yourself');
  }
}

function recoveryInjection(o: RunBackupOptions): Injection | undefined {
  if (!o.writeRecoveryConf) return undefined;
  const conn: ConnectionOptions = typeof o.connection === 'string' ? { connectionString: o.connection } : (o.connection ?? {});
  const resolved = resolveConnectionOptions(conn);
  // pg_basebackup puts the password in primary_conninfo when the connection was given one
  // (option, connection string, PGPASSWORD or prompt), never one found in .pgpass.
  const primaryConninfo = buildPrimaryConninfo(resolved, { includePassword: resolved.password !== undefined });
  const slotName = o.slot !== undefined && (o.useSlot ?? true) ? o.slot : undefined;
  return {
    appendToAutoConf: recoveryConfigContents({ primaryConninfo, slotName }),
    addFiles: [{ name: STANDBY_SIGNAL_FILE, content: Buffer.alloc(0) }],
  };
}

/**
 * Take a physical backup and write it as pg_basebackup would.
 *
 * The target is checked before connecting (it must be empty or absent). On failure (server
 * gone, connection cut, disk full, abort) everything this run created is removed unless
 * `noClean`, and the error is rethrown. Page checksum failures are the exception, as in
 * pg_basebackup: the data is complete, so the files are kept, and the run rejects with a
 * `ChecksumFailureError` listing the damaged files (the manifest is withheld, so that
 * `pg_verifybackup` and `pgbb verify` refuse the directory as a finished backup).
 *
 * @example
 * ```ts
 * import { formatLsn, runBackup } from 'pg-basebackup';
 * const result = await runBackup({
 *   connection: 'host=db1 user=replicator',
 *   output: { format: 'plain', directory: '/backups/2026-11-25' },
 *   onPhase: (e) => { if (e.phase === 'checkpoint') console.log('waiting for checkpoint to complete'); },
 *   onProgress: (p) => console.log(p.bytesDone, '/', p.totalBytes),
 * });
 * console.log(`backup ends at ${formatLsn(result.endLsn)}`);
 * ```
 */
export async function runBackup(options: RunBackupOptions): Promise<RunBackupResult> {
  const phases = new PhaseClock();
  let lastPhase: BackupPhaseEvent | undefined;
  const enterPhase = (event: BackupPhaseEvent): void => {
    lastPhase = event;
    if (phases.enter(event.phase)) options.onPhase?.(event);
  };
  const spec = resolveCompression(options.compression);
  checkOutput(options, spec);
  const injection = recoveryInjection(options);
  // The target is refused before anything is written or any connection is made.
  const sinkFor = (groupReadable: boolean): BackupSink => makeSink(options, groupReadable, injection, clientSide(spec));
  const probe = sinkFor(false);
  if (probe instanceof DirectorySink || probe instanceof TarFilesSink) await probe.verifyTarget();

  let sink: BackupSink | undefined;
  let walSink: DirectoryWalSink | undefined;
  let tarWal: TarFileWalSink | undefined;
  let session: BackupSession | undefined;
  // The plain sink needs the server's data_directory_mode (group access), known only after
  // connecting; it is made when the session knows it.
  let plainSink: DirectorySink | undefined;
  const out = options.output;
  const streamsWal = (options.wal ?? 'stream') === 'stream';
  try {
    if (out.format === 'plain' && streamsWal) {
      // WAL streaming starts as soon as the server answers BASE_BACKUP, before the data
      // directory arrives: pg_wal must exist first, as pg_basebackup makes it. The session
      // calls the WAL sink's prepare() with the server's group access before BASE_BACKUP, so
      // the data directory, pg_wal (or the --waldir link) and the WAL files get their modes.
      walSink = new DirectoryWalSink({
        directory: join(out.directory, 'pg_wal'),
        // pg_basebackup streams under the final names; we keep .partial until a segment is
        // complete so that a crash never leaves a short file under a segment's name.
        partialSuffix: '.partial',
        markDone: true,
        fsync: !(options.noSync ?? false),
        beforePrepare: async ({ groupReadable }) => {
          plainSink = (groupReadable ? sinkFor(true) : probe) as DirectorySink;
          await plainSink.walDirectory();
        },
      });
    }
    const permanentSlot = options.slot !== undefined && (options.useSlot ?? true);
    if (out.format === 'tar' && streamsWal) {
      // pg_wal.tar goes straight into the output directory as WAL arrives (no spool, no copy).
      tarWal = new TarFileWalSink({
        sink: probe as TarFilesSink,
        compression: clientSide(spec),
        durableFlush: permanentSlot && !(options.noSync ?? false),
      });
    }
    const pushed = out.format === undefined || out.format === 'sink' ? out.sink.openArchiveStream?.bind(out.sink) : undefined;
    if (pushed && streamsWal) {
      // A sink of the caller's that takes pushed archives (a repository's upload) gets pg_wal.tar as WAL
      // arrives; it compresses as it compresses its other archives. An upload is durable only once
      // complete, after the WAL stream has ended: a permanent slot is told of no flushed WAL at all
      // (holdFlush), so it keeps the backup's WAL on the server rather than trusting an upload.
      tarWal = new TarFileWalSink({
        sink: { openArchiveStream: pushed },
        compression: undefined,
        durableFlush: false,
        holdFlush: permanentSlot,
      });
    }
    const {
      output: _output,
      writeRecoveryConf: _w,
      noClean: _n,
      noSync: _s,
      onProgress,
      onChecksumFailure,
      onWarning,
      onStart,
      onPhase: _p,
      ...backupOptions
    } = options;
    session = await startBackup({
      // pg_basebackup asks for tablespace_map in tar format, where symlinks would not survive.
      tablespaceMap: out.format !== 'plain',
      ...backupOptions,
      ...(walSink ? { walSink } : tarWal ? { walSink: tarWal } : {}),
      // The session is done before the manifest is written and the output synced: that 'done' is ours.
      onPhase: (event) => {
        if (event.phase !== 'done') enterPhase(event);
      },
    });
    // The run's phase: the session is 'done' before the manifest is written and the output synced.
    if (onProgress) session.on('progress', (p) => onProgress({ ...p, phase: phases.phase ?? p.phase }));
    if (onChecksumFailure) session.on('checksum-failure', onChecksumFailure);
    if (onWarning) session.on('warning', onWarning);
    onStart?.(session);

    sink = (plainSink as DirectorySink | undefined) ?? (session.groupReadable && out.format === 'plain' ? sinkFor(true) : probe);
    if (sink instanceof DirectorySink) {
      await sink.verifyTablespaces(session.tablespaces.flatMap((t) => (t.location ? [t.location] : [])));
    }
    const signal = options.signal;
    for await (const archive of session.archives()) {
      await sink.writeArchive(
        { name: archive.name, tablespacePath: archive.tablespace?.location ?? '', terminated: true },
        archive.chunks(),
        signal ? { signal } : {},
      );
    }
    const manifest = await session.manifest();
    let result: BackupResult;
    try {
      result = await session.result();
    } catch (err) {
      if (err instanceof ChecksumFailureError) {
        // The data is all there but must not be trusted: keep it (as pg_basebackup does),
        // without the manifest, so no verifier mistakes it for a finished backup.
        await sink.finish().catch(() => undefined);
      }
      throw err;
    }
    // The session no longer watches the signal once the server side is done; an abort until
    // runBackup returns still means "leave nothing behind" (the manifest and the final fsync
    // can take a while).
    throwIfAborted(signal);
    if (manifest) await sink.writeManifest(manifest, signal ? { signal } : {});
    throwIfAborted(signal);
    await sink.finish();
    throwIfAborted(signal);
    enterPhase({ ...lastPhase!, phase: 'done' });
    return {
      ...result,
      stats: { ...result.stats, phases: phases.durations(), durationMs: phases.totalMs() },
      outputs: outputsOf(options),
    };
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    session?.destroy(err instanceof AbortError ? undefined : err);
    // Waits for the session's own cleanup (a slot created with createSlot is dropped), so that
    // when runBackup rejects nothing of this run is left on the server either.
    await session?.close().catch(() => undefined);
    // Failing after the server side completed (manifest, fsync, abort): a slot made for this
    // run goes too, as after any other failure. A checksum failure keeps the data, and the slot.
    if (!(err instanceof ChecksumFailureError)) await session?.discardCreatedSlot();
    await walSink?.abort(err).catch(() => undefined);
    await tarWal?.abort(err).catch(() => undefined);
    // A stream runBackup was to end is destroyed (without an error, which would throw from a
    // stream nobody listens to for errors): a pipeline or upload behind it sees a premature
    // close, not a truncated tar that ends like a complete one.
    if (out.format === 'tar-stream' && out.end === true && !out.stream.destroyed) out.stream.destroy();
    const keep = options.noClean || err instanceof ChecksumFailureError;
    if (!keep) {
      // Each sink removes only what it created; the plain one may exist before `sink` is set.
      for (const s of new Set([sink, plainSink as DirectorySink | undefined, probe])) {
        await s?.cleanup().catch((cleanupErr: unknown) => {
          options.onWarning?.(cleanupErr instanceof Error ? cleanupErr : new Error(String(cleanupErr)));
        });
      }
    }
    throw err;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  // Worded as the session words it: the caller's reason ("interrupted by SIGINT"), not a bare
  // abort()'s DOMException.
  const why = (reason instanceof Error && reason.name !== 'AbortError') || reason instanceof AbortError ? `: ${reason.message}` : '';
  throw new AbortError(`the backup was aborted${why}`, { cause: reason });
}

function outputsOf(o: RunBackupOptions): string[] {
  const out = o.output;
  if (out.format === 'plain' || out.format === 'tar') return [out.directory];
  return [];
}
