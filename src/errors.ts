/**
 * The error model: every error this library raises is a {@link PgBackupError}
 * with a literal `code`, so callers can narrow with `err.code === '...'`.
 * Messages say what happened and what to do; none ever contains a password.
 * @module
 */

/** Every `code` a {@link PgBackupError} can carry. */
export type PgBackupErrorCode =
  | 'ERR_PGBB_CONFIG'
  | 'ERR_PGBB_CONNECTION'
  | 'ERR_PGBB_CONNECT_TIMEOUT'
  | 'ERR_PGBB_TLS'
  | 'ERR_PGBB_AUTH'
  | 'ERR_PGBB_SERVER'
  | 'ERR_PGBB_PROTOCOL'
  | 'ERR_PGBB_ABORTED'
  | 'ERR_PGBB_UNSUPPORTED_SERVER'
  | 'ERR_PGBB_STATE'
  | 'ERR_PGBB_CONNECTION_CLOSED'
  | 'ERR_PGBB_TARGET'
  | 'ERR_PGBB_CHECKSUM_FAILURE'
  | 'ERR_PGBB_WAL_STREAM'
  | 'ERR_PGBB_IO'
  | 'ERR_PGBB_TAR'
  | 'ERR_PGBB_MANIFEST'
  | 'ERR_PGBB_COMPRESSION'
  | 'ERR_PGBB_VERIFY'
  | 'ERR_PGBB_COMBINE'
  | 'ERR_PGBB_STORAGE';

/**
 * Base class of every error raised by pg-basebackup.
 *
 * @example
 * ```ts
 * try { await backup(opts) } catch (err) {
 *   if (err instanceof PgBackupError && err.code === 'ERR_PGBB_AUTH') { ... }
 * }
 * ```
 */
export class PgBackupError extends Error {
  override name = 'PgBackupError';
  readonly code: PgBackupErrorCode;
  constructor(code: PgBackupErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Invalid options, connection string, flag or environment value. Fix the input named in the message. */
export class ConfigError extends PgBackupError {
  override name = 'ConfigError';
  declare readonly code: 'ERR_PGBB_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGBB_CONFIG', message, options);
  }
}

/** The TCP or Unix-socket connection could not be made or broke (refused, reset, host not found). */
export class ConnectionError extends PgBackupError {
  override name = 'ConnectionError';
  declare readonly code: 'ERR_PGBB_CONNECTION';
  /** The system error code (`ECONNREFUSED`, `ENOENT`, ...) when there was one. */
  readonly syscallCode: string | undefined;
  constructor(message: string, options?: { cause?: unknown; syscallCode?: string | undefined }) {
    super('ERR_PGBB_CONNECTION', message, options);
    this.syscallCode = options?.syscallCode;
  }
}

/** The server did not complete the connection within `connect_timeout`. */
export class ConnectTimeoutError extends PgBackupError {
  override name = 'ConnectTimeoutError';
  declare readonly code: 'ERR_PGBB_CONNECT_TIMEOUT';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGBB_CONNECT_TIMEOUT', message, options);
  }
}

/** TLS negotiation failed: server refused SSL under `sslmode=require`, certificate not trusted, host name mismatch... */
export class TlsError extends PgBackupError {
  override name = 'TlsError';
  declare readonly code: 'ERR_PGBB_TLS';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGBB_TLS', message, options);
  }
}

/** Authentication failed or asked for a method this library does not support. */
export class AuthenticationError extends PgBackupError {
  override name = 'AuthenticationError';
  declare readonly code: 'ERR_PGBB_AUTH';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGBB_AUTH', message, options);
  }
}

/** Every field of a PostgreSQL ErrorResponse or NoticeResponse, by its documented name. */
export interface ServerMessageFields {
  /** Localized severity (`S`). */
  severity: string;
  /** Non-localized severity (`V`), e.g. `ERROR`, `FATAL`, `WARNING`. */
  severityCode?: string;
  /** SQLSTATE (`C`), e.g. `XX001`. */
  sqlState: string;
  /** Primary message (`M`). */
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: string;
  routine?: string;
}

