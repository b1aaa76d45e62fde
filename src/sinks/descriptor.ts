/**
 * File descriptors used from the main thread, the way the C tools use them: the WAL writers create,
 * size, write, rename, close and remove their files with synchronous calls, each of which takes microseconds on
 * a local file system (less than a round trip through libuv's thread pool, which is also what the
 * promise API would cost per call), and wait on the pool only for fsync, which takes milliseconds.
 * Errors are thrown as the system gives them, for the caller to wrap in its own error type.
 * @module
 */
import { closeSync, fsync, unlinkSync, writeSync } from 'node:fs';

/** Writes all of `data` at `position` with `pwrite(2)` calls on this thread. */
export function writeAtSync(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    const written = writeSync(fd, data, done, data.length - done, position + done);
    if (written <= 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    done += written;
  }
}

/** fsync on libuv's thread pool. */
export function fsyncDescriptor(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Closes a descriptor while cleaning up after another error, which is the one to report. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The error being handled is the one that matters.
  }
}

/** Removes a file that may be absent, or while cleaning up after another error, which is the one to report. */
export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Absent, or the error being handled is the one that matters.
  }
}
