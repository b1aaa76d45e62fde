/**
 * Options of a streamed base backup ({@link startBackup}): the input form every caller
 * writes, and the resolved form the rest of src/backup works from. Defaults follow
 * pg_basebackup so that a backup taken with no options asks the server for exactly what
 * `pg_basebackup -D dir -F tar` would.
 * @module
 */
import { ConfigError } from '../errors.js';
import type { ConnectionOptions, ServerNotice } from '../connection/types.js';
import type { BackupPhaseEvent, CheckpointMode } from './events.js';
import type { WalSink } from '../wal/sink.js';
import { NO_COMPRESSION, resolveCompression, type CompressionInput, type CompressionSpec } from '../compress/spec.js';

export type { CheckpointMode } from './events.js';

/**
 * How the WAL needed to make the backup consistent is included (`-X`).
 * - `none`: not included; the backup is only usable with a WAL archive.
 * - `fetch`: the server appends the segments to `base.tar` at the end (they must still
 *   exist on the server then).
 * - `stream`: a second connection streams WAL while the data is copied.
 */
export type WalMethod = 'none' | 'fetch' | 'stream';

/** Checksum algorithm of the files listed in the backup manifest (`MANIFEST_CHECKSUMS`). */
export type ManifestChecksumAlgorithm = 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512';

/** Every value {@link ManifestChecksumAlgorithm} can take. */
export const MANIFEST_CHECKSUM_ALGORITHMS: readonly ManifestChecksumAlgorithm[] = [
  'NONE',
  'CRC32C',
  'SHA224',
  'SHA256',
  'SHA384',
  'SHA512',
];

/** pg_basebackup's default label (`-l`). Kept so tools that look for it keep working. */
export const DEFAULT_BACKUP_LABEL = 'pg_basebackup base backup';

/** Lowest and highest `MAX_RATE` the server accepts, in kB/s (basebackup.c MAX_RATE_LOWER/UPPER). */
export const MAX_RATE_LOWER_KBPS = 32;
/** @see MAX_RATE_LOWER_KBPS */
export const MAX_RATE_UPPER_KBPS = 1_048_576;

