/**
 * The one server-version policy: which PostgreSQL majors pg-basebackup talks to. Every
 * connection checks it right after `SHOW server_version_num` ({@link checkServerVersion}), so a
 * backup, a WAL stream or `pgbb identify` all refuse the same servers with the same message.
 *
 * The newest supported major is the newest one the test suite runs against: a newer server may
 * change BASE_BACKUP's options, the manifest or the WAL page format without notice, so it is
 * refused rather than backed up on hope.
 * @module
 */
import { UnsupportedServerError } from './errors.js';

/** Oldest PostgreSQL major version pg-basebackup supports. */
export const MIN_SERVER_MAJOR = 13;
/** Newest PostgreSQL major version pg-basebackup supports: the newest one it is tested with. */
export const MAX_SERVER_MAJOR = 18;
/** Major version of a `server_version_num` (170002 → 17). */
export function serverMajorOf(serverVersionNum: number): number {
  return Math.floor(serverVersionNum / 10000);
}

/** What {@link checkServerVersion} needs to name the server in its message. */
export interface ServerVersionFacts {
  /** `server_version_num`, e.g. 170002. */
  serverVersionNum: number;
  /** The `server_version` ParameterStatus (e.g. `17.2`), when the server sent one. */
  serverVersion?: string | undefined;
  /** Where the server is, for the message (host and port or socket path; no secrets). */
  endpoint: string;
}

/**
 * Refuse a server outside {@link MIN_SERVER_MAJOR}..{@link MAX_SERVER_MAJOR}.
 * @throws UnsupportedServerError saying which bound was crossed and what to use instead.
 * @example
 * ```ts
 * checkServerVersion({ serverVersionNum: 170002, endpoint: '"db", port 5432' }); // returns
 * checkServerVersion({ serverVersionNum: 190000, endpoint: '"db", port 5432' }); // throws
 * ```
 */
export function checkServerVersion(facts: ServerVersionFacts): void {
  const num = facts.serverVersionNum;
  const major = serverMajorOf(num);
  const runs = `the server at ${facts.endpoint} runs PostgreSQL ${facts.serverVersion ?? num} (server_version_num ${num})`;
  if (major < MIN_SERVER_MAJOR) {
    throw new UnsupportedServerError(
      `${runs}; pg-basebackup supports PostgreSQL ${MIN_SERVER_MAJOR} to ${MAX_SERVER_MAJOR}: ` +
        'use the pg_basebackup of that server version instead',
    );
  }
  if (major > MAX_SERVER_MAJOR) {
    throw new UnsupportedServerError(
      `server major ${major} is newer than the newest PostgreSQL version pg-basebackup is tested with ` +
        `(${MAX_SERVER_MAJOR}): ${runs}; use the pg_basebackup of that server version, or a pg-basebackup ` +
        `release tested with PostgreSQL ${major}`,
    );
  }
}
