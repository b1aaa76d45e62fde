/**
 * `combineBackups`: what pg_combinebackup does, for plain-format backups. Checks that the backups form
 * one chain (same system identifier in every pg_control and manifest; the first a full backup, each
 * later one incremental to the one listed before it, by `INCREMENTAL FROM LSN/TLI` against the earlier
 * backup's start), then writes a full backup equal to the newest one: every file of the newest backup
 * is copied, each `INCREMENTAL.<name>` is rebuilt block by block from the chain (see plan.ts), files
 * absent from the newest backup are left out (they were dropped), `backup_label` loses its
 * INCREMENTAL FROM lines, and a new `backup_manifest` is written with checksums computed while writing.
 * On failure, everything written is removed.
 * @module
 */
import { constants as fsConstants, type Dirent, type Stats } from 'node:fs';
import { chmod, copyFile, open, readdir, readFile, readlink, stat, symlink, writeFile, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { AbortError, CombineError, ConfigError, PgBackupError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import { ManifestBuilder } from '../manifest/build.js';
import { createChecksum, MANIFEST_FILE_CHECKSUM_ALGORITHMS, type ManifestFileChecksumAlgorithm } from '../manifest/checksum.js';
import { parseManifest } from '../manifest/parse.js';
import type { BackupManifest } from '../manifest/types.js';
import { checkEmptyOrAbsent } from '../sinks/fs-util.js';
import { canonicalizePath } from '../sinks/tablespace-mapping.js';
import { ioError, OutputTracker } from '../sinks/tracker.js';
import { readControlFile } from '../verify/control-file.js';
import { combinedBackupLabel, parseBackupLabel, type BackupLabelInfo } from './backup-label.js';
import {
  DEFAULT_BLOCK_SIZE, IncrementalHeaderReader, INCREMENTAL_PREFIX, type IncrementalHeader,
} from './incremental-file.js';
import { planReconstruction, type PlanSource, type ReconstructionPlan } from './plan.js';
import type { CombinedTablespace, CombineOptions, CombineResult } from './types.js';

const BLCKSZ = DEFAULT_BLOCK_SIZE;
/** Bytes read or written per I/O call when copying and reconstructing. */
const IO_CHUNK = 1024 * 1024;
const ZEROS = Buffer.alloc(IO_CHUNK);
const LITTLE_ENDIAN = endianness() === 'LE';

interface Ctx {
  backups: string[];
  output: string;
  dryRun: boolean;
  checksum: ManifestFileChecksumAlgorithm;
  latestManifest: BackupManifest | undefined;
  /** Every input backup's manifest (undefined where missing), in chain order. */
  manifests: (BackupManifest | undefined)[];
  builder: ManifestBuilder | undefined;
  manifestParts: Buffer[];
  tracker: OutputTracker;
  dirMode: number;
  fileMode: number;
  signal: AbortSignal | undefined;
  debug: (m: string) => void;
  warn: (m: string) => void;
  onFile: CombineOptions['onFile'];
  stats: { copied: number; reconstructed: number; bytes: number };
}

const isOid = (name: string): boolean => /^[1-9]\d{0,9}$/.test(name) && Number(name) <= 0xffffffff;

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('the combine was aborted', { cause: signal.reason });
}

async function readSmall(path: string, what: string, maxBytes: number): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CombineError(`could not read ${what} "${path}" (${code ?? String(err)}): is this a plain-format backup directory?`,
      { path, cause: err });
  }
  if (bytes.length > maxBytes) throw new CombineError(`file "${path}" is too large for ${what}`, { path });
  return bytes;
}

/** PG_VERSION of a backup, as a major number. */
async function readMajor(dir: string): Promise<number> {
  const path = join(dir, 'PG_VERSION');
  const text = (await readSmall(path, 'the server version file', 128)).toString('latin1');
  const m = /^(\d+)\n/.exec(text);
  if (!m) throw new CombineError(`${path}: could not parse version number`, { path });
  return Number(m[1]);
}

