/**
 * The backup manifest as data: what `backup_manifest` says about the files and WAL of a backup.
 * @module
 */
import type { Lsn } from '../lsn.js';
import type { ManifestFileChecksumAlgorithm } from './checksum.js';

/** One file of the backup, as the manifest lists it. */
export interface ManifestFile {
  /**
   * Path relative to the data directory, `/`-separated; tablespace files as `pg_tblspc/<oid>/...`.
   * For an `Encoded-Path` entry this is the decoded bytes read as UTF-8 when they are valid UTF-8,
   * else as Latin-1 (one character per byte), so that every distinct byte string keeps a distinct key.
   */
  path: string;
  /**
   * The raw path bytes when the manifest used `Encoded-Path` (names that are not valid UTF-8, or every
   * name with MANIFEST 'force-encode'); `undefined` for a plain `Path`.
   */
  encodedPath?: Buffer;
  /** Size in bytes. */
  size: number;
  /** `Last-Modified` as written (`YYYY-MM-DD HH:MM:SS GMT`); informative only, never verified. */
  lastModified: string;
  /** NONE when the entry has no checksum fields. */
  checksumAlgorithm: ManifestFileChecksumAlgorithm;
  /** The checksum as lowercase hex; empty for NONE. */
  checksum: string;
}

/** One `WAL-Ranges` entry: WAL needed on one timeline to make the backup consistent. */
export interface ManifestWalRange {
  timeline: number;
  startLsn: Lsn;
  endLsn: Lsn;
}

/** A parsed `backup_manifest`. */
export interface BackupManifest {
  /** `PostgreSQL-Backup-Manifest-Version`: 1 (servers 13–16) or 2 (17+). */
  version: 1 | 2;
  /** `System-Identifier` (version 2 only), a 64-bit unsigned integer. */
  systemIdentifier?: bigint;
  /** Files by path, in manifest order. */
  files: Map<string, ManifestFile>;
  /** WAL ranges in manifest order (newest timeline first). */
  walRanges: ManifestWalRange[];
  /** `Manifest-Checksum`: SHA-256 of everything before its line, lowercase hex. */
  manifestChecksum: string;
}
