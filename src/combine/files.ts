/**
 * The file-system side of combining: reading the input backups' small files (PG_VERSION, pg_control,
 * backup_label, backup_manifest), their tablespaces and incremental-file headers, and the primitives
 * the copy and the reconstruction write with (exclusive creation, exact reads, whole writes, kernel
 * copies). Errors become CombineError or IoError here, with the path at fault.
 * @module
 */
import { constants as fsConstants, type Dirent, type Stats } from 'node:fs';
import { chmod, copyFile, open, readdir, readFile, readlink, stat, symlink, writeFile, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { CombineError, PgBackupError } from '../errors.js';
import type { createChecksum } from '../manifest/checksum.js';
import { parseManifest } from '../manifest/parse.js';
import type { BackupManifest } from '../manifest/types.js';
import { checkEmptyOrAbsent } from '../sinks/fs-util.js';
import { canonicalizePath } from '../sinks/tablespace-mapping.js';
import { ioError, type OutputTracker } from '../sinks/tracker.js';
import { checkAbort, IO_CHUNK, isOid } from './context.js';
import { IncrementalHeaderReader, type IncrementalHeader } from './incremental-file.js';
import type { CombinedTablespace } from './types.js';

// The types of what these functions return, for the files that use them without touching node:fs.
export type { Dirent, FileHandle };

const LITTLE_ENDIAN = endianness() === 'LE';

/** A small file whole; a CombineError (pointing at the backup directory) when it cannot be read or is too large. */
export async function readSmall(path: string, what: string, maxBytes: number): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CombineError(`could not read ${what} "${path}" (${code ?? String(err)}): is this a plain-format backup directory?`, {
      path,
      cause: err,
    });
  }
  if (bytes.length > maxBytes) throw new CombineError(`file "${path}" is too large for ${what}`, { path });
  return bytes;
}

/** PG_VERSION of a backup, as a major number. */
export async function readMajor(dir: string): Promise<number> {
  const path = join(dir, 'PG_VERSION');
  const text = (await readSmall(path, 'the server version file', 128)).toString('latin1');
  const m = /^(\d+)\n/.exec(text);
  if (!m) throw new CombineError(`${path}: could not parse version number`, { path });
  return Number(m[1]);
}

/** A backup's `global/pg_control`, and where it is. */
export async function readControlFileOf(dir: string): Promise<{ path: string; bytes: Buffer }> {
  const path = join(dir, 'global', 'pg_control');
  return { path, bytes: await readSmall(path, 'the control file', 1 << 20) };
}

/** A backup's `backup_label`, and where it is. */
export async function readBackupLabelOf(dir: string): Promise<{ path: string; bytes: Buffer }> {
  const path = join(dir, 'backup_label');
  return { path, bytes: await readSmall(path, 'the backup label', 10000 + 1024) };
}

/** A backup's manifest, parsed; `undefined` (with a warning) when there is none. */
export async function loadManifest(dir: string, warn: (m: string) => void): Promise<BackupManifest | undefined> {
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

/** Whether a backup directory is group-readable (the output keeps its permission scheme). */
export async function isGroupReadable(dir: string): Promise<boolean> {
  return ((await stat(dir)).mode & 0o040) !== 0;
}

/** pg_combinebackup's scan_for_existing_tablespaces, over the newest backup. */
export async function scanTablespaces(last: string, output: string, mapping: ReadonlyMap<string, string>): Promise<CombinedTablespace[]> {
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
        throw new CombineError(
          `tablespace at "${canon}" has no tablespace mapping: give -T ${canon}=NEWDIR ` +
            "(tablespaceMapping), so the combined backup does not write into the input backup's tablespace",
          { path: canon },
        );
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
export async function readIncrementalHeader(path: string): Promise<{ header: IncrementalHeader; size: number }> {
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

/** stat, or `undefined` when the path does not exist; other failures are IoErrors. */
export async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`could not stat "${path}"`, path, err);
  }
}

/** A file's size (it must exist). */
export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** A written file's modification time. */
export async function modificationTime(path: string): Promise<Date> {
  return (await stat(path)).mtime;
}