/** pg_combinebackup's check_control_files: a valid pg_control in each, one system identifier. */
async function checkControlFiles(backups: readonly string[]): Promise<bigint> {
  let sysid: bigint | undefined;
  for (let i = backups.length - 1; i >= 0; i--) {
    const path = join(backups[i]!, 'global', 'pg_control');
    const info = readControlFile(await readSmall(path, 'the control file', 1 << 20));
    if (!info?.crcOk) throw new CombineError(`${path}: CRC is incorrect: the backup is damaged or not a backup`, { path });
    if (sysid === undefined) sysid = info.systemIdentifier;
    else if (info.systemIdentifier !== sysid) {
      throw new CombineError(`${path}: expected system identifier ${sysid}, but found ${info.systemIdentifier}: ` +
        `"${backups[i]}" is a backup of another cluster; combine only backups of one server`, { path });
    }
  }
  return sysid!;
}

/**
 * pg_combinebackup's check_backup_label_files: the first backup full, the others incremental, each
 * one's INCREMENTAL FROM equal to the start of the backup before it.
 */
async function checkChain(backups: readonly string[]): Promise<{ labels: BackupLabelInfo[]; lastLabel: Buffer }> {
  const labels: BackupLabelInfo[] = [];
  let lastLabel: Buffer | undefined;
  for (const [i, dir] of backups.entries()) {
    const path = join(dir, 'backup_label');
    const bytes = await readSmall(path, 'the backup label', 10000 + 1024);
    if (i === backups.length - 1) lastLabel = bytes;
    labels.push(parseBackupLabel(bytes.toString('latin1'), path));
  }
  const order = 'list the full backup first, then each incremental backup in the order they were taken';
  for (let i = backups.length - 1; i >= 0; i--) {
    const l = labels[i]!;
    if (i > 0 && l.incrementalFromLsn === undefined) {
      throw new CombineError(`backup at "${backups[i]}" is a full backup, but only the first backup should be a full backup: ${order}`,
        { path: backups[i] });
    }
    if (i === 0 && l.incrementalFromLsn !== undefined) {
      throw new CombineError(`backup at "${backups[0]}" is an incremental backup, but the first backup should be a full backup: ` +
        `${order} (the chain must start with the full backup it was taken against)`, { path: backups[0] });
    }
    if (i < backups.length - 1) {
      const next = labels[i + 1]!;
      if (l.startTimeline !== next.incrementalFromTimeline) {
        throw new CombineError(`backup at "${backups[i]}" starts on timeline ${l.startTimeline}, but "${backups[i + 1]}" was taken ` +
          `relative to a backup on timeline ${next.incrementalFromTimeline}: ${order}, without leaving one out`, { path: backups[i] });
      }
      if (l.startLsn !== next.incrementalFromLsn) {
        throw new CombineError(`backup at "${backups[i]}" starts at LSN ${formatLsn(l.startLsn)}, but expected ` +
          `${formatLsn(next.incrementalFromLsn!)} ("${backups[i + 1]}" was taken relative to the backup that started there): ` +
          `${order}, without leaving one out`, { path: backups[i] });
      }
    }
  }
  return { labels, lastLabel: lastLabel! };
}

async function loadManifest(dir: string, warn: (m: string) => void): Promise<BackupManifest | undefined> {
  const path = join(dir, 'backup_manifest');
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      warn(`"${path}" does not exist`);
      return undefined;
    }
    throw ioError(`could not read "${path}"`, path, err);
  }
  try {
    return parseManifest(bytes);
  } catch (err) {
    throw new CombineError(`"${path}" is not a valid backup manifest: ${(err as Error).message}`, { path, cause: err });
  }
}