/** Options of {@link startBackup}. */
export interface BaseBackupOptions {
  /**
   * How to reach the server: connection options or a libpq connection string / URI.
   * The `PG*` environment variables fill in what is missing.
   * @default {} (everything from the environment)
   */
  connection?: ConnectionOptions | string;
  /**
   * Backup label, written into `backup_label` (`-l`). At most 1023 bytes.
   * @default 'pg_basebackup base backup'
   */
  label?: string;
  /**
   * `fast` asks for an immediate checkpoint; `spread` waits for a checkpoint spread
   * over `checkpoint_completion_target`, which may take minutes.
   * @default 'spread'
   */
  checkpoint?: CheckpointMode;
  /** How WAL is included (`-X`). @default 'stream' */
  wal?: WalMethod;
  /**
   * Server-side throttle of the data transfer, in kB/s (`-r`, `MAX_RATE`), 32–1048576.
   * WAL streamed on the second connection is not throttled.
   * @default unlimited
   */
  maxRateKBps?: number;
  /**
   * Ask for a `tablespace_map` file in `base.tar` instead of `pg_tblspc/<oid>` symlinks
   * (pg_basebackup does so in tar format).
   * @default false
   */
  tablespaceMap?: boolean;
  /** Ask for a backup manifest (`--no-manifest` when false). @default true */
  manifest?: boolean;
  /**
   * Checksum algorithm of the manifest's file entries (`--manifest-checksums`). Left unset,
   * nothing is sent and the server uses its default, CRC32C.
   * @default 'CRC32C'
   */
  manifestChecksums?: ManifestChecksumAlgorithm;
  /** Hex-encode every path in the manifest (`--manifest-force-encode`). @default false */
  manifestForceEncode?: boolean;
  /**
   * Let the server verify data page checksums while it reads them (when the cluster has
   * data checksums). A failure makes {@link pg-basebackup!BackupSession.result} reject with a
   * `ChecksumFailureError`.
   * @default true
   */
  verifyChecksums?: boolean;
  /**
   * Ask the server to estimate the size of each tablespace before sending (`PROGRESS`;
   * `--no-estimate-size` when false). The estimate costs one extra directory walk on the
   * server; without it progress has no total.
   * @default true
   */
  estimateSize?: boolean;
  /**
   * Replication slot for WAL streaming (`-S`). Without it a temporary slot
   * `pg_basebackup_<pid>` is created, unless {@link useSlot} is false. Only with `wal: 'stream'`.
   * @default a temporary slot
   */
  slot?: string;
  /**
   * Create {@link slot} as a permanent physical slot before streaming (`-C`). It is kept
   * after a successful backup and dropped if the backup fails.
   * @default false
   */
  createSlot?: boolean;
  /**
   * Use a replication slot for WAL streaming at all (`--no-slot` when false). Without a
   * slot the server may remove WAL the backup still needs.
   * @default true
   */
  useSlot?: boolean;
  /**
   * Interval between standby status updates on the WAL streaming connection, in
   * milliseconds (`-s`, in seconds there). 0 disables them.
   * @default 10000
   */
  statusIntervalMs?: number;
  /**
   * Wait, at the end of the backup, until the server has archived the last WAL segment
   * (`WAIT`). pg_basebackup sends `NOWAIT` (13–14) / `WAIT 0` (15+) whenever WAL is
   * included, because the backup then carries that WAL itself.
   * @default true with `wal: 'none'`, false otherwise
   */
  waitForWalArchive?: boolean;
  /**
   * Where streamed WAL goes (only with `wal: 'stream'`). Without one, WAL is spooled to a
   * private temporary directory and yielded as a final `pg_wal.tar` archive.
   * @default spool and yield `pg_wal.tar`
   */
  walSink?: WalSink;
  /**
   * Minimum time between two `progress` events, in milliseconds. A final event is
   * always emitted.
   * @default 1000
   */
  progressIntervalMs?: number;
  /** Directory for the WAL spool when no {@link walSink} is given. @default os.tmpdir() */
  tempDir?: string;
  /**
   * Take an incremental backup (PostgreSQL 17+, `-i`): the prior backup's `backup_manifest`, as
   * its bytes or the path of the file. It is sent with `UPLOAD_MANIFEST` on the backup
   * connection, then BASE_BACKUP asks for `INCREMENTAL`. The server needs `summarize_wal = on`
   * since before the prior backup started. Against 13–16 the session fails with
   * `UnsupportedServerError` before BASE_BACKUP is sent.
   * @default a full backup
   */
  incrementalManifest?: Buffer | string;
  /**
   * Compression (`-Z`/`--compress`), in pg_basebackup's syntax (`'server-zstd:level=9'`, `'gzip'`,
   * `'lz4:1'`, `'none'`) or as an object. A `server-` spec (PostgreSQL 15+) is sent with BASE_BACKUP, and
   * the archives then arrive compressed and named `base.tar.zst` and so on; {@link pg-basebackup!startBackup} refuses
   * it on 13/14 before anything is sent. A client-side spec (the default location) is not the session's
   * business: `runBackup` and the tar sinks apply it (or compress `archive.chunks()` with
   * `compressArchive` yourself).
   * @default no compression
   */
  compression?: CompressionInput | CompressionSpec;
  /**
   * Called with every NoticeResponse (WARNING, NOTICE, ...) from either connection, from the
   * first one on. Unlike a `notice` listener, which can only be attached once
   * {@link pg-basebackup!startBackup} has resolved, this also sees the notices sent while the backup starts
   * (the server warns during the checkpoint and `do_pg_backup_start`, for example that WAL
   * archiving is not enabled). The session's `notice` event still fires for each.
   * @default none
   */
  onNotice?: (notice: ServerNotice) => void;
  /**
   * Called each time the backup enters a {@link BackupPhase}, from the first one on: `checkpoint`
   * when BASE_BACKUP is sent (before the server answers, so before {@link pg-basebackup!startBackup} resolves;
   * with `checkpoint: 'spread'` the server may then be silent for minutes), `data` once the
   * checkpoint completed (with the start position and timeline), then `wal`, `manifest` and `done`
   * as they apply. The session's `phase` event fires for each as well.
   * @default none
   * @example
   * ```ts
   * onPhase: ({ phase, startLsn, timeline }) => {
   *   if (phase === 'checkpoint') console.error('waiting for checkpoint to complete');
   *   if (phase === 'data') console.error(`checkpoint completed; start ${formatLsn(startLsn!)} on timeline ${timeline}`);
   * }
   * ```
   */
  onPhase?: (event: BackupPhaseEvent) => void;
  /** Aborts the backup: both connections close, pending calls reject with `AbortError`. */
  signal?: AbortSignal;
}