/** The server answered with an ErrorResponse. Every field is kept. */
export class ServerError extends PgBackupError implements ServerMessageFields {
  override name = 'ServerError';
  declare readonly code: 'ERR_PGBB_SERVER';
  severity: string;
  severityCode?: string;
  sqlState: string;
  detail?: string;
  hint?: string;
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: string;
  routine?: string;
  /** The server's primary message alone (the `message` property may carry added advice). */
  serverMessage: string;
  constructor(fields: ServerMessageFields, advice?: string) {
    const base = `${fields.severity}: ${fields.message}` +
      (fields.detail ? `\nDETAIL: ${fields.detail}` : '') +
      (fields.hint ? `\nHINT: ${fields.hint}` : '');
    super('ERR_PGBB_SERVER', advice ? `${base}\n${advice}` : base);
    this.severity = fields.severity;
    this.sqlState = fields.sqlState;
    this.serverMessage = fields.message;
    for (const key of ['severityCode', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'where',
      'schema', 'table', 'column', 'dataType', 'constraint', 'file', 'line', 'routine'] as const) {
      const v = fields[key];
      if (v !== undefined) this[key] = v;
    }
  }
}

/** The server sent bytes that break the protocol (unknown message type, bad length, unexpected message). */
export class ProtocolError extends PgBackupError {
  override name = 'ProtocolError';
  declare readonly code: 'ERR_PGBB_PROTOCOL';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGBB_PROTOCOL', message, options);
  }
}

/** The operation was aborted through an `AbortSignal`, `close()` or `destroy()`. */
export class AbortError extends PgBackupError {
  override name = 'AbortError';
  declare readonly code: 'ERR_PGBB_ABORTED';
  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super('ERR_PGBB_ABORTED', message, options);
  }
}

/** The server's major version is outside 13–18. */
export class UnsupportedServerError extends PgBackupError {
  override name = 'UnsupportedServerError';
  declare readonly code: 'ERR_PGBB_UNSUPPORTED_SERVER';
  constructor(message: string) {
    super('ERR_PGBB_UNSUPPORTED_SERVER', message);
  }
}

/** A method was called in a state that does not allow it (e.g. a query while a COPY is running). */
export class StateError extends PgBackupError {
  override name = 'StateError';
  declare readonly code: 'ERR_PGBB_STATE';
  constructor(message: string) {
    super('ERR_PGBB_STATE', message);
  }
}

/** The connection was closed (by us or by the server) while an operation needed it. */
export class ConnectionClosedError extends PgBackupError {
  override name = 'ConnectionClosedError';
  declare readonly code: 'ERR_PGBB_CONNECTION_CLOSED';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGBB_CONNECTION_CLOSED', message, options);
  }
}

/**
 * A tar archive is malformed: bad header checksum, truncated entry, unsupported entry type, or an entry
 * name that would escape the target directory. The message names the byte offset in the archive.
 */
export class TarError extends PgBackupError {
  override name = 'TarError';
  declare readonly code: 'ERR_PGBB_TAR';
  /** Offset in the archive (bytes from its start) where the problem was found, when known. */
  readonly offset: number | undefined;
  constructor(message: string, options?: { cause?: unknown; offset?: number | undefined }) {
    super('ERR_PGBB_TAR', message, options);
    this.offset = options?.offset;
  }
}

/**
 * The output location cannot be used: the target or a tablespace directory exists and is not empty,
 * or two archives would be written where only one fits (e.g. several tablespaces to standard output).
 */
export class TargetError extends PgBackupError {
  override name = 'TargetError';
  declare readonly code: 'ERR_PGBB_TARGET';
  /** The path at fault, when there is one. */
  readonly path: string | undefined;
  constructor(message: string, options?: { cause?: unknown; path?: string | undefined }) {
    super('ERR_PGBB_TARGET', message, options);
    this.path = options?.path;
  }
}

