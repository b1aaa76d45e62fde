/**
 * fsync by path: the one place where a directory (or a file no longer open) is made durable. Used by the
 * backup sinks, the WAL directory writer, the local repository storage and the WAL restore. It imports
 * nothing of the library, so every layer that writes files can use it.
 * @module
 */
import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

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
export async function fsyncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (handle !== undefined && (code === 'EBADF' || code === 'EINVAL' || code === 'EISDIR')) return;
    throw err;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * fsyncs a regular file by path. fsync works per file, not per descriptor, so a fresh descriptor also
 * makes durable what was written through one that is already closed. Errors are thrown as they come.
 */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