/** {@link BaseBackupOptions} after validation and defaults. */
export interface ResolvedBaseBackupOptions {
  connection: ConnectionOptions;
  label: string;
  checkpoint: CheckpointMode;
  wal: WalMethod;
  /** `undefined`: unlimited. */
  maxRateKBps: number | undefined;
  tablespaceMap: boolean;
  manifest: boolean;
  /** `undefined`: not sent, the server's default (CRC32C). */
  manifestChecksums: ManifestChecksumAlgorithm | undefined;
  manifestForceEncode: boolean;
  verifyChecksums: boolean;
  estimateSize: boolean;
  /** How the WAL streamer uses a slot (only meaningful with `wal: 'stream'`). */
  slot: SlotPlan;
  statusIntervalMs: number;
  waitForWalArchive: boolean;
  walSink: WalSink | undefined;
  progressIntervalMs: number;
  tempDir: string | undefined;
  /** The prior backup's manifest (bytes or path) for an incremental backup; `undefined`: full backup. */
  incrementalManifest: Buffer | string | undefined;
  /** Validated; {@link NO_COMPRESSION} when none was asked for. */
  compression: CompressionSpec;
  onNotice: ((notice: ServerNotice) => void) | undefined;
  onPhase: ((event: BackupPhaseEvent) => void) | undefined;
  signal: AbortSignal | undefined;
}

/** What to do about a replication slot for WAL streaming. */
export type SlotPlan =
  | { kind: 'none' }
  /** `pg_basebackup_<pid of the streaming connection>`, TEMPORARY. */
  | { kind: 'temporary' }
  | { kind: 'existing'; name: string }
  | { kind: 'create'; name: string };

// The server's ReplicationSlotValidateName: lower-case letters, digits, underscore; NAMEDATALEN-1.
const SLOT_NAME_RE = /^[a-z0-9_]{1,63}$/;

// The server rejects labels of MAXPGPATH (1024) bytes or more (do_pg_backup_start).
const MAX_LABEL_BYTES = 1023;

