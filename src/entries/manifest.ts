/**
 * Backup manifests (`backup_manifest`, PostgreSQL 13+): parsing with the manifest checksum checked,
 * building one, and the per-file checksums a manifest lists (CRC32C, SHA-224/256/384/512).
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { parseManifest } from 'pg-basebackup/manifest';
 *
 * const manifest = parseManifest(await readFile('/backups/monday/backup_manifest'));
 * console.log(manifest.files.size, 'files; WAL', manifest.walRanges);
 * ```
 * @module pg-basebackup/manifest
 */
export { parseManifest, type ManifestParseOptions } from '../manifest/parse.js';
export {
  buildManifest,
  ManifestBuilder,
  type ManifestBuildFile,
  type ManifestBuildInput,
  type ManifestBuildOptions,
} from '../manifest/build.js';
export type { BackupManifest, ManifestFile, ManifestWalRange } from '../manifest/types.js';
export {
  CHECKSUM_LENGTHS,
  createChecksum,
  MANIFEST_FILE_CHECKSUM_ALGORITHMS,
  parseChecksumAlgorithm,
  type ChecksumContext,
  type ManifestFileChecksumAlgorithm,
} from '../manifest/checksum.js';
export { crc32c } from '../manifest/crc32c.js';