/** pg_combinebackup's scan_for_existing_tablespaces, over the newest backup. */
async function scanTablespaces(last: string, output: string, mapping: ReadonlyMap<string, string>): Promise<CombinedTablespace[]> {
  const dir = join(last, 'pg_tblspc');
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`could not open directory "${dir}"`, dir, err);
  }
  const out: CombinedTablespace[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!isOid(e.name)) continue;
    const path = join(dir, e.name);
    if (e.isSymbolicLink()) {
      const target = await readlink(path);
      if (!isAbsolute(target)) throw new CombineError(`target of symbolic link "${path}" is relative`, { path });
      const canon = canonicalizePath(target);
      const to = mapping.get(canon);
      if (to === undefined) {
        throw new CombineError(`tablespace at "${canon}" has no tablespace mapping: give -T ${canon}=NEWDIR ` +
          '(tablespaceMapping), so the combined backup does not write into the input backup\'s tablespace', { path: canon });
      }
      out.push({ oid: Number(e.name), source: canon, directory: to, inPlace: false });
    } else if (e.isDirectory()) {
      out.push({ oid: Number(e.name), source: path, directory: join(output, 'pg_tblspc', e.name), inPlace: true });
    }
  }
  for (const [i, a] of out.entries()) {
    const b = out.slice(0, i).find((x) => x.directory === a.directory);
    if (b) throw new CombineError(`tablespaces with OIDs ${b.oid} and ${a.oid} both point at directory "${a.directory}"`);
  }
  return out;
}

/** Read and parse an incremental file's header. */
async function readIncrementalHeader(path: string): Promise<{ header: IncrementalHeader; size: number }> {
  let h: FileHandle;
  try {
    h = await open(path, 'r');
  } catch (err) {
    throw ioError(`could not open file "${path}"`, path, err);
  }
  try {
    const size = (await h.stat()).size;
    const reader = new IncrementalHeaderReader(path, { littleEndian: LITTLE_ENDIAN });
    const buf = Buffer.alloc(64 * 1024);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await h.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      if (reader.push(buf.subarray(0, bytesRead))) break;
    }
    return { header: reader.finish(), size };
  } finally {
    await h.close();
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`could not stat "${path}"`, path, err);
  }
}

function describePlan(plan: ReconstructionPlan, paths: readonly string[]): string {
  return plan.runs.map((r, i) => {
    let start = 0;
    for (let j = 0; j < i; j++) start += plan.runs[j]!.blocks;
    const range = r.blocks === 1 ? `${start}` : `${start}-${start + r.blocks - 1}`;
    return r.source === null ? ` ${range}:zero` : ` ${range}:${paths[r.source]}@${r.offset}`;
  }).join('');
}

/** Writes `bytes`, feeding the checksum. */
async function writeAll(out: FileHandle, bytes: Buffer, sum: ReturnType<typeof createChecksum>): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const { bytesWritten } = await out.write(bytes, off, bytes.length - off);
    off += bytesWritten;
  }
  sum.update(bytes);
}

async function readExactly(h: FileHandle, buf: Buffer, length: number, position: number, path: string): Promise<void> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await h.read(buf, got, length - got, position + got);
    if (bytesRead === 0) {
      throw new CombineError(`could not read file "${path}": read only ${got} of ${length} bytes at offset ${position}: the file is truncated`,
        { path });
    }
    got += bytesRead;
  }
}

interface Written { size: number; checksum: string }

