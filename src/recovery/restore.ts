/**
 * `restoreBackup`: a backup written by `pgbb backup` or pg_basebackup (plain or tar, compressed or
 * not, with tablespaces) into a new data directory that starts as the restored server: verified first,
 * the WAL archive walked and the recovery target resolved before any file is written (pre-flight), the
 * files laid out with PostgreSQL's modes, and `recovery.signal` plus the recovery settings written so
 * that recovery fetches WAL with `pgbb restore-wal`. Everything written is taken back on failure or abort.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AbortError, ConfigError, PgBackupError, VerifyError, WalArchiveError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { canonicalizePath } from '../sinks/tablespace-mapping.js';
import { readControlFile } from '../verify/control-file.js';
import { verifyBackupAll } from '../verify/verify.js';
import type { VerifyFinding, VerifySummary } from '../verify/types.js';
import { probeWalArchive } from './archive-probe.js';
import { inspectBackup, type ArchiveLocation, type BackupSource } from './backup-source.js';
import { RestoreLayout, type MemberRoute } from './layout.js';
import { preflightRestore, type PreflightResult, type TargetTimeline } from './preflight.js';
import { RECOVERY_SIGNAL_FILE, recoveryAutoConf, restoreCommandLine, type TargetAction } from './recovery-settings.js';
import { AUTO_CONF_FILE, STANDBY_SIGNAL_FILE } from './standby.js';
import { applyChain, checkChainSources } from './chain-apply.js';
import { StreamingManifestCheck } from './stream-verify.js';
import { directoryWalArchive, type WalArchiveSource } from './wal-source.js';
import type { RecoveryTarget } from './wal-targets.js';

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  /** The backup: a plain data directory, or the directory holding `base.tar*` (and `<oid>.tar*`, `pg_wal.tar*`). */
  backupDir: string;
  /** The new data directory: absent or empty. */
  dataDir: string;
  /**
   * The WAL archive recovery reads from (what `pgbb receive-wal` or an `archive_command` fills). With it,
   * the restore walks the archive first (pre-flight), writes `recovery.signal`, and sets `restore_command`
   * to `pgbb restore-wal`. Without it the server replays only the WAL inside the backup and starts.
   */
  walArchive?: string | undefined;
  /** Where recovery stops; needs {@link walArchive}. @default the end of the archive */
  target?: RecoveryTarget | undefined;
  /** Stop just before the target instead of just after it (`recovery_target_inclusive = false`). @default false */
  exclusive?: boolean | undefined;
  /** `recovery_target_timeline`. @default 'latest' (PostgreSQL's default) */
  targetTimeline?: TargetTimeline | undefined;
  /** `recovery_target_action`. @default PostgreSQL's (`pause`) */
  targetAction?: TargetAction | undefined;
  /** Tablespace relocation: old location → new location (both absolute). Unmapped tablespaces go back where they were. */
  tablespaceMapping?: ReadonlyMap<string, string> | undefined;
  /**
   * Where each tablespace goes, by its OID and old location, instead of `tablespaceMapping`: for a
   * caller that relocates them all without knowing them beforehand (a rehearsal keeps them in its
   * scratch directory).
   */
  relocateTablespace?: ((tablespace: { oid: number; location: string }) => string) | undefined;
  /** Put the WAL directory here, with `pg_wal` a symbolic link to it (`initdb --waldir`). */
  walDir?: string | undefined;
  /** Verify the backup against its manifest first (as `pgbb verify`). @default true */
  verify?: boolean | undefined;
  /** Skip fsync of the restored files. @default false */
  noSync?: boolean | undefined;
  /**
   * The words that run pgbb in `restore_command` (absolute paths).
   * @default [the running node executable, this package's dist/cli/main.js]
   */
  pgbbCommand?: readonly string[] | undefined;
  /** Cancels the restore; everything written so far is removed. */
  signal?: AbortSignal | undefined;
  /** Told about each step as it finishes (the pre-flight's resolved target before any file is written). */
  onEvent?: ((event: RestoreEvent) => void) | undefined;
}