/** The entries of an input directory, sorted by name (byte order, as pg_combinebackup walks). */
export async function listDirectory(dir: string): Promise<Dirent[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw ioError(`could not open directory "${dir}"`, dir, err);
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Opens an input file for reading. */
export function openForRead(path: string): Promise<FileHandle> {
  return open(path, 'r');
}

/** Creates an output file that must not exist yet, and registers it with the tracker (removed on failure). */
export async function createOutputFile(path: string, mode: number, tracker: OutputTracker): Promise<FileHandle> {
  const out = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  tracker.file(path);
  return out;
}

/** Writes a whole new file (that must not exist yet) and registers it with the tracker. */
export async function writeOutputFile(path: string, data: Buffer | string, mode: number, tracker: OutputTracker): Promise<void> {
  try {
    await writeFile(path, data, { mode, flag: 'wx' });
  } catch (err) {
    throw ioError(`could not write "${path}"`, path, err);
  }
  tracker.file(path);
}

/** Makes `link` a symbolic link to `target`, registered with the tracker. */
export async function makeSymlink(target: string, link: string, tracker: OutputTracker): Promise<void> {
  try {
    await symlink(target, link);
  } catch (err) {
    throw ioError(`could not create symbolic link from "${link}" to "${target}"`, link, err);
  }
  tracker.symlink(link);
}

/** Writes `bytes`, feeding the checksum. */
export async function writeAll(out: FileHandle, bytes: Buffer, sum: ReturnType<typeof createChecksum>): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const { bytesWritten } = await out.write(bytes, off, bytes.length - off);
    off += bytesWritten;
  }
  sum.update(bytes);
}

/** Reads exactly `length` bytes at `position`; a CombineError when the file ends first. */
export async function readExactly(h: FileHandle, buf: Buffer, length: number, position: number, path: string): Promise<void> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await h.read(buf, got, length - got, position + got);
    if (bytesRead === 0) {
      throw new CombineError(
        `could not read file "${path}": read only ${got} of ${length} bytes at offset ${position}: the file is truncated`,
        { path },
      );
    }
    got += bytesRead;
  }
}

/** Copy a whole file when nothing has to be computed: the kernel copies (copy_file_range / sendfile where available). */
export async function kernelCopy(from: string, to: string, mode: number, tracker: OutputTracker): Promise<void> {
  try {
    await copyFile(from, to, fsConstants.COPYFILE_EXCL);
    tracker.file(to);
    await chmod(to, mode);
  } catch (err) {
    throw ioError(`could not copy "${from}" to "${to}"`, to, err);
  }
}

/** Copy a file through this process, feeding `sum`; returns the bytes copied. */
export async function copyThrough(
  inPath: string,
  outPath: string,
  mode: number,
  tracker: OutputTracker,
  sum: ReturnType<typeof createChecksum>,
  signal: AbortSignal | undefined,
): Promise<number> {
  let input: FileHandle | undefined;
  let out: FileHandle | undefined;
  let size = 0;
  try {
    input = await open(inPath, 'r');
    out = await createOutputFile(outPath, mode, tracker);
    const buf = Buffer.allocUnsafe(IO_CHUNK);
    for (;;) {
      checkAbort(signal);
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
  return size;
}

/** Make (or accept, when empty) an output directory; `dryRun` only says what would be done. */
export async function prepareOutputDirectory(
  dir: string,
  o: { dryRun: boolean; dirMode: number; tracker: OutputTracker; debug: (m: string) => void },
): Promise<void> {
  const exists = await checkEmptyOrAbsent(dir).catch((err: unknown) => {
    throw new CombineError(`${(err as Error).message}`, { path: dir, cause: err });
  });
  if (o.dryRun) {
    o.debug(exists ? `using existing directory "${dir}"` : `would create directory "${dir}"`);
    return;
  }
  if (!exists) await o.tracker.mkdirp(dir, o.dirMode);
  else await chmod(dir, o.dirMode).catch(() => undefined);
}
