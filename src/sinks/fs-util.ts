/**
 * Small file-system helpers shared by the file sinks.
 * @module
 */
import { open, readdir } from 'node:fs/promises';
import { AbortError, TargetError } from '../errors.js';
import { BatchedFileWriter, DEFAULT_BATCH_BYTES } from './file-writer.js';
import { ioError } from './tracker.js';

/** Returns whether the directory exists (empty); throws a TargetError when it exists and is not empty. */
export async function checkEmptyOrAbsent(path: string): Promise<boolean> {
  let entries: string[];
  try {
    entries = await readdir(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'ENOTDIR') throw new TargetError(`"${path}" exists but is not a directory`, { path, cause: err });
    throw ioError(`could not access directory "${path}"`, path, err);
  }
  if (entries.length > 0) {
    throw new TargetError(`directory "${path}" exists but is not empty: choose an empty or new directory, or empty it first`, { path });
  }
  return true;
}

/** Writes a whole file (created or truncated), optionally fsynced before returning (for write-then-rename). */
export async function writeWholeFile(path: string, bytes: AsyncIterable<Buffer | Uint8Array> | Buffer, mode: number,
  batch: number | undefined, signal: AbortSignal | undefined, sync: boolean): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'w', mode);
  } catch (err) {
    throw ioError(`could not create file "${path}"`, path, err);
  }
  try {
    await handle.chmod(mode);
    const writer = new BatchedFileWriter(handle, path, batch ?? DEFAULT_BATCH_BYTES);
    if (Buffer.isBuffer(bytes)) {
      await writer.write(bytes);
    } else {
      for await (const piece of bytes) {
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
        await writer.write(Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
      }
    }
    await writer.flush();
    if (sync) await handle.sync();
  } catch (err) {
    throw ioError(`could not write "${path}"`, path, err);
  } finally {
    await handle.close();
  }
}

