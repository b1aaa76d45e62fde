/**
 * Options and results of {@link combineBackups}.
 * @module
 */
import type { Lsn } from '../lsn.js';
import type { ManifestFileChecksumAlgorithm } from '../manifest/checksum.js';

/** Options of `combineBackups` (pg_combinebackup's flags). */
export interface CombineOptions {
  /**
   * Plain-format backup directories, oldest first: the full backup, then each incremental backup in the
   * order they were taken (each one taken with the previous one's manifest).
   */
  backups: readonly string[];
  /** The directory to write the combined (full) backup to; it must be empty or absent (`-o`). */
  output: string;
  /**
   * Tablespace relocation, location in the newest backup → output location, both absolute (`-T OLD=NEW`).
   * Every tablespace that is a symbolic link in the newest backup needs a mapping, as in pg_combinebackup
   * (the output must not write into the input's tablespace directories).
   * @default none
   */
  tablespaceMapping?: ReadonlyMap<string, string>;
  /** Write a `backup_manifest` for the result (`--no-manifest` when false). @default true */
  manifest?: boolean;
  /** Checksum algorithm of the new manifest's file entries (`--manifest-checksums`). @default 'CRC32C' */
  manifestChecksums?: ManifestFileChecksumAlgorithm;
  /** Check the chain and plan everything, but write nothing (`-n`). @default false */
  dryRun?: boolean;
  /** Skip the final fsync of the output (`-N`). @default false */
  noSync?: boolean;
  /** Aborts the run; what was written is removed. */
  signal?: AbortSignal;
  /** Debug messages, as pg_combinebackup prints with `-d` (reconstruction plans, directories). */
  onDebug?: (message: string) => void;
  /** Anomalies that do not stop the run (a file missing from the newest manifest, a skipped symlink). */
  onWarning?: (message: string) => void;
  /** Called after each file is written (or planned, in a dry run). */
  onFile?: (file: { path: string; size: number; reconstructed: boolean }) => void;
}

/** A tablespace of the combined backup. */
export interface CombinedTablespace {
  oid: number;
  /** Where the newest input backup has it. */
  source: string;
  /** Where the output has it. */
  directory: string;
  /** An in-place tablespace (a directory inside pg_tblspc rather than a link). */
  inPlace: boolean;
}

/** What `combineBackups` reports. */
export interface CombineResult {
  /** The output directory (absolute). */
  output: string;
  /** The cluster's system identifier, the same in every backup of the chain. */
  systemIdentifier: bigint;
  /** Start of the newest backup: the combined backup restores to the state of that backup. */
  startLsn: Lsn;
  startTimeline: number;
  /** Files copied whole. */
  filesCopied: number;
  /** Files rebuilt from `INCREMENTAL.*` files. */
  filesReconstructed: number;
  /** Bytes written (or that would be written, in a dry run), manifest excluded. */
  bytesWritten: number;
  tablespaces: CombinedTablespace[];
  /** Whether a backup_manifest was written. */
  manifestWritten: boolean;
  dryRun: boolean;
  durationMs: number;
}
