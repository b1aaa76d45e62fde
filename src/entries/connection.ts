/**
 * Connecting to a server for replication: {@link ReplicationConnection} (the connection state machine,
 * authentication, TLS), libpq-compatible connection strings and environment, `.pgpass` look-ups, and
 * redaction of secrets for logs. Use it to run replication commands (see `pg-basebackup/replication`)
 * or to stream WAL (`pg-basebackup/wal`) on a connection you manage.
 *
 * @example
 * ```ts
 * import { ReplicationConnection, redactConnectionString } from 'pg-basebackup/connection';
 * import { identifySystem } from 'pg-basebackup/replication';
 *
 * const conninfo = 'postgresql://replicator:secret@db.example.com/?sslmode=require';
 * const conn = await ReplicationConnection.connect({ connectionString: conninfo });
 * try {
 *   const system = await identifySystem(conn);
 *   console.log(redactConnectionString(conninfo), system.systemId, system.timeline);
 * } finally {
 *   await conn.close();
 * }
 * ```
 * @module pg-basebackup/connection
 */
export { MAX_SERVER_MAJOR, MIN_SERVER_MAJOR, ReplicationConnection, type ConnectionTuning } from '../connection/connection.js';
export type {
  ChannelBindingMode,
  ConnectionEvents,
  ConnectionOptions,
  ConnectionState,
  QueryResult,
  ReplicationConnectionApi,
  ResolvedConnectionOptions,
  ServerNotice,
  SslMode,
} from '../connection/types.js';
export { parseConnectionString } from '../connection/conninfo.js';
export { resolveConnectionOptions } from '../connection/options.js';
export { DEFAULT_PORT, DEFAULT_SOCKET_DIRS, type SystemHooks } from '../connection/env.js';
export { lookupPgpass, type PgpassKey, type PgpassResult } from '../connection/pgpass.js';
export { describeConnection, REDACTED, redactConnectionString } from '../connection/redact.js';
