/**
 * Rebuilding one file from `INCREMENTAL.<name>` in the newest backup and the chain before it: the
 * sources found backwards through the chain until a full copy, the block plan (plan.ts), and the plan
 * carried out: runs of blocks copied from each source, zeros where no backup has the block, or the
 * whole file copied from the older backup it is unchanged since.
 * @module
 */
import { join } from 'node:path';
import { CombineError, PgBackupError } from '../errors.js';
import { createChecksum } from '../manifest/checksum.js';
import { ioError } from '../sinks/tracker.js';
import { checkAbort, IO_CHUNK, type Ctx, type Written } from './context.js';
import {
  createOutputFile,
  kernelCopy,
  openForRead,
  readExactly,
  readIncrementalHeader,
  statOrUndefined,
  writeAll,
  type FileHandle,
} from './files.js';
import { DEFAULT_BLOCK_SIZE, INCREMENTAL_PREFIX } from './incremental-file.js';
import { planReconstruction, type PlanSource, type ReconstructionPlan } from './plan.js';

const BLCKSZ = DEFAULT_BLOCK_SIZE;
const ZEROS = Buffer.alloc(IO_CHUNK);

function describePlan(plan: ReconstructionPlan, paths: readonly string[]): string {
  return plan.runs
    .map((r, i) => {
      let start = 0;
      for (let j = 0; j < i; j++) start += plan.runs[j]!.blocks;
      const range = r.blocks === 1 ? `${start}` : `${start}-${start + r.blocks - 1}`;
      return r.source === null ? ` ${range}:zero` : ` ${range}:${paths[r.source]}@${r.offset}`;
    })
    .join('');
}

/** Rebuild one file from `INCREMENTAL.<bare>` in the newest backup and the chain before it. */
export async function reconstruct(
  ctx: Ctx,
  inPath: string,
  outPath: string,
  relDir: string,
  bare: string,
  manifestPath: string,
): Promise<Written> {
  const latest = await readIncrementalHeader(inPath);
  const older: PlanSource[] = [];
  const paths = [inPath];
  const sizes = [latest.size];
  const backupOf = [ctx.backups.length - 1];
  let foundFull = false;
  for (let i = ctx.backups.length - 2; i >= 0; i--) {
    const dir = ctx.backups[i]!;
    const full = join(dir, relDir, bare);
    const st = await statOrUndefined(full);
    if (st?.isFile()) {
      older.push({ kind: 'full', sizeBytes: st.size });
      paths.push(full);
      sizes.push(st.size);
      backupOf.push(i);
      foundFull = true;
      break;
    }
    const inc = join(dir, relDir, INCREMENTAL_PREFIX + bare);
    if ((await statOrUndefined(inc)) === undefined) {
      throw new CombineError(
        `"${manifestPath}" is sent incrementally in "${ctx.backups[i + 1]}", but "${dir}" has neither the file ` +
          `nor ${INCREMENTAL_PREFIX}${bare}: that backup is not the one the next was taken against (list the chain in order, ` +
          'without leaving one out), or it is damaged',
        { path: full },
      );
    }
    const h = await readIncrementalHeader(inc);
    older.push({ kind: 'incremental', header: h.header });
    paths.push(inc);
    sizes.push(h.size);
    backupOf.push(i);
  }
  if (!foundFull && older.length > 0 && ctx.backups.length > 1) {
    throw new CombineError(`no full copy of "${manifestPath}" in the chain: the first backup must be a full backup`, { path: inPath });
  }
  if (ctx.backups.length === 1) {
    throw new CombineError(
      `"${inPath}" is an incremental file, but only one backup was given: list the full backup and every ` +
        'incremental backup of the chain',
      { path: inPath },
    );
  }
  const plan = planReconstruction(latest.header, older, BLCKSZ);
  for (const [i, need] of plan.bytesNeeded.entries()) {
    if (need > sizes[i]!) {
      throw new CombineError(`file "${paths[i]}" is too short: expected ${need}, found ${sizes[i]}: the backup is damaged`, {
        path: paths[i],
      });
    }
  }
  const size = plan.blockLength * BLCKSZ;
  ctx.debug(`${ctx.dryRun ? 'would reconstruct' : 'reconstructing'} "${outPath}" (${plan.blockLength} blocks, checksum ${ctx.checksum})`);
  ctx.debug(`reconstruction plan:${describePlan(plan, paths)}`);
  if (ctx.dryRun) return { size, checksum: '' };

  if (plan.fullCopyFrom !== undefined) {
    // Unchanged since an older backup, same length: copy that file whole (pg_combinebackup does), and reuse
    // its checksum from that backup's manifest when the algorithm matches.
    const from = paths[plan.fullCopyFrom]!;
    const entry = ctx.manifests[backupOf[plan.fullCopyFrom]!]?.files.get(manifestPath);
    const known =
      ctx.checksum === 'NONE'
        ? ''
        : entry !== undefined && entry.checksumAlgorithm === ctx.checksum && entry.size === size
          ? entry.checksum
          : undefined;
    if (known !== undefined) {
      ctx.debug(`copying "${from}" to "${outPath}" (unchanged since that backup)`);
      await kernelCopy(from, outPath, ctx.fileMode, ctx.tracker);
      return { size, checksum: known };
    }
  }

  const sum = createChecksum(ctx.checksum);
  const handles = new Map<number, FileHandle>();
  let out: FileHandle | undefined;
  try {
    out = await createOutputFile(outPath, ctx.fileMode, ctx.tracker);
    const buf = Buffer.allocUnsafe(IO_CHUNK);
    for (const run of plan.runs) {
      checkAbort(ctx.signal);
      let remaining = run.blocks * BLCKSZ;
      let pos = run.offset;
      if (run.source === null) {
        while (remaining > 0) {
          const n = Math.min(remaining, IO_CHUNK);
          await writeAll(out, ZEROS.subarray(0, n), sum);
          remaining -= n;
        }
        continue;
      }
      let h = handles.get(run.source);
      if (!h) {
        h = await openForRead(paths[run.source]!);
        handles.set(run.source, h);
      }
      while (remaining > 0) {
        const n = Math.min(remaining, IO_CHUNK);
        await readExactly(h, buf, n, pos, paths[run.source]!);
        await writeAll(out, buf.subarray(0, n), sum);
        remaining -= n;
        pos += n;
      }
    }
  } catch (err) {
    throw err instanceof PgBackupError ? err : ioError(`could not reconstruct "${outPath}"`, outPath, err);
  } finally {
    await out?.close();
    for (const h of handles.values()) await h.close();
  }
  return { size, checksum: sum.hex() };
}
