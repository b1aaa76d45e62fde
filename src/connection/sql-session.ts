/**
 * `SqlSession`: an ordinary (non-replication) session in one database, for the few SQL statements the
 * restore rehearsal runs on the server it restored (reading tables, amcheck, the user's checks). The same
 * start-up, authentication and command iterator as {@link ReplicationConnection}; only the StartupMessage
 * differs (`replication=false` and a `database`).
 * @module
 * @internal
 */
import { collectResults, startCommand } from './command.js';
import { resolveConnectionOptions } from './options.js';
import type { MessagePump } from './pump.js';
import { establish } from './startup.js';
import type { ConnectionOptions, QueryResult } from './types.js';

/** An SQL session; open one with {@link SqlSession.open}. */
export class SqlSession {
  readonly #pump: MessagePump;

  private constructor(pump: MessagePump) {
    this.#pump = pump;
  }

  /** Connect to `database` and authenticate. Same errors as `ReplicationConnection.connect`. */
  static async open(options: ConnectionOptions, database: string): Promise<SqlSession> {
    const opts = resolveConnectionOptions(options);
    return new SqlSession(await establish(opts, {}, options.signal, { replication: false, database }));
  }

  /** `server_version_num`. */
  get serverVersionNum(): number {
    return this.#pump.serverVersionNum;
  }

  /** Run one simple-query string; every result set, rows as text. @throws ServerError */
  query(sql: string, options: { signal?: AbortSignal | undefined } = {}): Promise<QueryResult[]> {
    return collectResults(startCommand(this.#pump, sql, options.signal), sql);
  }

  /** Terminate and close. Idempotent. */
  close(): Promise<void> {
    return this.#pump.close();
  }

  /** Close at once. */
  destroy(): void {
    this.#pump.destroy();
  }
}
