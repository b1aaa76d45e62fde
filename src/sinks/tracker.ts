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
  /** Files not yet known durable, each with a count of the writes begun on it (see {@link complete}). */
  private readonly filesToSync = new Map<string, number>();
  private readonly dirsToSync = new Set<string>();
  private readonly early: EarlySync | undefined;

  /**
   * @param options.syncEarly fsync each file handed to {@link complete} in the background while the
   * rest is still being written, so that {@link syncAll} has little left to do. @default false
   */
  constructor(options: { syncEarly?: boolean } = {}) {
    if (options.syncEarly) this.early = new EarlySync();
  }

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

  /** A regular file we created (and are about to write). */
  file(path: string): void {
    this.record(path);
    this.wrote(path);
  }

  /** A file we write to without creating it (appended to, or created by someone else): synced, never removed. */
  touched(path: string): void {
    this.wrote(path);
  }

  /** A symlink we created (the parent directory is synced; the link itself cannot be). */
  symlink(path: string): void {
    this.record(path);
  }

  /** A file we created that is already durable (written, fsynced and renamed into place). */
  fileSynced(path: string): void {
    this.record(path);
  }

  private wrote(path: string): void {
    this.filesToSync.set(path, (this.filesToSync.get(path) ?? 0) + 1);
  }

  /**
   * The file recorded by {@link file} or {@link touched} is written and closed: with `syncEarly`, its
   * fsync starts in the background. A write begun on the path after this call keeps it on the list of
   * {@link syncAll}.
   */
  complete(path: string): void {
    const early = this.early;
    const writes = this.filesToSync.get(path);
    if (early === undefined || writes === undefined) return;
    early.add(path, () => {
      if (this.filesToSync.get(path) === writes) this.filesToSync.delete(path);
    });
  }

  /**
   * fsyncs every recorded file, then every recorded directory, `concurrency` at a time. Done at the end,
   * like pg_basebackup's final sync of the data directory, for whatever the background fsyncs of
   * {@link complete} have not covered yet.
   */
  async syncAll(concurrency = 8): Promise<void> {
    await this.early?.stop();
    await runLimited([...this.filesToSync.keys()], concurrency, (p) => syncRecorded(p, false));
    this.filesToSync.clear();
    await runLimited([...this.dirsToSync], concurrency, (p) => syncRecorded(p, true));
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

  /** Removes the roots, newest first. Missing paths are fine (a second cleanup, or removed by hand). */
  async cleanup(): Promise<void> {
    // A background fsync still running would race with the removal; its outcome no longer matters.
    await this.early?.stop().catch(() => undefined);
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
    this.filesToSync.clear();
    this.dirsToSync.clear();
    this.createdDirs.clear();
    if (errors.length > 0) throw errors[0];
  }
}

/**
 * Background fsyncs of finished files, a few at a time: the page cache holds everything written until the
 * kernel's own writeback starts (at a share of memory a backup may never reach), so one sync at the end
 * would write the whole backup to disk while nothing else happens. Syncing each file once it is closed
 * moves that disk work under the transfer. The first error is kept and thrown by {@link stop}.
 */
class EarlySync {
  private readonly queue: { path: string; done: () => void }[] = [];
  private running = 0;
  private error: unknown;
  private waiters: (() => void)[] = [];
  private stopped = false;

  add(path: string, done: () => void): void {
    if (this.stopped) return;
    this.queue.push({ path, done });
    this.pump();
  }

  private pump(): void {
    while (this.running < EARLY_SYNC_CONCURRENCY && this.queue.length > 0) {
      const job = this.queue.shift() as { path: string; done: () => void };
      this.running++;
      syncRecorded(job.path, false).then(
        () => this.settled(job.done),
        (err: unknown) => this.settled(undefined, err),
      );
    }
  }

  private settled(done: (() => void) | undefined, err?: unknown): void {
    this.running--;
    if (err !== undefined) {
      this.error ??= err;
      this.queue.length = 0;
    } else {
      done?.();
    }
    this.pump();
    if (this.running === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  /**
   * Drops the fsyncs not yet started (their files stay on the final list, synced there with more in
   * flight) and waits for the running ones; throws the first error.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    if (this.running > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.error !== undefined) throw this.error;
  }
}

/**
 * Background fsyncs in flight at once: as many as libuv's thread pool has threads (four by default).
 * Concurrent fsyncs share the file system's journal commits, and with fewer a plain backup's thousand
 * small files were still queued at the end; the extraction's own thread-pool calls (directories, files
 * above the small-file size) are few and wait at most for one fsync.
 */
const EARLY_SYNC_CONCURRENCY = 4;

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
