/**
 * What one combine run carries from file to file: the chain, the output, the manifest being built,
 * the tracker of what was written (removed on failure), the callbacks and the counts.
 * @module
 */
import { AbortError } from '../errors.js';
import type { ManifestBuilder } from '../manifest/build.js';
import type { ManifestFileChecksumAlgorithm } from '../manifest/checksum.js';
import type { BackupManifest } from '../manifest/types.js';
import type { OutputTracker } from '../sinks/tracker.js';
import type { CombineOptions } from './types.js';

/** Bytes read or written per I/O call when copying and reconstructing. */
export const IO_CHUNK = 1024 * 1024;

/** The state of one combine run. */
export interface Ctx {
  backups: string[];
  output: string;
  dryRun: boolean;
  checksum: ManifestFileChecksumAlgorithm;
  latestManifest: BackupManifest | undefined;
  /** Every input backup's manifest (undefined where missing), in chain order. */
  manifests: (BackupManifest | undefined)[];
  builder: ManifestBuilder | undefined;
  manifestParts: Buffer[];
  tracker: OutputTracker;
  dirMode: number;
  fileMode: number;
  signal: AbortSignal | undefined;
  debug: (m: string) => void;
  warn: (m: string) => void;
  onFile: CombineOptions['onFile'];
  stats: { copied: number; reconstructed: number; bytes: number };
}

/** A file of the output: its size and its checksum in the new manifest (empty for NONE and dry runs). */
export interface Written {
  size: number;
  checksum: string;
}

/** A tablespace directory name under pg_tblspc: an OID. */
export const isOid = (name: string): boolean => /^[1-9]\d{0,9}$/.test(name) && Number(name) <= 0xffffffff;

/** Throws the AbortError once `signal` has fired. */
export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('the combine was aborted', { cause: signal.reason });
}
