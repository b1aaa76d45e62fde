/**
 * The error model: every error this library raises is a {@link PgBackupError} with a literal `code`.
 * {@link isPgBackupError} narrows an unknown error to the union of all of them, so that checking
 * `err.code` gives the right class (see {@link PgBackupErrorByCode}).
 *
 * Each error has three texts:
 * - `message`: what happened, then (on a line of its own) what to do when the library knows. It is the
 *   whole story for someone reading a console or a log line, and never contains a password.
 * - `advice`: the "what to do" part alone (also the last line of `message`), or `undefined`.
 * - `toJSON()`: `name`, `code`, `message`, `advice` and the class's own fields (`sqlState`, `path`...),
 *   so structured loggers that call `JSON.stringify` keep them.
 * Why one file of this size: every error class and its literal code live here, with the code-to-class map
 * that narrowing relies on, so that a new code cannot miss the map.
 * @module
 */

/** Every `code` a {@link PgBackupError} can carry (the keys of {@link PgBackupErrorByCode}). */
export type PgBackupErrorCode = keyof PgBackupErrorByCode;

/** What every error constructor takes besides its message. */
export interface PgBackupErrorOptions {
  /** The error that led to this one (kept as the standard `cause`). */
  cause?: unknown;
  /**
   * What to do about it, when the library knows: kept in {@link PgBackupError.advice} and appended
   * to `message` on a line of its own.
   */
  advice?: string | undefined;
}

/** A {@link PgBackupError} as {@link PgBackupError.toJSON} gives it: fit for `JSON.stringify` and structured logs. */
export interface PgBackupErrorJson {
  /** The class name, e.g. `ServerError`. */
  name: string;
  code: PgBackupErrorCode;
  /** The full message (advice included). */
  message: string;
  /** The advice alone, when there is some. */
  advice?: string;
  /** `name`, `code` and `message` of the `cause`, when there is one. */
  cause?: { name: string; message: string; code?: unknown };
  /** The class's own fields: `sqlState`, `detail`, `hint`, `path`, `syscallCode`, `offset`... */
  [field: string]: unknown;
}

/**
 * Base class of every error raised by pg-basebackup. Catch it, then narrow with {@link isPgBackupError}
 * and `code` (or with `instanceof` and a subclass).
 *
 * @example
 * ```ts
 * import { isPgBackupError, runBackup } from 'pg-basebackup';
 *
 * try {
 *   await runBackup({ connection: 'host=db user=replicator', output: { format: 'plain', directory: '/backups/new' } });
 * } catch (err) {
 *   if (isPgBackupError(err) && err.code === 'ERR_PGBB_SERVER') {
 *     console.error(err.sqlState, err.serverMessage); // err is a ServerError here
 *   }
 *   throw err;
 * }
 * ```
 */
export class PgBackupError extends Error {
  override name = 'PgBackupError';
  readonly code: PgBackupErrorCode;
  /**
   * What to do about this error, when the library knows (`undefined` otherwise). The same text ends
   * `message`, so printing the error shows it; this property holds it alone, for programs and logs.
   */
  readonly advice: string | undefined;
  constructor(code: PgBackupErrorCode, message: string, options?: PgBackupErrorOptions) {
    const advice = options?.advice === '' ? undefined : options?.advice;
    super(
      advice === undefined ? message : `${message}\n${advice}`,
      options !== undefined && 'cause' in options ? { cause: options.cause } : undefined,
    );
    this.code = code;
    this.advice = advice;
  }

