/**
 * The file-system side of a verification that is not about file contents: the backup path (directory
 * or single tar file), the manifest file, the format of a directory, the listing of a tar-format
 * backup directory, the walk over a plain one, the head of a file, and where the WAL is. The
 * checksums are read by checksum-io.ts (plain) and through the archive opener (tar).
 * @module
 */
import type { Dirent, Stats } from 'node:fs';
import { readdirSync, statSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VerifyError } from '../errors.js';
import { checkAbort, errText } from './checks.js';
import { archiveWalSource, classifyArchive, isIgnored, type WalSource } from './sources.js';
import { defaultArchiveOpener, directoryWalSource } from './sources-io.js';
import type { VerifyOptions } from './types.js';

/** What the backup path names: `file` for a single tar archive, `other` for anything else that exists. */
export async function backupPathKind(path: string): Promise<'directory' | 'file' | 'other' | 'missing'> {
  try {
    const st = await stat(path);
    return st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
  } catch {
    return 'missing';
  }
}

/** The manifest file's bytes; a VerifyError when it cannot be read. */
export async function readManifestFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new VerifyError(`could not open file "${path}": ${errText(err)}`, { cause: err, path });
  }
}

/** Throws the VerifyError pg_verifybackup's message asks for when `dir` is not a readable directory. */
export async function checkBackupDirectory(dir: string): Promise<void> {
  let dirStat: Stats;
  try {
    dirStat = await stat(dir);
  } catch (err) {
    throw new VerifyError(`could not open directory "${dir}": ${errText(err)}`, { cause: err, path: dir });
  }
  if (!dirStat.isDirectory()) throw new VerifyError(`"${dir}" is not a directory`, { path: dir });
}

/**
 * pg_verifybackup takes a directory without PG_VERSION for a tar backup. A plain backup that merely lost
 * PG_VERSION would then be misread, so without PG_VERSION a base archive decides, then a global/ directory.
 */
export async function detectFormat(dir: string): Promise<'plain' | 'tar'> {
  const isDir = async (p: string) => {
    try {
      return (await stat(p)).isDirectory();
    } catch {
      return false;
    }
  };
  try {
    await stat(join(dir, 'PG_VERSION'));
    return 'plain';
  } catch {
    // fall through
  }
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    // reported later
  }
  if (names.some((n) => classifyArchive(n).kind === 'base')) return 'tar';
  return (await isDir(join(dir, 'global'))) ? 'plain' : 'tar';
}

/** A `walDir` (-w): a directory of segments, or a tar archive holding them. */
export async function walSourceFor(path: string, o: VerifyOptions): Promise<WalSource> {
  let st: Stats | undefined;
  try {
    st = await stat(path);
  } catch {
    st = undefined;
  }
  if (st?.isFile()) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const kind = classifyArchive(name);
    const compression = kind.kind === 'unexpected' ? 'none' : kind.compression;
    return archiveWalSource({ name, path, compression }, o.openArchive ?? defaultArchiveOpener);
  }
  return directoryWalSource(path);
}

/** A name in a tar-format backup directory and what stat said of it. */
export type ListedFile = { name: string; path: string } & ({ isFile: boolean } | { error: unknown });

/** The names in a tar-format backup directory, sorted, each stat'ed; a VerifyError when the directory cannot be read. */
export async function listBackupDirectory(dir: string, ignore: readonly string[]): Promise<ListedFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new VerifyError(`could not open directory "${dir}": ${errText(err)}`, { cause: err, path: dir });
  }
  const out: ListedFile[] = [];
  for (const name of names.sort()) {
    // Ignored names are left out before stat, as pg_verifybackup leaves them.
    if (isIgnored(name, ignore)) continue;
    const path = join(dir, name);
    try {
      out.push({ name, path, isFile: (await stat(path)).isFile() });
    } catch (err) {
      out.push({ name, path, error: err });
    }
  }
  return out;
}

/** What the walk over a plain backup found at one path. */
export type WalkItem =
  | { kind: 'file'; rel: string; full: string; size: number }
  /** Neither a regular file nor a directory (after following links). */
  | { kind: 'special'; rel: string }
  /** A directory that could not be listed; `rel` is undefined for the backup directory itself. */
  | { kind: 'unlistable'; rel: string | undefined; full: string; error: unknown }
  | { kind: 'unstatable'; rel: string; error: unknown };

/**
 * Walks a plain backup's directory tree depth first, in directory order, leaving out the paths in
 * `ignore` (read as the walk goes, so paths the caller adds while consuming are left out from then on).
 *
 * Synchronous, as pg_verifybackup's walk is: a thread-pool round trip per file costs several times the
 * `stat` itself, and so does a promise per file through nested async generators. The caller gives the
 * event loop a turn now and then. An explicit stack rather than recursion, and child paths joined by
 * hand (readdir names hold no `/`, `.` or `..`), keep the cost per file at the `stat`.
 */
export function* walkDirectory(
  full: string,
  rel: string | undefined,
  ignore: readonly string[],
  signal: AbortSignal | undefined,
): Generator<WalkItem, void> {
  const stack: { full: string; rel: string | undefined; dirents: Dirent[]; next: number }[] = [];
  function* enter(dirFull: string, dirRel: string | undefined): Generator<WalkItem, void> {
    checkAbort(signal);
    try {
      stack.push({ full: dirFull, rel: dirRel, dirents: readdirSync(dirFull, { withFileTypes: true }), next: 0 });
    } catch (err) {
      yield { kind: 'unlistable', rel: dirRel, full: dirFull, error: err };
    }
  }
  yield* enter(full, rel);
  while (stack.length > 0) {
    const dir = stack[stack.length - 1]!;
    const d = dir.dirents[dir.next++];
    if (d === undefined) {
      stack.pop();
      continue;
    }
    const name = d.name;
    const childRel = dir.rel === undefined ? name : `${dir.rel}/${name}`;
    if (isIgnored(childRel, ignore)) continue;
    const childFull = dir.full.endsWith('/') ? `${dir.full}${name}` : `${dir.full}/${name}`;
    if (d.isDirectory()) {
      yield* enter(childFull, childRel);
      continue;
    }
    // stat, not lstat: pg_tblspc/<oid> links are followed, as pg_verifybackup does.
    let st: Stats;
    try {
      st = statSync(childFull);
    } catch (err) {
      yield { kind: 'unstatable', rel: childRel, error: err };
      continue;
    }
    if (st.isDirectory()) yield* enter(childFull, childRel);
    else if (st.isFile()) yield { kind: 'file', rel: childRel, full: childFull, size: st.size };
    else yield { kind: 'special', rel: childRel };
  }
}

/** The first `n` bytes of a file (fewer when it is shorter). */
export async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
