/**
 * Small file-system helpers shared by the file sinks.
 * @module
 */
import { open, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError, TargetError } from '../errors.js';
import { BatchedFileWriter, DEFAULT_BATCH_BYTES } from './file-writer.js';
import { ioError, type OutputTracker } from './tracker.js';

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
export async function writeWholeFile(
  path: string,
  bytes: AsyncIterable<Buffer | Uint8Array> | Buffer,
  mode: number,
  batch: number | undefined,
  signal: AbortSignal | undefined,
  sync: boolean,
): Promise<void> {
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
      writer.write(bytes);
    } else {
      for await (const piece of bytes) {
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
        writer.write(Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
      }
    }
    writer.flush();
    if (sync) await handle.sync();
  } catch (err) {
    throw ioError(`could not write "${path}"`, path, err);
  } finally {
    await handle.close();
  }
}

/**
 * Writes `backup_manifest` into `directory` as pg_basebackup does: to `backup_manifest.tmp`,
 * fsynced (unless `noSync`), then renamed, so that a crash never leaves a partial manifest under
 * the final name. The final file is recorded in `tracker`.
 */
export async function writeManifestFile(
  directory: string,
  bytes: AsyncIterable<Buffer | Uint8Array> | Buffer,
  mode: number,
  tracker: OutputTracker,
  o: { writeBatchBytes?: number; noSync?: boolean },
  signal: AbortSignal | undefined,
): Promise<void> {
  const tmp = join(directory, 'backup_manifest.tmp');
  const final = join(directory, 'backup_manifest');
  await writeWholeFile(tmp, bytes, mode, o.writeBatchBytes, signal, !o.noSync);
  try {
    await rename(tmp, final);
  } catch (err) {
    throw ioError(`could not rename "${tmp}" to "${final}"`, tmp, err);
  }
  if (o.noSync) tracker.file(final);
  else tracker.fileSynced(final);
}
