/**
 * Bookkeeping shared by the file-system sinks: which paths this sink created (so a failed backup can be
 * removed without touching anything else) and which need an fsync at the end.
 * @module
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { IoError, PgBackupError } from '../errors.js';
import { fsyncDirectory, fsyncFile } from './fsync.js';

/**
 * Records created paths. Only "roots" (created paths whose parent existed before) are kept for cleanup,
 * since removing a root removes what we created below it; the set of created directories stays small
 * (a cluster has far fewer directories than files).
 */
export class OutputTracker {
  private readonly roots: string[] = [];
  private readonly createdDirs = new Set<string>();
  private readonly filesToSync: string[] = [];
  private readonly dirsToSync = new Set<string>();

  /** Paths to remove on cleanup, in creation order. */
  get created(): readonly string[] {
    return this.roots;
  }

  private record(path: string): void {
    const parent = dirname(path);
    if (!this.createdDirs.has(parent)) {
      this.roots.push(path);
      // The new entry in a directory we did not create must be made durable too.
      this.dirsToSync.add(parent);
    }
  }

  /** A directory we created. */
  dir(path: string): void {
    this.record(path);
    this.createdDirs.add(path);
    this.dirsToSync.add(path);
  }

  /** A regular file we created. */
  file(path: string): void {
    this.record(path);
    this.filesToSync.push(path);
  }

  /** A file we wrote to without creating it (appended to, or created by someone else): synced, never removed. */
  touched(path: string): void {
    this.filesToSync.push(path);
  }

  /** A symlink we created (the parent directory is synced; the link itself cannot be). */
  symlink(path: string): void {
    this.record(path);
  }

  /** `mkdir -p` that records each level it created. */
  async mkdirp(path: string, mode: number): Promise<void> {
    let first: string | undefined;
    try {
      first = await mkdir(path, { recursive: true, mode });
    } catch (err) {
      throw ioError(`could not create directory "${path}"`, path, err);
    }
    if (first === undefined) return;
    const levels: string[] = [];
    for (let p = path; ; p = dirname(p)) {
      levels.push(p);
      if (p === first || dirname(p) === p) break;
    }
    for (const p of levels.reverse()) this.dir(p);
  }

  /**
   * fsyncs every recorded file, then every recorded directory, `concurrency` at a time. Done once at the
   * end rather than per file, like pg_basebackup's final sync of the data directory.
   */
  async syncAll(concurrency = 8): Promise<void> {
    await runLimited(this.filesToSync, concurrency, (p) => syncRecorded(p, false));
    await runLimited([...this.dirsToSync], concurrency, (p) => syncRecorded(p, true));
  }

  /** Removes the roots, newest first. Missing paths are fine (a second cleanup, or removed by hand). */
  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    for (const p of [...this.roots].reverse()) {
      try {
        // rm does not follow symlinks: a tablespace link is removed, not its target.
        await rm(p, { recursive: true, force: true });
      } catch (err) {
        errors.push(ioError(`could not remove "${p}"`, p, err));
      }
    }
    this.roots.length = 0;
    this.filesToSync.length = 0;
    this.dirsToSync.clear();
    this.createdDirs.clear();
    if (errors.length > 0) throw errors[0];
  }
}

/** fsyncs a recorded path, naming it in the error. */
async function syncRecorded(path: string, isDir: boolean): Promise<void> {
  try {
    await (isDir ? fsyncDirectory(path) : fsyncFile(path));
  } catch (err) {
    throw ioError(`could not fsync "${path}"`, path, err);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function runLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/** Wraps a system error from a file-system call into an {@link IoError} naming the path. */
export function ioError(what: string, path: string, err: unknown): PgBackupError {
  if (err instanceof PgBackupError) return err;
  const e = err as NodeJS.ErrnoException;
  return new IoError(`${what}: ${e.message ?? String(err)}`, { cause: err, path, syscallCode: e.code });
}
