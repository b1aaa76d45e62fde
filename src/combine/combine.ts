/**
 * `combineBackups`: what pg_combinebackup does, for plain-format backups. Checks that the backups form
 * one chain (same system identifier in every pg_control and manifest; the first a full backup, each
 * later one incremental to the one listed before it, by `INCREMENTAL FROM LSN/TLI` against the earlier
 * backup's start), then writes a full backup equal to the newest one: every file of the newest backup
 * is copied, each `INCREMENTAL.<name>` is rebuilt block by block from the chain (see plan.ts), files
 * absent from the newest backup are left out (they were dropped), `backup_label` loses its
 * INCREMENTAL FROM lines, and a new `backup_manifest` is written with checksums computed while writing.
 * On failure, everything written is removed.
 *
 * This file runs the steps in order: the chain checks are in chain.ts, the tree walk in tree.ts, the
 * block reconstruction in reconstruct.ts, and the file-system access in files.ts.
 * @module
 */
import { join, resolve } from 'node:path';
import { CombineError } from '../errors.js';
import { ManifestBuilder } from '../manifest/build.js';
import { createChecksum, type ManifestFileChecksumAlgorithm } from '../manifest/checksum.js';
import type { BackupManifest } from '../manifest/types.js';
import { canonicalizePath } from '../sinks/tablespace-mapping.js';
import { OutputTracker } from '../sinks/tracker.js';
import { combinedBackupLabel, parseBackupLabel, type BackupLabelInfo } from './backup-label.js';
import { checkChain, checkControlFile, checkManifestIdentifiers, validate } from './chain.js';
import { checkAbort, type Ctx } from './context.js';
import {
  isGroupReadable,
  loadManifest,
  makeSymlink,
  prepareOutputDirectory,
  readBackupLabelOf,
  readControlFileOf,
  readMajor,
  scanTablespaces,
  writeOutputFile,
} from './files.js';
import { addToManifest, processDirectory } from './tree.js';
import type { CombineOptions, CombineResult } from './types.js';

/** pg_combinebackup's check_control_files: a valid pg_control in each backup, newest first, one system identifier. */
async function checkControlFiles(backups: readonly string[]): Promise<bigint> {
  let sysid: bigint | undefined;
  for (let i = backups.length - 1; i >= 0; i--) {
    const { path, bytes } = await readControlFileOf(backups[i]!);
    sysid = checkControlFile(backups[i]!, path, bytes, sysid);
  }
  return sysid!;
}

/**
 * Combine a full backup and the incremental backups taken after it into one full backup, as
 * `pg_combinebackup` does (PostgreSQL 17+ incremental backups, plain format).
 *
 * @throws ConfigError for invalid options; CombineError when the backups do not form a chain (order,
 *   a missing middle backup, another cluster, a full backup listed after the first), an incremental
 *   file is damaged, or the output directory is not empty; IoError; AbortError.
 * @example
 * ```ts
 * const r = await combineBackups({ backups: ['/b/full', '/b/inc1', '/b/inc2'], output: '/restore/data' });
 * // r.filesReconstructed, r.startLsn: the combined backup restores to the state of /b/inc2
 * ```
 */