/** A file-system operation on the backup output failed (disk full, permission denied...). `cause` holds the system error. */
export class IoError extends PgBackupError {
  override name = 'IoError';
  declare readonly code: 'ERR_PGBB_IO';
  /** The path the operation was working on. */
  readonly path: string | undefined;
  /** The system error code (`ENOSPC`, `EACCES`, ...) when there was one. */
  readonly syscallCode: string | undefined;
  constructor(message: string, options?: { cause?: unknown; path?: string | undefined; syscallCode?: string | undefined }) {
    super('ERR_PGBB_IO', message, options);
    this.path = options?.path;
    this.syscallCode = options?.syscallCode;
  }
}

/**
 * WAL streaming failed for a reason that is neither a server error nor a broken connection: the
 * server ended the stream before the requested end position, reported an impossible next timeline,
 * or the WAL destination failed. `cause` holds the underlying error when there is one.
 */
export class WalStreamError extends PgBackupError {
  override name = 'WalStreamError';
  declare readonly code: 'ERR_PGBB_WAL_STREAM';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PGBB_WAL_STREAM', message, options);
  }
}

/** One data page checksum failure reported by the server during BASE_BACKUP (its WARNING notices). */
export interface ChecksumFailureReport {
  /** The file, as the server names it (relative to the data directory, e.g. `./base/5/16384` or `base/5/16384`). */
  file: string;
  /** Block numbers reported for this file (the server reports at most 5 per file). */
  blocks: number[];
  /** Failures in this file: the server's per-file total when it sent one, else the blocks reported. */
  count: number;
}

/**
 * The server found data pages whose checksum does not match while it read them for the backup
 * (ErrorResponse SQLSTATE XX001 after the data). Every byte of the backup was received, but some
 * pages are corrupt on the server: the backup must not be trusted as a restore source. Fix or
 * investigate the corruption (the files are listed), or take the backup with
 * `verifyChecksums: false` knowingly.
 */
export class ChecksumFailureError extends PgBackupError {
  override name = 'ChecksumFailureError';
  declare readonly code: 'ERR_PGBB_CHECKSUM_FAILURE';
  /** Per-file failures, in the order the server reported them. */
  readonly failures: ChecksumFailureReport[];
  /** Total number of failed pages (the server's total when it sent one). */
  readonly totalFailures: number;
  constructor(failures: ChecksumFailureReport[], totalFailures?: number, options?: { cause?: unknown }) {
    const total = totalFailures ?? failures.reduce((n, f) => n + f.count, 0);
    const files = failures.map((f) => f.file);
    const list = files.length === 0 ? '' : ` in ${files.length === 1 ? 'file' : 'files'} ${files.slice(0, 10).join(', ')}${files.length > 10 ? ', ...' : ''}`;
    super('ERR_PGBB_CHECKSUM_FAILURE',
      `the server found ${total || 'some'} data page checksum ${total === 1 ? 'failure' : 'failures'}${list}: ` +
      'the backup data was received completely, but it must not be trusted; investigate the corruption on the server ' +
      'before relying on this backup', options);
    this.failures = failures;
    this.totalFailures = total;
  }
}

/**
 * A backup manifest is malformed or damaged: not valid JSON, a field missing or of the wrong kind, a
 * duplicate path, or a `Manifest-Checksum` that does not match its contents. Nothing it says can be
 * trusted; take the manifest from the backup again, or verify against a good copy (`manifestPath`).
 */
export class ManifestError extends PgBackupError {
  override name = 'ManifestError';
  declare readonly code: 'ERR_PGBB_MANIFEST';
  /** Byte offset in the manifest near where the problem was found, when known. */
  readonly offset: number | undefined;
  constructor(message: string, options?: { cause?: unknown; offset?: number | undefined }) {
    super('ERR_PGBB_MANIFEST', message, options);
    this.offset = options?.offset;
  }
}

