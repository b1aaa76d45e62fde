/**
 * Where a restore reads archived WAL from: the one interface behind `restore-wal`, the restore
 * pre-flight and the archive probe, so that the rules they apply (which archived copy serves a name,
 * how it is decompressed and checked) are written once whatever holds the files. This module has the
 * interface, the choice among archived names, and the WAL archive directory (what `pg_receivewal` or
 * `pgbb receive-wal -D` writes); a backup repository's `wal/` is the other implementation
 * (`repositoryWalArchive` in `pg-basebackup/repository`).
 * @module
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PARTIAL_SUFFIX } from '../archive/names.js';
import { COMPRESSION_SUFFIX } from '../compress/spec.js';
import { WalArchiveError } from '../errors.js';

/** Compression suffixes an archived WAL file may carry, in the order they are looked for. */
export const ARCHIVE_SUFFIXES = [
  COMPRESSION_SUFFIX.none,
  COMPRESSION_SUFFIX.gzip,
  COMPRESSION_SUFFIX.lz4,
  COMPRESSION_SUFFIX.zstd,
] as const;

/** One archived copy of a WAL file. */
export interface ArchivedWalFile {
  /** Its archived name (`000000010000000000000003.gz`, `...03.partial`): the suffixes say how to decompress it. */
  name: string;
  /** Where it is, for messages and results: a path, or `REPO/wal/<name>`. */
  location: string;
  /** The `.partial` of a segment still being received (served padded with zeros). */
  partial: boolean;
}

/** Options of {@link WalArchiveSource.open}. */
export interface WalArchiveOpenOptions {
  signal?: AbortSignal | undefined;
}

/**
 * A WAL archive a restore reads from. Implement it to restore from somewhere else; the contracts:
 * `names` lists what is there (archived names, in any order), `open` streams one file's stored bytes
 * (still compressed) and fails with `statusCode` 404 or `code` `ENOENT` when it vanished since it was
 * listed (expired), which callers treat as "not in the archive".
 */
export interface WalArchiveSource {
  /** Where it is, for messages (a directory, or a repository address without credentials). */
  readonly location: string;
  /**
   * The archived names that may serve `fileName` (a segment or `.history` name): every name starting
   * with it. Called with `''` for all names. A source may answer with more names; callers filter.
   */
  names(fileName: string, options?: WalArchiveOpenOptions): Promise<readonly string[]>;
  /** The stored bytes of the archived file `name` (as {@link names} lists it). */
  open(name: string, options?: WalArchiveOpenOptions): Promise<Readable>;
  /** Where `name` is, for messages. */
  locate(name: string): string;
}

const SEGMENT_RE = /^[0-9A-F]{24}$/;

/**
 * Which archived name serves `fileName` among `names`: a complete copy first (uncompressed, then by
 * suffix in {@link ARCHIVE_SUFFIXES} order), else, for a segment, its `.partial` in the same order.
 * Pure: the one rule every {@link WalArchiveSource} is read with.
 */
export function pickArchivedName(names: Iterable<string>, fileName: string): { name: string; partial: boolean } | undefined {
  const have = new Set(names);
  for (const suffix of ARCHIVE_SUFFIXES) if (have.has(fileName + suffix)) return { name: fileName + suffix, partial: false };
  if (SEGMENT_RE.test(fileName)) {
    for (const suffix of ARCHIVE_SUFFIXES) {
      const name = fileName + suffix + PARTIAL_SUFFIX;
      if (have.has(name)) return { name, partial: true };
    }
  }
  return undefined;
}

/** The archived file that serves `fileName` in `source`, if any (see {@link pickArchivedName}). */
export async function findInArchive(
  source: WalArchiveSource,
  fileName: string,
  options: WalArchiveOpenOptions = {},
): Promise<ArchivedWalFile | undefined> {
  const picked = pickArchivedName(await source.names(fileName, options), fileName);
  return picked === undefined ? undefined : { ...picked, location: source.locate(picked.name) };
}

/** Whether an error from {@link WalArchiveSource.open} (or its stream) means the file is gone. */
export function isVanished(err: unknown): boolean {
  const e = err as { code?: unknown; statusCode?: unknown };
  return e?.code === 'ENOENT' || e?.statusCode === 404;
}

/** A WAL archive directory as a {@link WalArchiveSource}. */
export function directoryWalArchive(dir: string): WalArchiveSource {
  return {
    location: dir,
    async names(fileName) {
      let all: string[];
      try {
        all = await readdir(dir);
      } catch (err) {
        throw new WalArchiveError(`cannot read the WAL archive ${dir}: ${(err as Error).message}`, { cause: err, path: dir });
      }
      return fileName === '' ? all : all.filter((n) => n.startsWith(fileName));
    },
    async open(name) {
      const stream = createReadStream(join(dir, name));
      // Surface ENOENT here rather than from the first read, as a storage's get does with 404.
      await new Promise<void>((resolveOpen, reject) => {
        stream.once('open', () => resolveOpen());
        stream.once('error', reject);
      });
      return stream;
    },
    locate(name) {
      return join(dir, name);
    },
  };
}