  /**
   * `name`, `code`, `message`, `advice`, the `cause` in brief, and every field of the subclass
   * (for a {@link ServerError}: `sqlState`, `severity`, `detail`, `hint`...). `JSON.stringify(err)`
   * calls it; a plain `Error` would give `{}`.
   */
  toJSON(): PgBackupErrorJson {
    const json: PgBackupErrorJson = { name: this.name, code: this.code, message: this.message };
    if (this.advice !== undefined) json.advice = this.advice;
    for (const [key, value] of Object.entries(this)) {
      if (value !== undefined && !(key in json)) json[key] = value;
    }
    const cause: unknown = this.cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      json.cause = code === undefined ? { name: cause.name, message: cause.message } : { name: cause.name, message: cause.message, code };
    } else if (cause !== undefined) {
      json.cause = { name: typeof cause, message: String(cause) };
    }
    return json;
  }
}

/** Invalid options, connection string, flag or environment value. Fix the input named in the message. */
export class ConfigError extends PgBackupError {
  override name = 'ConfigError';
  declare readonly code: 'ERR_PGBB_CONFIG';
  constructor(message: string, options?: PgBackupErrorOptions) {
    super('ERR_PGBB_CONFIG', message, options);
  }
}

/** The TCP or Unix-socket connection could not be made or broke (refused, reset, host not found). */
export class ConnectionError extends PgBackupError {
  override name = 'ConnectionError';
  declare readonly code: 'ERR_PGBB_CONNECTION';
  /** The system error code (`ECONNREFUSED`, `ENOENT`, ...) when there was one. */
  readonly syscallCode: string | undefined;
  constructor(message: string, options?: PgBackupErrorOptions & { syscallCode?: string | undefined }) {
    super('ERR_PGBB_CONNECTION', message, options);
    this.syscallCode = options?.syscallCode;
  }
}

/** The server did not complete the connection within `connect_timeout`. */
export class ConnectTimeoutError extends PgBackupError {
  override name = 'ConnectTimeoutError';
  declare readonly code: 'ERR_PGBB_CONNECT_TIMEOUT';
  constructor(message: string, options?: PgBackupErrorOptions) {
    super('ERR_PGBB_CONNECT_TIMEOUT', message, options);
  }
}

/** TLS negotiation failed: server refused SSL under `sslmode=require`, certificate not trusted, host name mismatch... */
export class TlsError extends PgBackupError {
  override name = 'TlsError';
  declare readonly code: 'ERR_PGBB_TLS';
  constructor(message: string, options?: PgBackupErrorOptions) {
    super('ERR_PGBB_TLS', message, options);
  }
}

