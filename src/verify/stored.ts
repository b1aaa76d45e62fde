/**
 * Verifying a tar-format backup that is not in a directory: its archives are named and opened by the
 * caller (a backup repository streams them from storage), its manifest handed over as bytes. The same
 * checks as `verifyBackup` on a tar-format directory: every archive member against the manifest, the
 * files the manifest lists and no archive holds, and the WAL ranges (in `pg_wal.tar`, under `pg_wal/`
 * of `base.tar`, or in a WAL source the caller gives). No I/O here.
 * @module
 */
import { newRunState, reportMissing, type RunState } from './checks.js';
import type { WalSource } from './sources.js';
import { archiveWalSource } from './sources.js';
import { checkArchives, classifyBackupFiles } from './tar-archives.js';
import type { ArchiveOpener, VerifyFinding, VerifyOptions, VerifyRun } from './types.js';
import { checkWal, loadManifest, runWithSummary } from './verify.js';

/** Options of {@link verifyStoredBackup}. */
export interface VerifyStoredOptions
  extends Pick<VerifyOptions, 'ignore' | 'exitOnError' | 'skipChecksums' | 'noWal' | 'signal' | 'onProgress'> {
  /** What to call the backup in messages (its id). */
  name: string;
  /** The `backup_manifest` bytes. */
  manifest: Buffer;
  /** Names of the backup's archives (`base.tar.gz`, `16384.tar`, `pg_wal.tar`); other names are findings. */
  archives: readonly string[];
  /** Opens an archive by name (its `path` is the name too) and decompresses it. */
  openArchive: ArchiveOpener;
  /**
   * Where the WAL the manifest's ranges need is, when not in the backup's own archives (a backup taken
   * without WAL, whose WAL is in the repository's archive). Closed at the end.
   * @default `pg_wal.tar*`, else `pg_wal/` inside `base.tar*`
   */
  walSource?: WalSource | undefined;
}

async function* runStored(s: RunState, o: VerifyStoredOptions): AsyncGenerator<VerifyFinding, void> {
  s.format = 'tar';
  if (!(yield* loadManifest(s, o.manifest, 'backup_manifest'))) return;
  const listing = [...o.archives].sort().map((name) => ({ name, path: name, isFile: true }));
  const { archives, base, wal } = yield* classifyBackupFiles(listing);
  yield* checkArchives(s, archives);
  yield* reportMissing(s);
  if (o.noWal) {
    await o.walSource?.close();
    return;
  }
  const source =
    o.walSource ?? (wal ? archiveWalSource(wal, o.openArchive) : base ? archiveWalSource(base, o.openArchive, 'pg_wal/') : undefined);
  if (source) yield* checkWal(s, source, undefined);
  else yield { kind: 'wal-missing', path: o.name, message: `backup ${o.name} has no WAL archive and no WAL source was given` };
}

/**
 * Verify a tar-format backup whose archives the caller opens (see the module documentation). Iterate
 * the result for findings; its `summary` is set at the end.
 *
 * @example
 * ```ts
 * const run = verifyStoredBackup({ name: 'b1', manifest, archives: ['base.tar', 'pg_wal.tar'], openArchive: (ref) => openFromStorage(ref.name) });
 * for await (const f of run) console.error(f.message);
 * ```
 */
export function verifyStoredBackup(options: VerifyStoredOptions): VerifyRun {
  const verifyOptions: VerifyOptions = {
    backupDir: options.name,
    format: 'tar',
    openArchive: options.openArchive,
    ...(options.ignore ? { ignore: options.ignore } : {}),
    ...(options.exitOnError ? { exitOnError: options.exitOnError } : {}),
    ...(options.skipChecksums ? { skipChecksums: options.skipChecksums } : {}),
    ...(options.noWal ? { noWal: options.noWal } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  const state = newRunState(verifyOptions);
  return runWithSummary(state, runStored(state, options));
}
