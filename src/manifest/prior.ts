/**
 * The prior backup's manifest of an incremental backup, as the caller gives it: its bytes, or
 * the path of its `backup_manifest` file, read here so that the backup session does no file I/O.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';

/**
 * The prior backup's manifest for an incremental backup: the bytes given, or the file read.
 * @throws ConfigError when the file cannot be read, saying which path to give.
 * @example
 * ```ts
 * const manifest = await readPriorManifest('/backups/monday/backup_manifest');
 * ```
 */
export async function readPriorManifest(source: Buffer | string): Promise<Buffer> {
  if (Buffer.isBuffer(source)) return source;
  try {
    return await readFile(source);
  } catch (err) {
    throw new ConfigError(
      `cannot read the prior backup's manifest ${JSON.stringify(source)} for the incremental backup ` +
        `(${(err as NodeJS.ErrnoException).code ?? String(err)}): give the path of its backup_manifest file`,
      { cause: err },
    );
  }
}