/**
 * Verification could not run at all: the backup directory or manifest cannot be opened, or the backup
 * has a shape the verifier does not understand. Problems found *in* the backup are reported as
 * findings instead, not as this error.
 */
export class VerifyError extends PgBackupError {
  override name = 'VerifyError';
  declare readonly code: 'ERR_PGBB_VERIFY';
  /** The path at fault, when there is one. */
  readonly path: string | undefined;
  constructor(message: string, options?: { cause?: unknown; path?: string | undefined }) {
    super('ERR_PGBB_VERIFY', message, options);
    this.path = options?.path;
  }
}

/**
 * Compression or decompression failed, or cannot be done as asked: the server cannot compress
 * (before 15, or built without the method: pick another method or compress on the client), the lz4 or
 * zstd library is not installed, or compressed data is corrupt or truncated (the message names the
 * method and, where known, the byte offset). `cause` holds the underlying error when there is one.
 */
export class CompressionError extends PgBackupError {
  override name = 'CompressionError';
  declare readonly code: 'ERR_PGBB_COMPRESSION';
  /** The method involved (`gzip`, `lz4`, `zstd`), when known. */
  readonly algorithm: string | undefined;
  /** Offset in the compressed input where the problem was found, when known. */
  readonly offset: number | undefined;
  constructor(message: string, options?: { cause?: unknown; algorithm?: string | undefined; offset?: number | undefined }) {
    super('ERR_PGBB_COMPRESSION', message, options);
    this.algorithm = options?.algorithm;
    this.offset = options?.offset;
  }
}

/**
 * Combining a backup chain (`combineBackups`, `pgbb combine`) failed: the chain is out of order or has
 * a gap (an incremental's `INCREMENTAL FROM LSN` is not the start of the backup listed before it), the
 * backups come from different clusters, the first one is not a full backup, an incremental file is
 * damaged or refers to blocks no older backup holds, or the output directory is not empty. The message
 * names the backup or file at fault and what to do. Nothing is left in the output directory.
 */
export class CombineError extends PgBackupError {
  override name = 'CombineError';
  declare readonly code: 'ERR_PGBB_COMBINE';
  /** The backup directory or file at fault, when there is one. */
  readonly path: string | undefined;
  constructor(message: string, options?: { cause?: unknown; path?: string | undefined }) {
    super('ERR_PGBB_COMBINE', message, options);
    this.path = options?.path;
  }
}

/** The storage operation a {@link StorageError} comes from. */
export type StorageOperation = 'open' | 'list' | 'stat' | 'get' | 'put' | 'delete';

/**
 * A repository storage operation failed (local directory or object storage): the object is missing
 * (`statusCode` 404), access was refused (403, or `EACCES` locally), the server kept failing after the
 * retries (5xx, throttling, timeouts, reset connections), or the disk is full. `retryable` says whether
 * the same call may succeed later unchanged (for object storage the SDK has already retried it with
 * backoff). A failed `put` leaves nothing that looks finished: no object, no pending multipart upload.
 * The message never contains credentials. `cause` holds the underlying error.
 */
export class StorageError extends PgBackupError {
  override name = 'StorageError';
  declare readonly code: 'ERR_PGBB_STORAGE';
  /** What was being done. */
  readonly operation: StorageOperation;
  /** The object key involved (relative to the repository), when there is one. */
  readonly key: string | undefined;
  /** The HTTP status of the last answer (object storage), or the equivalent for a local error (404 for a missing file), when known. */
  readonly statusCode: number | undefined;
  /** Whether trying the same call again later may succeed (server errors, throttling, timeouts, resets). */
  readonly retryable: boolean;
  constructor(message: string, options: {
    operation: StorageOperation;
    key?: string | undefined;
    statusCode?: number | undefined;
    retryable?: boolean | undefined;
    cause?: unknown;
  }) {
    super('ERR_PGBB_STORAGE', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.operation = options.operation;
    this.key = options.key;
    this.statusCode = options.statusCode;
    this.retryable = options.retryable ?? false;
  }
}
