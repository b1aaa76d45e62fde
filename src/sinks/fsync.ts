/**
 * fsync by path: the one place where a directory (or a file no longer open) is made durable. Used by the
 * backup sinks, the WAL directory writer, the local repository storage and the WAL restore. It imports
 * nothing of the library, so every layer that writes files can use it.
 *
 * Only the fsync itself goes to libuv's thread pool: opening and closing a read-only descriptor takes
 * microseconds, less than the two extra round trips through the pool that the promise API would make of
 * them, and a plain backup syncs one file per relation fork.
 * @module
 */
import { closeSync, constants as fsConstants, fsync, openSync } from 'node:fs';

/**
 * fsyncs a directory, so that the entries created, renamed or removed in it survive a crash (a file's own
 * fsync does not cover its name). Like PostgreSQL's `fsync_fname`, a file system that refuses fsync on a
 * directory (EBADF, EINVAL, EISDIR) is not an error; anything else is thrown as the system error, for the
 * caller to wrap in its own error type.
 *
 * @example
 * ```ts
 * await rename(tmp, final);
 * await fsyncDirectory(dirname(final));
 * ```
 */
export function fsyncDirectory(path: string): Promise<void> {
  return fsyncOpened(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY, true);
}

/**
 * fsyncs a regular file by path. fsync works per file, not per descriptor, so a fresh descriptor also
 * makes durable what was written through one that is already closed. Errors are thrown as they come.
 */
export function fsyncFile(path: string): Promise<void> {
  return fsyncOpened(path, fsConstants.O_RDONLY, false);
}

function fsyncOpened(path: string, flags: number, isDirectory: boolean): Promise<void> {
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    fsync(fd, (err) => {
      try {
        closeSync(fd);
      } catch {
        // A read-only descriptor has nothing left to report at close.
      }
      const code = err?.code;
      if (err === null || (isDirectory && (code === 'EBADF' || code === 'EINVAL' || code === 'EISDIR'))) resolve();
      else reject(err);
    });
  });
}
