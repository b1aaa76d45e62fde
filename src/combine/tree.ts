/**
 * The newest backup's tree written out as the combined backup, as pg_combinebackup's
 * process_directory_recursively does: directories made, each `INCREMENTAL.<name>` reconstructed
 * (reconstruct.ts), every other file copied (by the kernel when its checksum is known or not wanted),
 * and each file added to the new manifest.
 * @module
 */
import { join } from 'node:path';
import { createChecksum } from '../manifest/checksum.js';
import { ioError } from '../sinks/tracker.js';
import { checkAbort, isOid, type Ctx, type Written } from './context.js';
import { copyThrough, fileSize, kernelCopy, listDirectory, modificationTime, statOrUndefined } from './files.js';
import { INCREMENTAL_PREFIX, incrementalTarget } from './incremental-file.js';
import { reconstruct } from './reconstruct.js';

/** Copy one file, computing its checksum unless the newest manifest already has it. */
async function copyOne(ctx: Ctx, inPath: string, outPath: string, manifestPath: string, inManifest: boolean): Promise<Written> {
  const inSize = await fileSize(inPath);
  let known: string | undefined;
  if (inManifest && ctx.checksum !== 'NONE' && ctx.latestManifest) {
    const entry = ctx.latestManifest.files.get(manifestPath);
    if (entry === undefined)
      ctx.warn(`manifest file "${join(ctx.backups.at(-1)!, 'backup_manifest')}" contains no entry for file "${manifestPath}"`);
    else if (entry.checksumAlgorithm === ctx.checksum && entry.size === inSize) known = entry.checksum;
  }
  if (ctx.dryRun) {
    ctx.debug(`would copy "${inPath}" to "${outPath}"`);
    return { size: inSize, checksum: known ?? '' };
  }
  if (known !== undefined || ctx.checksum === 'NONE' || !inManifest) {
    await kernelCopy(inPath, outPath, ctx.fileMode, ctx.tracker);
    return { size: inSize, checksum: known ?? '' };
  }
  const sum = createChecksum(ctx.checksum);
  const size = await copyThrough(inPath, outPath, ctx.fileMode, ctx.tracker, sum, ctx.signal);
  return { size, checksum: sum.hex() };
}

/** Adds a written file to the new manifest (when one is written). */
export async function addToManifest(ctx: Ctx, manifestPath: string, outPath: string, w: Written): Promise<void> {
  if (!ctx.builder) return;
  const mtime = ctx.dryRun ? new Date() : await modificationTime(outPath);
  ctx.manifestParts.push(
    ctx.builder.addFile({
      path: manifestPath,
      size: w.size,
      lastModified: new Date(Math.floor(mtime.getTime() / 1000) * 1000),
      checksumAlgorithm: ctx.checksum,
      checksum: w.checksum,
    }),
  );
}

/** pg_combinebackup's process_directory_recursively. */
export async function processDirectory(
  ctx: Ctx,
  tsOid: number | undefined,
  inRoot: string,
  outRoot: string,
  rel: string | undefined,
): Promise<void> {
  checkAbort(ctx.signal);
  const inDir = rel === undefined ? inRoot : join(inRoot, rel);
  const outDir = rel === undefined ? outRoot : join(outRoot, rel);
  const isPgTblspc = tsOid === undefined && rel === 'pg_tblspc';
  // pg_wal is not in backup manifests (the server leaves it out, verifiers ignore it).
  const isPgWal = tsOid === undefined && rel !== undefined && (rel === 'pg_wal' || rel.startsWith('pg_wal/'));
  const relPrefix = (tsOid !== undefined ? `pg_tblspc/${tsOid}/` : '') + (rel === undefined ? '' : `${rel}/`);

  if (rel !== undefined) {
    if (ctx.dryRun) ctx.debug(`would create directory "${outDir}"`);
    else {
      try {
        await ctx.tracker.mkdirp(outDir, ctx.dirMode);
      } catch (err) {
        throw ioError(`could not create directory "${outDir}"`, outDir, err);
      }
    }
  }

  const entries = await listDirectory(inDir);
  for (const e of entries) {
    checkAbort(ctx.signal);
    const inPath = join(inDir, e.name);
    const childRel = rel === undefined ? e.name : `${rel}/${e.name}`;
    let isDir = e.isDirectory();
    const isLink = e.isSymbolicLink();
    if (isPgTblspc && isOid(e.name) && (isLink || isDir)) continue;
    // A backup taken with --waldir has pg_wal as a link: the combined backup gets a real pg_wal.
    if (isLink && tsOid === undefined && childRel === 'pg_wal' && (await statOrUndefined(inPath))?.isDirectory()) isDir = true;
    if (isDir) {
      await processDirectory(ctx, tsOid, inRoot, outRoot, childRel);
      continue;
    }
    if (!e.isFile()) {
      ctx.warn(isLink ? `skipping symbolic link "${inPath}"` : `skipping special file "${inPath}"`);
      continue;
    }
    if (rel === undefined && tsOid === undefined && (e.name === 'backup_label' || e.name === 'backup_manifest')) continue;

    let outPath: string;
    let manifestPath: string;
    let written: Written;
    let reconstructed = false;
    if (incrementalTarget(relPrefix + e.name) !== undefined) {
      const bare = e.name.slice(INCREMENTAL_PREFIX.length);
      outPath = join(outDir, bare);
      manifestPath = relPrefix + bare;
      written = await reconstruct(ctx, inPath, outPath, relPrefix, bare, manifestPath);
      ctx.stats.reconstructed++;
      reconstructed = true;
    } else {
      outPath = join(outDir, e.name);
      manifestPath = relPrefix + e.name;
      written = await copyOne(ctx, inPath, outPath, manifestPath, !isPgWal);
      ctx.stats.copied++;
    }
    ctx.stats.bytes += written.size;
    ctx.onFile?.({ path: manifestPath, size: written.size, reconstructed });
    if (!isPgWal) await addToManifest(ctx, manifestPath, outPath, written);
  }
}