/** The steps of a restore. */
export type RestoreEvent =
  | { type: 'inspected'; format: 'plain' | 'tar'; startLsn: Lsn; timeline: number; endLsn: Lsn | undefined; tablespaces: number }
  | { type: 'verified'; summary: VerifySummary }
  | { type: 'preflight'; result: PreflightResult }
  | { type: 'restored'; files: number; bytes: number };

/** What {@link restoreBackup} did. */
export interface RestoreResult {
  dataDir: string;
  format: 'plain' | 'tar';
  startLsn: Lsn;
  timeline: number;
  endLsn: Lsn | undefined;
  /** The pre-flight's findings (with {@link RestoreOptions.walArchive}). */
  preflight: PreflightResult | undefined;
  /** Where recovery will stop, as the pre-flight resolved it. */
  targetLsn: Lsn | undefined;
  /** The new location of each tablespace, by OID. */
  tablespaces: { oid: number; location: string }[];
  files: number;
  bytes: number;
  /** The `restore_command` written, when there is one. */
  restoreCommand: string | undefined;
  durationMs: number;
}

/** The node executable and this package's CLI entry (`dist/cli/main.js`), found from this module's location. */
export function defaultPgbbCommand(): string[] {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pg-basebackup') {
          return [process.execPath, join(dir, 'dist', 'cli', 'main.js')];
        }
      } catch {
        // Not ours; keep looking up.
      }
    }
    dir = dirname(dir);
  }
  throw new ConfigError('cannot find the pg-basebackup package (for restore_command): pass pgbbCommand');
}

/**
 * Restore a backup into a new data directory.
 * @throws ConfigError (incremental backup, unreachable target, bad options), TargetError (directory not
 *   empty), VerifyError (the backup does not match its manifest), WalArchiveError (damaged archive),
 *   IoError, AbortError. Nothing is left behind when it throws.
 * @example
 * ```ts
 * const r = await restoreBackup({
 *   backupDir: '/backups/monday', dataDir: '/srv/pg/restored', walArchive: '/backups/wal',
 *   target: { kind: 'name', name: 'before-upgrade' }, targetAction: 'promote',
 * });
 * console.log(`recovery will stop at ${formatLsn(r.targetLsn!)}`);
 * ```
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  try {
    return await restore(options);
  } catch (err) {
    // An abort surfaces from wherever it happened (a DOMException from throwIfAborted, a stream error).
    if (options.signal?.aborted && !(err instanceof AbortError)) {
      throw new AbortError('the restore was aborted; nothing it wrote was left behind', { cause: err });
    }
    throw err;
  }
}

async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const walArchive = options.walArchive === undefined ? undefined : resolve(options.walArchive);
  if (options.target && walArchive === undefined) {
    throw new ConfigError('a recovery target needs a WAL archive to replay to it: give --wal-archive (walArchive)');
  }
  checkWalDir(options.walDir);
  options.signal?.throwIfAborted();
  const source = await inspectBackup(options.backupDir);
  return restoreSource(source, {
    ...options,
    wal:
      walArchive === undefined
        ? undefined
        : {
            source: directoryWalArchive(walArchive),
            restoreCommand: () => restoreCommandLine(options.pgbbCommand ?? defaultPgbbCommand(), walArchive),
          },
    verification: (options.verify ?? true) ? 'directory' : 'none',
  });
}

function checkWalDir(walDir: string | undefined): void {
  if (walDir !== undefined && !isAbsolute(walDir)) {
    throw new ConfigError(`the WAL directory location must be an absolute path: "${walDir}"`);
  }
}

/** What {@link restoreSource} restores, and from where recovery fetches WAL. */
export interface RestoreSourceOptions extends Omit<RestoreOptions, 'backupDir' | 'walArchive' | 'verify' | 'pgbbCommand'> {
  /**
   * The WAL archive (pre-flight) and the `restore_command` that reads it; none: replay the backup's own
   * WAL. `preflight`: its result when the caller already ran it (see {@link restorePreflight}).
   */
  wal:
    | {
        source: WalArchiveSource;
        restoreCommand: () => string;
        preflight?: { preflight: PreflightResult; systemIdentifier: bigint } | undefined;
      }
    | undefined;
  /**
   * `directory`: run `verify` over the backup directory first; `stream`: check every archive member
   * against the manifest as it is restored (archives that are not local files); `none`.
   */
  verification: 'directory' | 'stream' | 'none';
  /**
   * The older backups of the incremental chain that `source` (tar) ends, the full backup first: the
   * chain is combined in place as it streams (chain-apply.ts), each backup checked against its own
   * manifest under `stream` verification.
   * @default none: `source` is restored as it is
   */
  chain?: readonly BackupSource[] | undefined;
}

