/**
 * The vocabulary of backup verification: options, findings, progress and summary.
 * @module
 */
import type { BackupManifest } from '../manifest/types.js';

/** What kind of problem a {@link VerifyFinding} reports. */
export type VerifyFindingKind =
  /** The manifest is not a valid backup manifest (bad JSON, missing or unknown fields, duplicate path). */
  | 'manifest-invalid'
  /** The manifest's contents do not match its `Manifest-Checksum`. */
  | 'manifest-checksum-mismatch'
  /** A file the manifest lists is not in the backup. */
  | 'missing-file'
  /** A file in the backup is not in the manifest (or is not a regular file, or an unexpected archive). */
  | 'extra-file'
  /** A file's size differs from the manifest's. */
  | 'size-mismatch'
  /** A file's checksum differs from the manifest's. */
  | 'checksum-mismatch'
  /** A WAL segment needed by a WAL range is absent. */
  | 'wal-missing'
  /** WAL needed by a WAL range is damaged (bad page header, record CRC, broken record chain) or ends early. */
  | 'wal-invalid'
  /** pg_control's system identifier differs from the manifest's (version 2 manifests). */
  | 'system-identifier-mismatch'
  /** pg_control is damaged (CRC mismatch, wrong size). */
  | 'control-file-invalid'
  /** A file or archive could not be read (permissions, I/O error, unsupported compression, broken tar). */
  | 'unreadable';

/** One problem found in the backup. */
export interface VerifyFinding {
  kind: VerifyFindingKind;
  /**
   * What the finding is about: a path relative to the data directory (`base/5/16384`), an archive
   * member or archive name, a WAL segment file name, or the manifest's path.
   */
  path: string;
  /** The message as pg_verifybackup words it, e.g. `"base/1/1234" has size 8192 on disk but size 16384 in the manifest`. */
  message: string;
  /** More about the cause (the system error, the WAL reader's complaint), when there is more. */
  detail?: string;
  /** The tar archive the file was found in (tar-format backups). */
  archive?: string;
}

/** Compression of a tar archive, from its name (`.tar`, `.tar.gz`/`.tgz`, `.tar.lz4`, `.tar.zst`). */
export type ArchiveCompression = 'none' | 'gzip' | 'lz4' | 'zstd';

/** An archive of a tar-format backup, as handed to an {@link ArchiveOpener}. */
export interface ArchiveRef {
  /** File name in the backup directory, e.g. `base.tar.gz`. */
  name: string;
  /** Full path. */
  path: string;
  compression: ArchiveCompression;
}

/**
 * Turns an archive file into the bytes of the tar stream inside it (decompressed), or returns
 * `undefined` (or throws) when it cannot, e.g. for an unsupported compression: the slot where
 * decompressors plug in.
 */
export type ArchiveOpener = (archive: ArchiveRef) => AsyncIterable<Uint8Array> | undefined;

/** A progress observation. */
export interface VerifyProgress {
  /** `checksums` (plain), `archives` (tar: archive bytes read), `wal`. */
  phase: 'checksums' | 'archives' | 'wal';
  doneBytes: number;
  totalBytes: number;
}

/** Options of {@link verifyBackup}; they mirror pg_verifybackup's. */
export interface VerifyOptions {
  /**
   * The backup: a plain data directory, the directory holding `base.tar` etc., or a single tar file
   * holding the whole backup with its manifest as a member (what `pgbb backup -D - -Ft > x.tar` writes;
   * `.tar.gz`, `.tar.lz4` and `.tar.zst` as client compression writes them, or any name whose first
   * bytes say the compression).
   */
  backupDir: string;
  /**
   * The manifest to verify against (`-m`).
   * @default `<backupDir>/backup_manifest`; for a single tar file, its `backup_manifest` member
   */
  manifestPath?: string;
  /** `plain` or `tar` (`-F`). @default `plain` when `<backupDir>/PG_VERSION` exists, else `tar` (always `tar` for a single tar file) */
  format?: 'plain' | 'tar';
  /**
   * Paths (relative to the data directory) to leave out, with everything below them (`-i`). Always
   * ignored as well, as by pg_verifybackup: `backup_manifest`, `pg_wal`, `postgresql.auto.conf`,
   * `recovery.signal`, `standby.signal`.
   * @default []
   */
  ignore?: readonly string[];
  /** Stop at the first problem (`-e`). @default false */
  exitOnError?: boolean;
  /** Check presence and sizes only, not file checksums (`-s`). @default false */
  skipChecksums?: boolean;
  /** Do not check the WAL ranges (`-n`). @default false */
  noWal?: boolean;
  /**
   * Where the WAL is (`-w`): a directory of segment files, or a tar archive holding them.
   * @default `<backupDir>/pg_wal` (plain); `pg_wal.tar*`, else `pg_wal/` inside `base.tar*` (tar); `pg_wal/` inside a single tar file
   */
  walDir?: string;
  /**
   * Also run this `pg_waldump` over each WAL range (as pg_verifybackup does), for WAL in a directory;
   * its failure is a `wal-invalid` finding. It must be of the backup's major version.
   */
  pgWaldumpPath?: string;
  /**
   * Files over 256 KiB checksummed at once in a plain backup, each with its next 1 MiB read in flight
   * on the thread pool (smaller files are read synchronously, one after the other, in between). With
   * `threads` each worker thread reads one file at a time, and this only bounds their default number.
   * @default 2
   */
  concurrency?: number;
  /**
   * Worker threads that compute plain-backup checksums (each reads and checksums whole files);
   * 0 keeps all work on the calling thread.
   * @default min(concurrency ?? 4, cores − 1) with 4 or more cores and more than 256 MB to checksum
   * slowly (SHA-2, or CRC-32C without `@node-rs/crc32`), else 0
   */
  threads?: number;
  /** Cancels verification; the iterator then throws an AbortError. */
  signal?: AbortSignal;
  /** Called as bytes are checked. */
  onProgress?: (progress: VerifyProgress) => void;
  /** Opens tar archives; replace to add or change decompressors. @default `.tar`, gzip, lz4, and zstd where available */
  openArchive?: ArchiveOpener;
}

/** What a finished verification saw. */
export interface VerifySummary {
  /** True when there were no findings. */
  ok: boolean;
  /** Findings reported (all of them unless `exitOnError` stopped early). */
  findings: number;
  /** `true` when the run stopped before the end (exitOnError). */
  stoppedEarly: boolean;
  format: 'plain' | 'tar';
  manifestVersion?: 1 | 2;
  /** Files the manifest lists. */
  manifestFiles: number;
  /** Files whose checksum was computed and compared. */
  filesChecksummed: number;
  /** Bytes read to compute checksums (plain) or archive bytes read (tar). */
  bytesRead: number;
  /** WAL ranges checked, and WAL records whose CRC was verified. */
  walRanges: number;
  walRecords: number;
  elapsedMs: number;
}

/** The run returned by {@link verifyBackup}: iterate it for findings; `summary` is set when it ends. */
export interface VerifyRun extends AsyncIterableIterator<VerifyFinding> {
  /** Set once iteration finished (normally or by exitOnError). */
  readonly summary: VerifySummary | undefined;
  /** The parsed manifest, once read. */
  readonly manifest: BackupManifest | undefined;
}