export async function combineBackups(options: CombineOptions): Promise<CombineResult> {
  const t0 = performance.now();
  validate(options);
  checkAbort(options.signal);
  const backups = options.backups.map((b) => resolve(b));
  const output = resolve(options.output);
  const last = backups.at(-1)!;
  const dryRun = options.dryRun ?? false;
  const wantManifest = options.manifest ?? true;
  const debug = options.onDebug ?? (() => undefined);
  const warn = options.onWarning ?? (() => undefined);

  const major = await readMajor(last);
  debug(`read server version ${major} from "${join(last, 'PG_VERSION')}"`);
  const systemIdentifier = await checkControlFiles(backups);
  debug(`system identifier is ${systemIdentifier}`);
  const labels: BackupLabelInfo[] = [];
  let lastLabel: Buffer | undefined;
  for (const dir of backups) {
    const { path, bytes } = await readBackupLabelOf(dir);
    lastLabel = bytes;
    labels.push(parseBackupLabel(bytes.toString('latin1'), path));
  }
  checkChain(backups, labels);
  const manifests: (BackupManifest | undefined)[] = [];
  for (const b of backups) manifests.push(await loadManifest(b, warn));
  checkManifestIdentifiers(backups, manifests, systemIdentifier);
  const latestManifest = manifests.at(-1);
  if (wantManifest && !dryRun && latestManifest === undefined) {
    throw new CombineError(
      'cannot generate a manifest because no manifest is available for the final input backup: ' +
        'restore its backup_manifest, or combine with --no-manifest (manifest: false)',
      { path: last },
    );
  }

  const mapping = new Map<string, string>();
  for (const [from, to] of options.tablespaceMapping ?? []) mapping.set(canonicalizePath(from), canonicalizePath(to));
  // The output keeps the newest backup's permission scheme (group read or not), like pg_combinebackup.
  const groupReadable = await isGroupReadable(last);
  const checksum: ManifestFileChecksumAlgorithm = wantManifest ? (options.manifestChecksums ?? 'CRC32C') : 'NONE';
  const ctx: Ctx = {
    backups,
    output,
    dryRun,
    checksum,
    latestManifest,
    manifests,
    builder: undefined,
    manifestParts: [],
    tracker: new OutputTracker(),
    dirMode: groupReadable ? 0o750 : 0o700,
    fileMode: groupReadable ? 0o640 : 0o600,
    signal: options.signal,
    debug,
    warn,
    onFile: options.onFile,
    stats: { copied: 0, reconstructed: 0, bytes: 0 },
  };
  const tablespaces = await scanTablespaces(last, output, mapping);

  const label = combinedBackupLabel(lastLabel!);
  let cleanup = true;
  try {
    await prepareOutputDirectory(output, ctx);
    for (const ts of tablespaces) if (!ts.inPlace) await prepareOutputDirectory(ts.directory, ctx);

    if (wantManifest && !dryRun) {
      ctx.builder =
        latestManifest!.version === 2 ? new ManifestBuilder({ version: 2, systemIdentifier }) : new ManifestBuilder({ version: 1 });
      ctx.manifestParts.push(ctx.builder.start());
    }

    // backup_label: the newest one without its INCREMENTAL FROM lines: the result is a full backup.
    const labelPath = join(output, 'backup_label');
    if (dryRun) debug(`would generate "${labelPath}"`);
    else {
      debug(`generating "${labelPath}"`);
      await writeOutputFile(labelPath, label, ctx.fileMode, ctx.tracker);
      await addToManifest(ctx, 'backup_label', labelPath, { size: label.length, checksum: createChecksum(checksum).update(label).hex() });
    }

    debug(`processing backup directory "${last}"`);
    await processDirectory(ctx, undefined, last, output, undefined);

    for (const ts of tablespaces) {
      debug(`processing tablespace directory "${ts.source}"`);
      const link = join(output, 'pg_tblspc', String(ts.oid));
      if (!dryRun) {
        if (!ts.inPlace) {
          await makeSymlink(ts.directory, link, ctx.tracker);
        } else {
          await ctx.tracker.mkdirp(ts.directory, ctx.dirMode);
        }
      }
      await processDirectory(ctx, ts.oid, ts.source, ts.directory, undefined);
    }

    if (ctx.builder) {
      ctx.manifestParts.push(ctx.builder.finish(latestManifest!.walRanges));
      const manifestPath = join(output, 'backup_manifest');
      await writeOutputFile(manifestPath, Buffer.concat(ctx.manifestParts), ctx.fileMode, ctx.tracker);
    }
    if (!dryRun && !(options.noSync ?? false)) {
      debug(`recursively fsyncing "${output}"`);
      await ctx.tracker.syncAll();
    }
    cleanup = false;
  } finally {
    if (cleanup && !dryRun) {
      await ctx.tracker.cleanup().catch((err: unknown) => warn(`could not remove what was written: ${(err as Error).message}`));
    }
  }
  const newest = labels.at(-1)!;
  return {
    output,
    systemIdentifier,
    startLsn: newest.startLsn,
    startTimeline: newest.startTimeline,
    filesCopied: ctx.stats.copied,
    filesReconstructed: ctx.stats.reconstructed,
    bytesWritten: ctx.stats.bytes + label.length,
    tablespaces,
    manifestWritten: ctx.builder !== undefined,
    dryRun,
    durationMs: performance.now() - t0,
  };
}