/**
 * Restore an inspected backup (a directory's, or one stored in a repository): the steps of
 * {@link restoreBackup} after the backup was found.
 */
export async function restoreSource(source: BackupSource, options: RestoreSourceOptions): Promise<RestoreResult> {
  const t0 = performance.now();
  const signal = options.signal;
  const emit = options.onEvent ?? (() => undefined);
  const dataDir = resolve(options.dataDir);
  checkWalDir(options.walDir);
  const walDir = options.walDir === undefined ? undefined : resolve(options.walDir);
  signal?.throwIfAborted();
  emit({
    type: 'inspected',
    format: source.format,
    startLsn: source.label.startLsn,
    timeline: source.label.startTimeline,
    endLsn: source.endLsn,
    tablespaces: source.tablespaces.length,
  });
  const tablespaces = source.tablespaces.map((ts) => ({
    ...ts,
    newLocation: options.relocateTablespace?.(ts) ?? mapLocation(ts.location, options.tablespaceMapping),
  }));
  await RestoreLayout.checkUsable(dataDir, 'data directory');
  for (const ts of tablespaces)
    await RestoreLayout.checkUsable(ts.newLocation, `tablespace ${ts.oid} location (map it elsewhere with -T ${ts.location}=NEWDIR)`);
  if (walDir !== undefined) await RestoreLayout.checkUsable(walDir, 'WAL directory');
  if (options.wal === undefined && source.format === 'plain' && !(await hasWal(join(source.dir, 'pg_wal')))) {
    throw new ConfigError('the backup holds no WAL (taken with -X none): give the WAL archive it needs with --wal-archive');
  }

  if (options.verification === 'directory') {
    // With an archive the pre-flight checks the WAL (the backup may hold none, -X none).
    const { summary, findings } = await verifyBackupAll({
      backupDir: source.dir,
      noWal: options.wal !== undefined,
      ...(signal ? { signal } : {}),
    });
    if (!summary.ok) throw verifyFailure(findings, source.dir);
    emit({ type: 'verified', summary });
  }
  const chain = options.chain === undefined || options.chain.length === 0 ? undefined : [...options.chain, source];
  if (chain) checkChainSources(chain);
  let streamCheck: StreamingManifestCheck | undefined;
  if (options.verification === 'stream' && !chain) {
    if (!source.manifest) {
      throw new VerifyError(`the backup ${source.dir} has no backup manifest to verify it against: restore it with --no-verify`, {
        path: source.dir,
      });
    }
    streamCheck = new StreamingManifestCheck(source.manifest);
  }

  let preflight: PreflightResult | undefined;
  let archiveSysid: bigint | undefined;
  if (options.wal !== undefined) {
    ({ preflight, systemIdentifier: archiveSysid } =
      options.wal.preflight ?? (await restorePreflight(source, options.wal.source, options)));
    emit({ type: 'preflight', result: preflight });
  }

  const layout = new RestoreLayout({ noSync: options.noSync, signal });
  try {
    await layout.claim(dataDir, 'data directory');
    for (const ts of tablespaces) await layout.claim(ts.newLocation, `tablespace ${ts.oid} location`);
    if (walDir !== undefined) await layout.claim(walDir, 'WAL directory');
    const route = dataRoute(dataDir, walDir);
    const observe = (archive: ArchiveLocation, oid: number) =>
      streamCheck?.observer(typeof archive === 'string' ? basename(archive) : archive.name, oid);
    if (chain) {
      const written = await applyChain(layout, chain, {
        dataDir,
        route,
        tablespaces,
        walDir,
        verify: options.verification === 'stream',
      });
      await layout.settleFiles(written);
    } else if (source.format === 'tar') {
      await layout.extractArchive(source.baseArchive!, route, observe(source.baseArchive!, 0));
      for (const ts of tablespaces) await layout.extractArchive(ts.path, (name) => join(ts.newLocation, name), observe(ts.path, ts.oid));
      if (source.walArchive) await layout.extractArchive(source.walArchive, (name) => join(walDir ?? join(dataDir, 'pg_wal'), name));
    } else {
      await layout.copyTree(source.dir, (rel, type) => {
        // A tablespace is a link (pg_basebackup), or a directory (a backup combined from extracted tar backups).
        const m = /^pg_tblspc\/(\d+)(?:\/(.+))?$/.exec(rel);
        const ts = m ? tablespaces.find((x) => x.oid === Number(m[1])) : undefined;
        if (ts) return m![2] === undefined ? (type === 'file' ? undefined : ts.newLocation) : join(ts.newLocation, m![2]);
        // A plain backup's pg_wal may be a link (pg_basebackup --waldir): its contents are copied.
        return route(rel, type === 'symlink' && rel === 'pg_wal' ? 'directory' : type);
      });
    }
    if (streamCheck) {
      const findings = streamCheck.finish();
      if (findings.length > 0) throw verifyFailure(findings, source.dir);
      emit({
        type: 'verified',
        summary: {
          ok: true,
          findings: 0,
          stoppedEarly: false,
          format: 'tar',
          manifestFiles: streamCheck.manifestFiles,
          filesChecksummed: streamCheck.filesChecksummed,
          bytesRead: streamCheck.bytesRead,
          walRanges: 0,
          walRecords: 0,
          elapsedMs: Math.round(performance.now() - t0),
        },
      });
    }
    for (const ts of tablespaces) await layout.link(ts.newLocation, join(dataDir, 'pg_tblspc', String(ts.oid)));
    const wal = walDir ?? join(dataDir, 'pg_wal');
    if (walDir !== undefined) await layout.link(walDir, join(dataDir, 'pg_wal'));
    await layout.directory(join(wal, 'archive_status'));
    signal?.throwIfAborted();

    if (archiveSysid !== undefined) {
      const control = readControlFile(await readFile(join(dataDir, 'global', 'pg_control')));
      if (control && control.systemIdentifier !== archiveSysid) {
        throw new WalArchiveError(
          `the WAL archive belongs to database system ${archiveSysid}, but the backup to ${control.systemIdentifier}: point --wal-archive at this cluster's archive`,
        );
      }
    }

    let restoreCommand: string | undefined;
    const autoConfPath = join(dataDir, AUTO_CONF_FILE);
    const previous = await readFile(autoConfPath, 'utf8').catch(() => '');
    if (options.wal !== undefined) {
      restoreCommand = options.wal.restoreCommand();
      await layout.writeSmallFile(
        autoConfPath,
        recoveryAutoConf(previous, {
          restoreCommand,
          target: options.target,
          exclusive: options.exclusive,
          targetTimeline: options.targetTimeline,
          targetAction: options.targetAction,
        }),
      );
      await layout.writeSmallFile(join(dataDir, RECOVERY_SIGNAL_FILE), '');
    } else {
      await layout.writeSmallFile(autoConfPath, recoveryAutoConf(previous, undefined));
    }
    await layout.syncDirectories([dataDir, ...tablespaces.map((ts) => ts.newLocation), ...(walDir ? [walDir] : [])]);
    const { files, bytes } = layout.stats;
    emit({ type: 'restored', files, bytes });
    return {
      dataDir,
      format: source.format,
      startLsn: source.label.startLsn,
      timeline: source.label.startTimeline,
      endLsn: source.endLsn,
      preflight,
      targetLsn: preflight?.resolution.reached ? preflight.resolution.lsn : undefined,
      tablespaces: tablespaces.map((ts) => ({ oid: ts.oid, location: ts.newLocation })),
      files,
      bytes,
      restoreCommand,
      durationMs: performance.now() - t0,
    };
  } catch (err) {
    await layout.undo();
    throw err;
  }
}

