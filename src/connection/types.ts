/**
 * The contract between the connection layer and the layers above it (replication
 * commands, backup session, WAL streamer). The implementation lives in
 * connection.ts (start-up in startup.ts, the message pump in pump.ts, the command
 * iterator in command.ts); option resolution in options.ts.
 * @module
 */
import type { ServerMessageFields } from '../errors.js';
import type { StreamMessage } from '../protocol/messages.js';

/** libpq's `sslmode` values. */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
/** libpq's `channel_binding` values. */
export type ChannelBindingMode = 'disable' | 'prefer' | 'require';

/**
 * How to reach the server. Every field is optional: what is missing comes from the
 * connection string, then the `PG*` environment variables, then libpq's defaults.
 */
export interface ConnectionOptions {
  /** A libpq connection string: `key=value ...` or a `postgres://` / `postgresql://` URI. */
  connectionString?: string;
  /** Host name, IP address, or an absolute Unix-socket directory. @default PGHOST, else the Unix socket directory `/var/run/postgresql` when it exists, else `/tmp` */
  host?: string;
  /** Numeric address to connect to, skipping name resolution (libpq `hostaddr`). */
  hostaddr?: string;
  /** @default PGPORT, else 5432 */
  port?: number;
  /** @default PGUSER, else the operating-system user name */
  user?: string;
  /** @default PGPASSWORD, else a matching `.pgpass` line */
  password?: string;
  /** Path of the password file. @default PGPASSFILE, else `~/.pgpass` */
  passfile?: string;
  /** @default PGSSLMODE, else `prefer` */
  sslmode?: SslMode;
  /** CA certificate(s) file used by `verify-ca` / `verify-full`. @default PGSSLROOTCERT, else `~/.postgresql/root.crt` */
  sslrootcert?: string;
  /** Client certificate file. @default PGSSLCERT, else `~/.postgresql/postgresql.crt` if present */
  sslcert?: string;
  /** Client key file. @default PGSSLKEY, else `~/.postgresql/postgresql.key` if present */
  sslkey?: string;
  /** Passphrase of an encrypted `sslkey`. */
  sslpassword?: string;
  /** Certificate revocation list file. @default PGSSLCRL */
  sslcrl?: string;
  /** @default PGCHANNELBINDING, else `prefer` */
  channelBinding?: ChannelBindingMode;
  /** @default PGAPPNAME, else none */
  applicationName?: string;
  /** Give up connecting after this many milliseconds (libpq's `connect_timeout` is in seconds). @default PGCONNECT_TIMEOUT × 1000, else no limit */
  connectTimeoutMs?: number;
  /** Enable TCP keepalives. @default true */
  keepalives?: boolean;
  /** Idle seconds before the first keepalive probe. @default the operating system's */
  keepalivesIdleSec?: number;
  /** The environment to read `PG*` variables from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Aborts the connection attempt. */
  signal?: AbortSignal;
}

/** Options after merging connection string, explicit fields, environment and defaults. */
export interface ResolvedConnectionOptions {
  /** Host name / IP, or an absolute socket directory (starts with `/` or `@` for abstract). */
  host: string;
  hostaddr: string | undefined;
  port: number;
  user: string;
  /** Explicit password or PGPASSWORD. `.pgpass` is consulted at connect time, only if the server asks. */
  password: string | undefined;
  passfile: string;
  /** Database name given by the user (unused in physical replication, kept for `primary_conninfo`). */
  dbname: string | undefined;
  sslmode: SslMode;
  sslrootcert: string | undefined;
  sslcert: string | undefined;
  sslkey: string | undefined;
  sslpassword: string | undefined;
  sslcrl: string | undefined;
  channelBinding: ChannelBindingMode;
  applicationName: string | undefined;
  connectTimeoutMs: number | undefined;
  keepalives: boolean;
  keepalivesIdleSec: number | undefined;
  /**
   * Every libpq keyword that was set explicitly (connection string, options or `PG*`
   * variable), with its libpq spelling and string value, for `primary_conninfo`.
   */
  params: Record<string, string>;
}

/** A NoticeResponse, as delivered by the `notice` event. */
export type ServerNotice = ServerMessageFields;

/** One result set of a simple query. */
export interface QueryResult {
  /** CommandComplete tag, e.g. `IDENTIFY_SYSTEM`, `SELECT`. */
  command: string;
  columns: { name: string; typeOid: number }[];
  rows: (string | null)[][];
}

/** Connection lifecycle (STYLE practice 6). */
export type ConnectionState =
  | 'connecting'
  | 'authenticating'
  | 'ready'
  | 'busy'
  | 'copy-out'
  | 'copy-in'
  | 'copy-both'
  | 'closing'
  | 'closed';

/** Events of a {@link ReplicationConnectionApi}. */
export interface ConnectionEvents {
  /** A NoticeResponse (WARNING, NOTICE, ...) arrived; never dropped. */
  notice: (notice: ServerNotice) => void;
  /** A ParameterStatus arrived after startup. */
  parameter: (name: string, value: string) => void;
  /** The connection closed; `error` is set when it did not close cleanly. */
  close: (error: Error | undefined) => void;
}

/**
 * What the upper layers rely on. Implemented by `ReplicationConnection`
 * (src/connection/connection.ts), a physical-replication (`replication=true`)
 * connection speaking the simple-query protocol only.
 */
export interface ReplicationConnectionApi {
  readonly state: ConnectionState;
  /** `server_version_num`, e.g. 170002. */
  readonly serverVersionNum: number;
  /** Major version: 13..18. */
  readonly serverMajor: number;
  /** BackendKeyData process id. */
  readonly backendPid: number;
  /** ParameterStatus values reported by the server. */
  readonly parameters: ReadonlyMap<string, string>;
  /** The resolved options used (password never included in anything printed). */
  readonly options: ResolvedConnectionOptions;

  /**
   * Run one command with the simple-query protocol and collect every result set.
   * Rejects with `ServerError` (after ReadyForQuery), `AbortError`, `ConnectionClosedError`.
   */
  query(sql: string, options?: { signal?: AbortSignal }): Promise<QueryResult[]>;

  /**
   * Run one command and iterate its response message by message, pull-based: the
   * socket is paused while the consumer does not pull (backpressure). NoticeResponse
   * and ParameterStatus are emitted as events, not yielded. An ErrorResponse makes the
   * iterator throw `ServerError` once ReadyForQuery has arrived. ReadyForQuery ends it.
   * Breaking out of the loop early destroys the connection (the protocol offers no
   * clean way to stop a CopyOut).
   */
  stream(sql: string, options?: { signal?: AbortSignal }): AsyncIterableIterator<StreamMessage>;

  /** Send CopyData (during copy-in or copy-both). Returns false when the socket's write buffer is full. */
  sendCopyData(payload: Buffer): boolean;
  /** Send CopyDone. */
  sendCopyDone(): void;
  /** Send CopyFail with a reason. */
  sendCopyFail(reason: string): void;
  /** Resolves when the socket's write buffer has drained. */
  drained(): Promise<void>;

  on<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): this;
  off<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): this;

  /** Send Terminate and close; idempotent. */
  close(): Promise<void>;
  /** Close at once; idempotent. A pending operation rejects with `error` (or ConnectionClosedError). */
  destroy(error?: Error): void;
  [Symbol.asyncDispose](): Promise<void>;
}