/** Rebuild one file from `INCREMENTAL.<bare>` in the newest backup and the chain before it. */
async function reconstruct(ctx: Ctx, inPath: string, outPath: string, relDir: string, bare: string, manifestPath: string): Promise<Written> {
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
      throw new CombineError(`"${manifestPath}" is sent incrementally in "${ctx.backups[i + 1]}", but "${dir}" has neither the file ` +
        `nor ${INCREMENTAL_PREFIX}${bare}: that backup is not the one the next was taken against (list the chain in order, ` +
        'without leaving one out), or it is damaged', { path: full });
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
    throw new CombineError(`"${inPath}" is an incremental file, but only one backup was given: list the full backup and every ` +
      'incremental backup of the chain', { path: inPath });
  }
  const plan = planReconstruction(latest.header, older, BLCKSZ);
  for (const [i, need] of plan.bytesNeeded.entries()) {
    if (need > sizes[i]!) {
      throw new CombineError(`file "${paths[i]}" is too short: expected ${need}, found ${sizes[i]}: the backup is damaged`, { path: paths[i] });
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
    const known = ctx.checksum === 'NONE' ? ''
      : entry !== undefined && entry.checksumAlgorithm === ctx.checksum && entry.size === size ? entry.checksum : undefined;
    if (known !== undefined) {
      ctx.debug(`copying "${from}" to "${outPath}" (unchanged since that backup)`);
      await kernelCopy(ctx, from, outPath);
      return { size, checksum: known };
    }
  }

  const sum = createChecksum(ctx.checksum);
  const handles = new Map<number, FileHandle>();
  let out: FileHandle | undefined;
  try {
    out = await open(outPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, ctx.fileMode);
    ctx.tracker.file(outPath);
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
        h = await open(paths[run.source]!, 'r');
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

/** Copy a whole file when nothing has to be computed: the kernel copies (copy_file_range / sendfile where available). */
async function kernelCopy(ctx: Ctx, from: string, to: string): Promise<void> {
  try {
    await copyFile(from, to, fsConstants.COPYFILE_EXCL);
    ctx.tracker.file(to);
    await chmod(to, ctx.fileMode);
  } catch (err) {
    throw ioError(`could not copy "${from}" to "${to}"`, to, err);
  }
}

/** Copy one file, computing its checksum unless the newest manifest already has it. */
async function copyOne(ctx: Ctx, inPath: string, outPath: string, manifestPath: string, inManifest: boolean): Promise<Written> {
  const st = await stat(inPath);
  let known: string | undefined;
  if (inManifest && ctx.checksum !== 'NONE' && ctx.latestManifest) {
    const entry = ctx.latestManifest.files.get(manifestPath);
    if (entry === undefined) ctx.warn(`manifest file "${join(ctx.backups.at(-1)!, 'backup_manifest')}" contains no entry for file "${manifestPath}"`);
    else if (entry.checksumAlgorithm === ctx.checksum && entry.size === st.size) known = entry.checksum;
  }
  if (ctx.dryRun) {
    ctx.debug(`would copy "${inPath}" to "${outPath}"`);
    return { size: st.size, checksum: known ?? '' };
  }
  if (known !== undefined || ctx.checksum === 'NONE' || !inManifest) {
    await kernelCopy(ctx, inPath, outPath);
    return { size: st.size, checksum: known ?? '' };
  }
  const sum = createChecksum(ctx.checksum);
  let input: FileHandle | undefined;
  let out: FileHandle | undefined;
  let size = 0;
  try {
    input = await open(inPath, 'r');
    out = await open(outPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, ctx.fileMode);
    ctx.tracker.file(outPath);
    const buf = Buffer.allocUnsafe(IO_CHUNK);
    for (;;) {
      checkAbort(ctx.signal);
      const { bytesRead } = await input.read(buf, 0, IO_CHUNK, size);
      if (bytesRead === 0) break;
      await writeAll(out, buf.subarray(0, bytesRead), sum);
      size += bytesRead;
    }
  } catch (err) {
    throw err instanceof PgBackupError ? err : ioError(`could not copy "${inPath}" to "${outPath}"`, outPath, err);
  } finally {
    await input?.close();
    await out?.close();
  }
  return { size, checksum: sum.hex() };
}

async function addToManifest(ctx: Ctx, manifestPath: string, outPath: string, w: Written): Promise<void> {
  if (!ctx.builder) return;
  const mtime = ctx.dryRun ? new Date() : (await stat(outPath)).mtime;
  ctx.manifestParts.push(ctx.builder.addFile({
    path: manifestPath,
    size: w.size,
    lastModified: new Date(Math.floor(mtime.getTime() / 1000) * 1000),
    checksumAlgorithm: ctx.checksum,
    checksum: w.checksum,
  }));
}

/** pg_combinebackup's process_directory_recursively. */
async function processDirectory(ctx: Ctx, tsOid: number | undefined, inRoot: string, outRoot: string, rel: string | undefined): Promise<void> {
  checkAbort(ctx.signal);
  const inDir = rel === undefined ? inRoot : join(inRoot, rel);
  const outDir = rel === undefined ? outRoot : join(outRoot, rel);
  const isPgTblspc = tsOid === undefined && rel === 'pg_tblspc';
  // pg_wal is not in backup manifests (the server leaves it out, verifiers ignore it).
  const isPgWal = tsOid === undefined && rel !== undefined && (rel === 'pg_wal' || rel.startsWith('pg_wal/'));
  // Incremental files only occur in base/*, global and tablespaces; an "INCREMENTAL.x" elsewhere is an ordinary file.
  const isIncrementalDir = tsOid !== undefined ||
    (rel !== undefined && (rel.startsWith('base/') || rel === 'global' || rel.startsWith('pg_tblspc/')));
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

  let entries: Dirent[];
  try {
    entries = await readdir(inDir, { withFileTypes: true });
  } catch (err) {
    throw ioError(`could not open directory "${inDir}"`, inDir, err);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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
    if (isIncrementalDir && e.name.startsWith(INCREMENTAL_PREFIX) && e.name.length > INCREMENTAL_PREFIX.length) {
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

/** Make (or accept, when empty) an output directory. */
async function prepareOutputDirectory(ctx: Ctx, dir: string): Promise<void> {
  const exists = await checkEmptyOrAbsent(dir).catch((err: unknown) => {
    throw new CombineError(`${(err as Error).message}`, { path: dir, cause: err });
  });
  if (ctx.dryRun) {
    ctx.debug(exists ? `using existing directory "${dir}"` : `would create directory "${dir}"`);
    return;
  }
  if (!exists) await ctx.tracker.mkdirp(dir, ctx.dirMode);
  else await chmod(dir, ctx.dirMode).catch(() => undefined);
}

function validate(options: CombineOptions): void {
  if (!Array.isArray(options.backups) || options.backups.length === 0) {
    throw new ConfigError('no input directories specified: give the full backup, then the incremental backups, oldest first');
  }
  for (const b of options.backups) if (typeof b !== 'string' || b === '') throw new ConfigError('invalid backup directory: expected a path');
  if (typeof options.output !== 'string' || options.output === '') throw new ConfigError('no output directory specified');
  const alg = options.manifestChecksums;
  if (alg !== undefined && !MANIFEST_FILE_CHECKSUM_ALGORITHMS.includes(alg)) {
    throw new ConfigError(`unrecognized checksum algorithm: "${String(alg)}": use one of ${MANIFEST_FILE_CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  const out = resolve(options.output);
  for (const b of options.backups) {
    if (resolve(b) === out) throw new ConfigError(`the output directory "${options.output}" is one of the input backups: choose a new directory`);
  }
  for (const [from, to] of options.tablespaceMapping ?? []) {
    if (!isAbsolute(from) || !isAbsolute(to)) throw new ConfigError(`tablespace mapping "${from}=${to}": both directories must be absolute paths`);
  }
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
  const { labels, lastLabel } = await checkChain(backups);
  const manifests: (BackupManifest | undefined)[] = [];
  for (const b of backups) manifests.push(await loadManifest(b, warn));
  for (const [i, m] of manifests.entries()) {
    if (m?.systemIdentifier !== undefined && m.systemIdentifier !== systemIdentifier) {
      const path = join(backups[i]!, 'global', 'pg_control');
      throw new CombineError(`${path}: manifest system identifier is ${m.systemIdentifier}, but control file has ${systemIdentifier}`, { path });
    }
  }
  const latestManifest = manifests.at(-1);
  if (wantManifest && !dryRun && latestManifest === undefined) {
    throw new CombineError('cannot generate a manifest because no manifest is available for the final input backup: ' +
      'restore its backup_manifest, or combine with --no-manifest (manifest: false)', { path: last });
  }

  const mapping = new Map<string, string>();
  for (const [from, to] of options.tablespaceMapping ?? []) mapping.set(canonicalizePath(from), canonicalizePath(to));
  // The output keeps the newest backup's permission scheme (group read or not), like pg_combinebackup.
  const groupReadable = ((await stat(last)).mode & 0o040) !== 0;
  const checksum: ManifestFileChecksumAlgorithm = wantManifest ? (options.manifestChecksums ?? 'CRC32C') : 'NONE';
  const ctx: Ctx = {
    backups, output, dryRun, checksum, latestManifest, manifests,
    builder: undefined, manifestParts: [], tracker: new OutputTracker(),
    dirMode: groupReadable ? 0o750 : 0o700, fileMode: groupReadable ? 0o640 : 0o600,
    signal: options.signal, debug, warn, onFile: options.onFile,
    stats: { copied: 0, reconstructed: 0, bytes: 0 },
  };
  const tablespaces = await scanTablespaces(last, output, mapping);

  const label = combinedBackupLabel(lastLabel);
  let cleanup = true;
  try {
    await prepareOutputDirectory(ctx, output);
    for (const ts of tablespaces) if (!ts.inPlace) await prepareOutputDirectory(ctx, ts.directory);

    if (wantManifest && !dryRun) {
      ctx.builder = latestManifest!.version === 2
        ? new ManifestBuilder({ version: 2, systemIdentifier })
        : new ManifestBuilder({ version: 1 });
      ctx.manifestParts.push(ctx.builder.start());
    }

    // backup_label: the newest one without its INCREMENTAL FROM lines: the result is a full backup.
    const labelPath = join(output, 'backup_label');
    if (dryRun) debug(`would generate "${labelPath}"`);
    else {
      debug(`generating "${labelPath}"`);
      try {
        await writeFile(labelPath, label, { mode: ctx.fileMode, flag: 'wx' });
      } catch (err) {
        throw ioError(`could not write "${labelPath}"`, labelPath, err);
      }
      ctx.tracker.file(labelPath);
      await addToManifest(ctx, 'backup_label', labelPath, { size: label.length, checksum: createChecksum(checksum).update(label).hex() });
    }

    debug(`processing backup directory "${last}"`);
    await processDirectory(ctx, undefined, last, output, undefined);

    for (const ts of tablespaces) {
      debug(`processing tablespace directory "${ts.source}"`);
      const link = join(output, 'pg_tblspc', String(ts.oid));
      if (!dryRun) {
        if (!ts.inPlace) {
          try {
            await symlink(ts.directory, link);
          } catch (err) {
            throw ioError(`could not create symbolic link from "${link}" to "${ts.directory}"`, link, err);
          }
          ctx.tracker.symlink(link);
        } else {
          await ctx.tracker.mkdirp(ts.directory, ctx.dirMode);
        }
      }
      await processDirectory(ctx, ts.oid, ts.source, ts.directory, undefined);
    }

    if (ctx.builder) {
      ctx.manifestParts.push(ctx.builder.finish(latestManifest!.walRanges));
      const manifestPath = join(output, 'backup_manifest');
      try {
        await writeFile(manifestPath, Buffer.concat(ctx.manifestParts), { mode: ctx.fileMode, flag: 'wx' });
      } catch (err) {
        throw ioError(`could not write "${manifestPath}"`, manifestPath, err);
      }
      ctx.tracker.file(manifestPath);
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