function verifyFailure(findings: readonly VerifyFinding[], dir: string): VerifyError {
  const shown = findings
    .slice(0, 5)
    .map((f) => f.message + (f.detail ? ` (${f.detail})` : ''))
    .join('; ');
  return new VerifyError(
    `the backup does not match its manifest (${findings.length} problem${findings.length === 1 ? '' : 's'}): ${shown}. ` +
      'Run pgbb verify for the full list, or restore anyway with --no-verify',
    { path: dir },
  );
}

/** The pre-flight, after checking that the archive is this cluster's; returns the archive's system identifier too. */
export async function restorePreflight(
  source: BackupSource,
  walArchive: WalArchiveSource,
  o: Pick<RestoreOptions, 'target' | 'exclusive' | 'targetTimeline' | 'signal'>,
): Promise<{ preflight: PreflightResult; systemIdentifier: bigint }> {
  const probe = await probeWalArchive(walArchive);
  const manifestSysid = source.manifest?.systemIdentifier;
  if (manifestSysid !== undefined && manifestSysid !== probe.systemIdentifier) {
    throw new WalArchiveError(
      `the WAL archive ${walArchive.location} belongs to database system ${probe.systemIdentifier}, but the backup to ${manifestSysid}: point --wal-archive at this cluster's archive`,
    );
  }
  if (source.format === 'plain') {
    const control = readControlFile(await readFile(join(source.dir, 'global', 'pg_control')).catch(() => Buffer.alloc(0)));
    if (control && control.systemIdentifier !== probe.systemIdentifier) {
      throw new WalArchiveError(
        `the WAL archive ${walArchive.location} belongs to database system ${probe.systemIdentifier}, but the backup to ${control.systemIdentifier}: point --wal-archive at this cluster's archive`,
      );
    }
  }
  try {
    const preflight = await preflightRestore({
      source: walArchive,
      startLsn: source.label.startLsn,
      timeline: source.label.startTimeline,
      // Without a manifest the end of the backup is unknown: the start is the earliest it can be.
      endLsn: source.endLsn ?? source.label.startLsn,
      target: o.target,
      inclusive: !(o.exclusive ?? false),
      targetTimeline: o.targetTimeline ?? 'latest',
      segmentSize: probe.segmentSize,
      systemIdentifier: probe.systemIdentifier,
      major: probe.major,
      signal: o.signal,
    });
    return { preflight, systemIdentifier: probe.systemIdentifier };
  } catch (err) {
    if (err instanceof PgBackupError && err.code === 'ERR_PGBB_CONFIG') {
      throw new ConfigError(
        `pre-flight: ${err.message} (backup start ${formatLsn(source.label.startLsn)}, end ${source.endLsn === undefined ? 'unknown' : formatLsn(source.endLsn)})`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Where a member of the base archive or plain backup goes in the new data directory. */
function dataRoute(dataDir: string, walDir: string | undefined): MemberRoute {
  return (name, type) => {
    // The restore writes its own recovery files and tablespace links; a standby.signal would make a standby.
    if (name === 'backup_manifest' || name === 'backup_manifest.tmp' || name === 'tablespace_map') return undefined;
    if (name === STANDBY_SIGNAL_FILE || name === RECOVERY_SIGNAL_FILE) return undefined;
    if (/^pg_tblspc\/\d+$/.test(name)) return undefined;
    if (type === 'symlink') return undefined;
    if (walDir !== undefined && (name === 'pg_wal' || name.startsWith('pg_wal/'))) {
      return name === 'pg_wal' ? walDir : join(walDir, name.slice('pg_wal/'.length));
    }
    return join(dataDir, name);
  };
}

function mapLocation(location: string, mapping: ReadonlyMap<string, string> | undefined): string {
  const canonical = canonicalizePath(location);
  return mapping?.get(canonical) ?? canonical;
}

async function hasWal(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.some((n) => /^[0-9A-F]{24}$/.test(n));
}