/** Authentication failed or asked for a method this library does not support. */
export class AuthenticationError extends PgBackupError {
  override name = 'AuthenticationError';
  declare readonly code: 'ERR_PGBB_AUTH';
  constructor(message: string, options?: PgBackupErrorOptions) {
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

/** The ErrorResponse/NoticeResponse fields besides severity, SQLSTATE and message, which are optional. */
export const OPTIONAL_SERVER_FIELDS = [
  'severityCode',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
] as const satisfies readonly (keyof ServerMessageFields)[];

/**
 * The server answered with an ErrorResponse. Every field is kept, under its documented name.
 *
 * `message` is written for people: `SEVERITY: primary message`, then `DETAIL: ...` and `HINT: ...`
 * lines when the server sent them, then the library's advice (also in `advice`) when it has some,
 * e.g. for a missing pg_hba.conf entry or replication slot. The server's primary message alone is
 * {@link ServerError.serverMessage}.
 */
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
  /** The server's primary message (`M`) alone, without severity, DETAIL, HINT or advice. */
  serverMessage: string;
  /**
   * @param fields - The ErrorResponse's fields.
   * @param advice - What to do, when the library recognises the error (see {@link PgBackupError.advice}).
   */
  constructor(fields: ServerMessageFields, advice?: string) {
    const base =
      `${fields.severity}: ${fields.message}` +
      (fields.detail ? `\nDETAIL: ${fields.detail}` : '') +
      (fields.hint ? `\nHINT: ${fields.hint}` : '');
    super('ERR_PGBB_SERVER', base, { advice });
    this.severity = fields.severity;
    this.sqlState = fields.sqlState;
    this.serverMessage = fields.message;
    for (const key of OPTIONAL_SERVER_FIELDS) {
      const v = fields[key];
      if (v !== undefined) this[key] = v;
    }
  }
}

/** The server sent bytes that break the protocol (unknown message type, bad length, unexpected message). */
export class ProtocolError extends PgBackupError {
  override name = 'ProtocolError';
  declare readonly code: 'ERR_PGBB_PROTOCOL';
  constructor(message: string, options?: PgBackupErrorOptions) {
    super('ERR_PGBB_PROTOCOL', message, options);
  }
}

/** The operation was aborted through an `AbortSignal`, `close()` or `destroy()`. */
export class AbortError extends PgBackupError {
  override name = 'AbortError';
  declare readonly code: 'ERR_PGBB_ABORTED';
  constructor(message = 'the operation was aborted', options?: PgBackupErrorOptions) {
    super('ERR_PGBB_ABORTED', message, options);
  }
}

/** The server's major version is outside 13–18. */
export class UnsupportedServerError extends PgBackupError {
  override name = 'UnsupportedServerError';
  declare readonly code: 'ERR_PGBB_UNSUPPORTED_SERVER';
  constructor(message: string, options?: PgBackupErrorOptions) {
    super('ERR_PGBB_UNSUPPORTED_SERVER', message, options);
  }
}

/** A method was called in a state that does not allow it (e.g. a query while a COPY is running). */
export class StateError extends PgBackupError {
  override name = 'StateError';
  declare readonly code: 'ERR_PGBB_STATE';
  constructor(message: string, options?: PgBackupErrorOptions) {
    super('ERR_PGBB_STATE', message, options);
  }
}

/** The connection was closed (by us or by the server) while an operation needed it. */
export class ConnectionClosedError extends PgBackupError {
  override name = 'ConnectionClosedError';
  declare readonly code: 'ERR_PGBB_CONNECTION_CLOSED';
  constructor(message: string, options?: PgBackupErrorOptions) {
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
  constructor(message: string, options?: PgBackupErrorOptions & { offset?: number | undefined }) {
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
  constructor(message: string, options?: PgBackupErrorOptions & { path?: string | undefined }) {
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
  constructor(message: string, options?: PgBackupErrorOptions & { path?: string | undefined; syscallCode?: string | undefined }) {
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
  constructor(message: string, options?: PgBackupErrorOptions) {
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
  constructor(failures: ChecksumFailureReport[], totalFailures?: number, options?: PgBackupErrorOptions) {
    const total = totalFailures ?? failures.reduce((n, f) => n + f.count, 0);
    const files = failures.map((f) => f.file);
    const list =
      files.length === 0
        ? ''
        : ` in ${files.length === 1 ? 'file' : 'files'} ${files.slice(0, 10).join(', ')}${files.length > 10 ? ', ...' : ''}`;
    super(
      'ERR_PGBB_CHECKSUM_FAILURE',
      `the server found ${total || 'some'} data page checksum ${total === 1 ? 'failure' : 'failures'}${list}`,
      {
        advice:
          'the backup data was received completely, but it must not be trusted: investigate the corruption on ' +
          'the server before relying on this backup',
        ...options,
      },
    );
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
  constructor(message: string, options?: PgBackupErrorOptions & { offset?: number | undefined }) {
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
  constructor(message: string, options?: PgBackupErrorOptions & { path?: string | undefined }) {
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
  constructor(message: string, options?: PgBackupErrorOptions & { algorithm?: string | undefined; offset?: number | undefined }) {
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
  constructor(message: string, options?: PgBackupErrorOptions & { path?: string | undefined }) {
    super('ERR_PGBB_COMBINE', message, options);
    this.path = options?.path;
  }
}

/**
 * A file in a WAL archive is there but unusable: it does not decompress, it has the wrong size, its
 * pages belong to another segment, or it is not WAL at all. Recovery must stop on it rather than treat
 * it as the end of the archive; restore the file from another copy, or restore to a target before it.
 */
export class WalArchiveError extends PgBackupError {
  override name = 'WalArchiveError';
  declare readonly code: 'ERR_PGBB_WAL_ARCHIVE';
  /** The archived file at fault, when there is one. */
  readonly path: string | undefined;
  constructor(message: string, options?: PgBackupErrorOptions & { path?: string | undefined }) {
    super('ERR_PGBB_WAL_ARCHIVE', message, options);
    this.path = options?.path;
  }
}

/**
 * The archive cannot continue without a gap: the server no longer has the WAL that follows the
 * archive's newest segment (it was recycled before it was received). Reconnecting cannot help;
 * streaming from the server's oldest WAL would leave a silent hole. Start a new archive after a
 * new base backup, or restore the missing segments from elsewhere.
 */
export class WalArchiveGapError extends PgBackupError {
  override name = 'WalArchiveGapError';
  declare readonly code: 'ERR_PGBB_WAL_ARCHIVE_GAP';
  /** First missing position (the archive's next segment start), an LSN (`formatLsn` prints it). */
  readonly missingFrom: bigint;
  /** First position the server still holds, when known (a slot's restart position). */
  readonly missingTo: bigint | undefined;
  constructor(message: string, options: PgBackupErrorOptions & { missingFrom: bigint; missingTo?: bigint | undefined }) {
    super('ERR_PGBB_WAL_ARCHIVE_GAP', message, options);
    this.missingFrom = options.missingFrom;
    this.missingTo = options.missingTo;
  }
}

/**
 * The server is not the one this archive was streaming from (another system identifier or WAL segment
 * size): archiving stops rather than mix two clusters' WAL in one directory. Point the receiver at the
 * right server, or archive this one into a new directory.
 */
export class WalArchiveMismatchError extends PgBackupError {
  override name = 'WalArchiveMismatchError';
  declare readonly code: 'ERR_PGBB_WAL_ARCHIVE_MISMATCH';
  constructor(message: string, options?: PgBackupErrorOptions) {
    super('ERR_PGBB_WAL_ARCHIVE_MISMATCH', message, options);
  }
}

/**
 * No PostgreSQL server binaries of the backup's major were found for a restore rehearsal (`postgres` of
 * that major in `--pg-bin`, `pg_config --bindir`, `/usr/lib/postgresql/N/bin` or `/usr/pgsql-N/bin`).
 * Install that major's server package, or name its bin directory with `--pg-bin`.
 */
export class PgBinariesNotFoundError extends PgBackupError {
  override name = 'PgBinariesNotFoundError';
  declare readonly code: 'ERR_PGBB_PG_BINARIES';
  /** The PostgreSQL major the backup needs. */
  readonly major: number;
  constructor(message: string, options: PgBackupErrorOptions & { major: number }) {
    super('ERR_PGBB_PG_BINARIES', message, options);
    this.major = options.major;
  }
}

/**
 * A restore rehearsal step failed: the restored server did not start or did not reach its recovery
 * target in time, or the WAL archive has a hole between the backup and the target (`missingSegment`).
 * The rehearsal's result lists every step; this error is the failing step's.
 */
export class RehearsalError extends PgBackupError {
  override name = 'RehearsalError';
  declare readonly code: 'ERR_PGBB_REHEARSAL';
  /** The first segment the archive lacks before the target, when that is the failure. */
  readonly missingSegment: string | undefined;
  constructor(message: string, options?: PgBackupErrorOptions & { missingSegment?: string | undefined }) {
    super('ERR_PGBB_REHEARSAL', message, options);
    this.missingSegment = options?.missingSegment;
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
  constructor(
    message: string,
    options: {
      operation: StorageOperation;
      key?: string | undefined;
      statusCode?: number | undefined;
      retryable?: boolean | undefined;
      cause?: unknown;
    },
  ) {
    super('ERR_PGBB_STORAGE', message, options.cause === undefined ? undefined : { cause: options.cause });
    this.operation = options.operation;
    this.key = options.key;
    this.statusCode = options.statusCode;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * A backup repository cannot be used as asked: its format version is newer than this pg-basebackup reads,
 * a record in it is not valid JSON of the documented shape, or a backup it names does not exist.
 * `key` names the object at fault when there is one.
 */
export class RepositoryError extends PgBackupError {
  override name = 'RepositoryError';
  declare readonly code: 'ERR_PGBB_REPOSITORY';
  /** The repository object at fault (relative to the repository), when there is one. */
  readonly key: string | undefined;
  constructor(message: string, options?: PgBackupErrorOptions & { key?: string | undefined }) {
    super('ERR_PGBB_REPOSITORY', message, options);
    this.key = options?.key;
  }
}

/**
 * The repository belongs to another cluster: it recorded a different system identifier or major version on
 * first use, and one repository serves one cluster (its backups and WAL must not mix with another's).
 * Point the command at this cluster's repository, or use a new one for this cluster.
 */
export class RepositoryMismatchError extends PgBackupError {
  override name = 'RepositoryMismatchError';
  declare readonly code: 'ERR_PGBB_REPOSITORY_MISMATCH';
  /** The cluster the repository serves. */
  readonly expected: { systemIdentifier: string; majorVersion: number };
  /** The cluster that was refused. */
  readonly actual: { systemIdentifier: string; majorVersion: number };
  constructor(
    message: string,
    options: PgBackupErrorOptions & {
      expected: { systemIdentifier: string; majorVersion: number };
      actual: { systemIdentifier: string; majorVersion: number };
    },
  ) {
    super('ERR_PGBB_REPOSITORY_MISMATCH', message, options);
    this.expected = options.expected;
    this.actual = options.actual;
  }
}

/**
 * Another process holds the repository's lock (a backup or an expire is running): only one of them may
 * change the repository at a time. The lease expires when its holder stops renewing it (it died); wait for
 * the other run to finish, or, if it died on another host, for `expiresAt`.
 */
export class RepositoryLockedError extends PgBackupError {
  override name = 'RepositoryLockedError';
  declare readonly code: 'ERR_PGBB_REPOSITORY_LOCKED';
  /** Who holds the lock: `operation` (`backup`, `expire`), host and process id. */
  readonly holder: { operation: string; hostname: string; pid: number } | undefined;
  /** When the holder's lease runs out unless renewed. */
  readonly expiresAt: Date | undefined;
  constructor(
    message: string,
    options?: PgBackupErrorOptions & {
      holder?: { operation: string; hostname: string; pid: number } | undefined;
      expiresAt?: Date | undefined;
    },
  ) {
    super('ERR_PGBB_REPOSITORY_LOCKED', message, options);
    this.holder = options?.holder;
    this.expiresAt = options?.expiresAt;
  }
}

/**
 * A restore from a repository found no backup that ended before its recovery target: the target time is
 * before the oldest backup's `endTime`, the target LSN before its `endLsn`, the restore point or
 * transaction lies in the WAL before the oldest backup's end, or the repository holds no backup at all.
 * `oldest` names the oldest backup when there is one; restore to a later target, or from another
 * repository that kept older backups.
 */
export class NoBackupForTargetError extends PgBackupError {
  override name = 'NoBackupForTargetError';
  declare readonly code: 'ERR_PGBB_NO_BACKUP_FOR_TARGET';
  /** The repository's oldest backup: its id, when it ended and its end LSN (`X/X`). */
  readonly oldest: { id: string; endTime: Date; endLsn: string } | undefined;
  constructor(message: string, options?: PgBackupErrorOptions & { oldest?: { id: string; endTime: Date; endLsn: string } | undefined }) {
    super('ERR_PGBB_NO_BACKUP_FOR_TARGET', message, options);
    this.oldest = options?.oldest;
  }
}

/**
 * Each `code` with the class that carries it: `PgBackupErrorByCode['ERR_PGBB_SERVER']` is
 * {@link ServerError}. {@link isPgBackupError} uses it so that checking `code` narrows to the class.
 */
export interface PgBackupErrorByCode {
  ERR_PGBB_CONFIG: ConfigError;
  ERR_PGBB_CONNECTION: ConnectionError;
  ERR_PGBB_CONNECT_TIMEOUT: ConnectTimeoutError;
  ERR_PGBB_TLS: TlsError;
  ERR_PGBB_AUTH: AuthenticationError;
  ERR_PGBB_SERVER: ServerError;
  ERR_PGBB_PROTOCOL: ProtocolError;
  ERR_PGBB_ABORTED: AbortError;
  ERR_PGBB_UNSUPPORTED_SERVER: UnsupportedServerError;
  ERR_PGBB_STATE: StateError;
  ERR_PGBB_CONNECTION_CLOSED: ConnectionClosedError;
  ERR_PGBB_TARGET: TargetError;
  ERR_PGBB_CHECKSUM_FAILURE: ChecksumFailureError;
  ERR_PGBB_WAL_STREAM: WalStreamError;
  ERR_PGBB_IO: IoError;
  ERR_PGBB_TAR: TarError;
  ERR_PGBB_MANIFEST: ManifestError;
  ERR_PGBB_COMPRESSION: CompressionError;
  ERR_PGBB_VERIFY: VerifyError;
  ERR_PGBB_COMBINE: CombineError;
  ERR_PGBB_WAL_ARCHIVE_GAP: WalArchiveGapError;
  ERR_PGBB_WAL_ARCHIVE_MISMATCH: WalArchiveMismatchError;
  ERR_PGBB_WAL_ARCHIVE: WalArchiveError;
  ERR_PGBB_STORAGE: StorageError;
  ERR_PGBB_REPOSITORY: RepositoryError;
  ERR_PGBB_REPOSITORY_MISMATCH: RepositoryMismatchError;
  ERR_PGBB_REPOSITORY_LOCKED: RepositoryLockedError;
  ERR_PGBB_PG_BINARIES: PgBinariesNotFoundError;
  ERR_PGBB_REHEARSAL: RehearsalError;
  ERR_PGBB_NO_BACKUP_FOR_TARGET: NoBackupForTargetError;
}

/** Every error this library raises, as a union discriminated by `code`. */
export type AnyPgBackupError = PgBackupErrorByCode[PgBackupErrorCode];

/**
 * Whether `err` is an error raised by this library; with `code`, whether it is that error. The result
 * narrows: after `isPgBackupError(err)`, comparing `err.code` with a literal gives the class of that
 * code (a `ServerError` for `'ERR_PGBB_SERVER'`, with its `sqlState`).
 *
 * @example
 * ```ts
 * import { isPgBackupError, verifyBackupAll } from 'pg-basebackup';
 *
 * try {
 *   await verifyBackupAll({ backupDir: '/backups/monday' });
 * } catch (err) {
 *   if (isPgBackupError(err, 'ERR_PGBB_VERIFY')) console.error(`cannot verify ${err.path ?? ''}: ${err.message}`);
 *   else if (isPgBackupError(err)) console.error(JSON.stringify(err)); // name, code, message, advice, fields
 *   else throw err;
 * }
 * ```
 */
export function isPgBackupError(err: unknown): err is AnyPgBackupError;
export function isPgBackupError<C extends PgBackupErrorCode>(err: unknown, code: C): err is PgBackupErrorByCode[C];
export function isPgBackupError(err: unknown, code?: PgBackupErrorCode): boolean {
  return err instanceof PgBackupError && (code === undefined || err.code === code);
}