function checkEnum<T extends string>(name: string, value: T | undefined, allowed: readonly T[]): void {
  if (value !== undefined && !allowed.includes(value)) {
    throw new ConfigError(`invalid ${name} ${JSON.stringify(value)}: expected one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
}

function checkBool(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new ConfigError(`invalid ${name} ${JSON.stringify(value)}: expected true or false`);
  }
}

/**
 * Validate options and apply defaults.
 * @throws ConfigError naming the option and what to change.
 * @example
 * ```ts
 * resolveBaseBackupOptions({ wal: 'fetch' }).waitForWalArchive // false, as pg_basebackup
 * ```
 */
export function resolveBaseBackupOptions(options: BaseBackupOptions = {}): ResolvedBaseBackupOptions {
  const wal = options.wal ?? 'stream';
  checkEnum('wal', wal, ['none', 'fetch', 'stream'] as const);
  checkEnum('checkpoint', options.checkpoint, ['fast', 'spread'] as const);
  checkEnum('manifestChecksums', options.manifestChecksums, MANIFEST_CHECKSUM_ALGORITHMS);
  for (const key of [
    'tablespaceMap',
    'manifest',
    'manifestForceEncode',
    'verifyChecksums',
    'estimateSize',
    'createSlot',
    'useSlot',
    'waitForWalArchive',
  ] as const) {
    checkBool(key, options[key]);
  }

  const label = options.label ?? DEFAULT_BACKUP_LABEL;
  if (typeof label !== 'string') throw new ConfigError('invalid label: expected a string');
  if (label.includes('\0')) throw new ConfigError('invalid label: it contains a NUL character; remove it');
  if (Buffer.byteLength(label) > MAX_LABEL_BYTES) {
    throw new ConfigError(`label too long (${Buffer.byteLength(label)} bytes): the server accepts at most ${MAX_LABEL_BYTES} bytes`);
  }

  const maxRate = options.maxRateKBps;
  if (maxRate !== undefined && (!Number.isInteger(maxRate) || maxRate < MAX_RATE_LOWER_KBPS || maxRate > MAX_RATE_UPPER_KBPS)) {
    throw new ConfigError(
      `invalid maxRateKBps ${String(maxRate)}: it must be a whole number of kB/s from ${MAX_RATE_LOWER_KBPS} to ${MAX_RATE_UPPER_KBPS}; leave it unset for no limit`,
    );
  }

  const manifest = options.manifest ?? true;
  if (!manifest && options.manifestChecksums !== undefined) {
    throw new ConfigError('manifestChecksums needs a manifest: drop manifestChecksums or set manifest to true');
  }
  if (!manifest && options.manifestForceEncode) {
    throw new ConfigError('manifestForceEncode needs a manifest: drop manifestForceEncode or set manifest to true');
  }

  const statusIntervalMs = options.statusIntervalMs ?? 10_000;
  if (!Number.isInteger(statusIntervalMs) || statusIntervalMs < 0) {
    throw new ConfigError(`invalid statusIntervalMs ${String(statusIntervalMs)}: expected a whole number of milliseconds, 0 to disable`);
  }
  const progressIntervalMs = options.progressIntervalMs ?? 1000;
  if (!Number.isFinite(progressIntervalMs) || progressIntervalMs < 0) {
    throw new ConfigError(`invalid progressIntervalMs ${String(progressIntervalMs)}: expected milliseconds >= 0`);
  }

  const slot = resolveSlot(options, wal);

  const incremental = options.incrementalManifest;
  if (incremental !== undefined) {
    if (!(typeof incremental === 'string' || Buffer.isBuffer(incremental)) || incremental.length === 0) {
      throw new ConfigError("invalid incrementalManifest: expected the prior backup's manifest as a Buffer or a file path");
    }
    // pg_basebackup: "--incremental and --no-manifest are incompatible"; the combined backup needs a manifest.
    if (!manifest) throw new ConfigError('incrementalManifest needs a manifest: drop incrementalManifest or set manifest to true');
  }

  // Throws ConfigError with PostgreSQL's reason for an invalid specification.
  const compression = options.compression === undefined ? NO_COMPRESSION : resolveCompression(options.compression);

  for (const key of ['onNotice', 'onPhase'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function') throw new ConfigError(`invalid ${key}: expected a function`);
  }

  if (options.walSink !== undefined && wal !== 'stream') {
    throw new ConfigError(`walSink is only used with wal 'stream' (wal is '${wal}'): drop walSink or set wal to 'stream'`);
  }

  let connection: ConnectionOptions;
  if (options.connection === undefined) connection = {};
  else if (typeof options.connection === 'string') connection = { connectionString: options.connection };
  else if (typeof options.connection === 'object' && options.connection !== null) connection = { ...options.connection };
  else throw new ConfigError('invalid connection: expected connection options or a connection string');
  // One signal governs everything: the session's.
  if (options.signal !== undefined && connection.signal === undefined) connection.signal = options.signal;

  return {
    connection,
    label,
    checkpoint: options.checkpoint ?? 'spread',
    wal,
    maxRateKBps: maxRate,
    tablespaceMap: options.tablespaceMap ?? false,
    manifest,
    manifestChecksums: options.manifestChecksums,
    manifestForceEncode: options.manifestForceEncode ?? false,
    verifyChecksums: options.verifyChecksums ?? true,
    estimateSize: options.estimateSize ?? true,
    slot,
    statusIntervalMs,
    // pg_basebackup: NOWAIT / WAIT 0 whenever WAL is included (fetch or stream).
    waitForWalArchive: options.waitForWalArchive ?? wal === 'none',
    walSink: options.walSink,
    progressIntervalMs,
    tempDir: options.tempDir,
    incrementalManifest: incremental,
    compression,
    onNotice: options.onNotice,
    onPhase: options.onPhase,
    signal: options.signal,
  };
}

function resolveSlot(options: BaseBackupOptions, wal: WalMethod): SlotPlan {
  const { slot, createSlot = false, useSlot = true } = options;
  if (slot !== undefined) {
    if (typeof slot !== 'string' || !SLOT_NAME_RE.test(slot)) {
      throw new ConfigError(`invalid slot name ${JSON.stringify(slot)}: use 1 to 63 lower-case letters, digits and underscores`);
    }
    if (!useSlot) throw new ConfigError('slot and useSlot: false contradict each other: drop one of them');
  }
  if (createSlot && slot === undefined) {
    throw new ConfigError('createSlot needs a slot name: set slot to the name of the slot to create');
  }
  if (createSlot && !useSlot) throw new ConfigError('createSlot and useSlot: false contradict each other: drop one of them');
  if (wal !== 'stream') {
    if (slot !== undefined || createSlot) {
      throw new ConfigError(
        `replication slots are only used with wal 'stream' (wal is '${wal}'): drop slot/createSlot or set wal to 'stream'`,
      );
    }
    return { kind: 'none' };
  }
  if (!useSlot) return { kind: 'none' };
  if (slot === undefined) return { kind: 'temporary' };
  return createSlot ? { kind: 'create', name: slot } : { kind: 'existing', name: slot };
}
