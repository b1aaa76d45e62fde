/**
 * `ReplicationConnection`: a physical-replication (`replication=true`) connection speaking
 * the simple-query protocol. This file is its public face; the work is done by
 *
 * - startup.ts and authenticate.ts: sslmode, TLS, authentication and the server-version check;
 * - pump.ts: the socket, the connection state machine and the receive buffer (backpressure);
 * - command.ts: the command iterator, one handler per backend message.
 *
 * State machine (a call in a state that does not allow it throws {@link StateError}):
 *
 * ```
 * connecting ─► authenticating ─► ready ⇄ busy ⇄ copy-out | copy-in | copy-both
 *      │               │            │                     │
 *      └───────────────┴────────────┴── closing ──► closed ◄┘  (destroy(): any state ─► closed)
 * ```
 * @module
 */
import { StateError } from '../errors.js';
import * as fe from '../protocol/frontend.js';
import type { StreamMessage } from '../protocol/messages.js';
import { MAX_SERVER_MAJOR, serverMajorOf } from '../server-version.js';
import { abortReason, collectResults, startCommand } from './command.js';
import { resolveConnectionOptions } from './options.js';
import type { ConnectionTuning, MessagePump } from './pump.js';
import { describeConnection } from './redact.js';
import { establish } from './startup.js';
import type {
  ConnectionEvents,
  ConnectionOptions,
  ConnectionState,
  QueryResult,
  ReplicationConnectionApi,
  ResolvedConnectionOptions,
} from './types.js';

export type { BufferedMessages } from './command.js';
export type { ConnectionTuning } from './pump.js';
export { MAX_SERVER_MAJOR, MIN_SERVER_MAJOR } from '../server-version.js';

/**
 * A physical replication connection. Create one with {@link ReplicationConnection.connect}.
 *
 * @example
 * ```ts
 * await using conn = await ReplicationConnection.connect('host=db user=replicator');
 * const [sys] = await conn.query('IDENTIFY_SYSTEM');
 * ```
 */
export class ReplicationConnection implements ReplicationConnectionApi {
  /** The resolved options in use. Contains the password if one was given: never print it whole. */
  readonly options: ResolvedConnectionOptions;
  readonly #pump: MessagePump;

  private constructor(pump: MessagePump) {
    this.options = pump.options;
    this.#pump = pump;
  }

  /**
   * Connect, negotiate TLS per `sslmode`, authenticate, read the startup parameters and
   * `SHOW server_version_num`.
   *
   * `input` is either connection options or, as a shorthand for `{ connectionString: input }`,
   * a libpq connection string: `key=value` pairs (`'host=db user=replicator sslmode=require'`)
   * or a `postgres://` / `postgresql://` URI. Whatever it leaves out comes from the `PG*`
   * environment variables, then libpq's defaults.
   *
   * sslmode as libpq: `disable` never sends SSLRequest; `allow` tries without TLS first and
   * retries with TLS when the server refuses that attempt; `prefer` (default) uses TLS when
   * the server accepts SSLRequest and retries without TLS if the handshake fails; `require`,
   * `verify-ca` and `verify-full` fail with `TlsError` when the server refuses SSL.
   * Unix sockets never use TLS (as libpq).
   *
   * The whole sequence is bounded by `connectTimeoutMs` (`ConnectTimeoutError`) and
   * `signal` (`AbortError`); with a string, neither is set, so only `PGCONNECT_TIMEOUT`
   * or `connect_timeout` in the string bound it.
   *
   * Servers older than 13 or newer than {@link MAX_SERVER_MAJOR} (the newest major
   * pg-basebackup is tested with) are refused with `UnsupportedServerError`.
   *
   * @example
   * ```ts
   * const conn = await ReplicationConnection.connect({
   *   connectionString: 'postgresql://replicator@db.example.com/?sslmode=verify-full',
   *   connectTimeoutMs: 10_000,
   * });
   * conn.on('notice', (n) => console.warn(`${n.severity}: ${n.message}`));
   * ```
   * @example
   * ```ts
   * const conn = await ReplicationConnection.connect('host=db.example.com user=replicator connect_timeout=10');
   * ```
   *
   * @throws ConfigError, ConnectionError, ConnectTimeoutError, TlsError, AuthenticationError,
   *   ServerError (a FATAL at startup, with advice for pg_hba.conf and password failures),
   *   ProtocolError, AbortError, UnsupportedServerError (server older than 13 or newer than 18).
   */
  static async connect(input: ConnectionOptions | string, tuning: ConnectionTuning = {}): Promise<ReplicationConnection> {
    const options: ConnectionOptions = typeof input === 'string' ? { connectionString: input } : input;
    const signal = options.signal;
    if (signal?.aborted) throw abortReason(signal, 'connecting');
    const opts = resolveConnectionOptions(options);
    return new ReplicationConnection(await establish(opts, tuning, signal));
  }

  /** Current state; see the module documentation. */
  get state(): ConnectionState {
    return this.#pump.state;
  }

  /** `server_version_num`, e.g. 170002. */
  get serverVersionNum(): number {
    return this.#pump.serverVersionNum;
  }

  /** Major version, e.g. 17. */
  get serverMajor(): number {
    return serverMajorOf(this.#pump.serverVersionNum);
  }

  /** BackendKeyData process id (the walsender's pid). */
  get backendPid(): number {
    return this.#pump.backendPid;
  }

  /** ParameterStatus values reported by the server (`server_version`, `integer_datetimes`, ...). */
  get parameters(): ReadonlyMap<string, string> {
    return this.#pump.parameters;
  }

  /** Whether the connection is TLS-encrypted. */
  get encrypted(): boolean {
    return this.#pump.tlsSocket !== undefined;
  }

  // ---------------------------------------------------------------- queries

  /**
   * Run one command with the simple-query protocol and collect every result set.
   * A command that starts a COPY cannot be run with query(): the replication commands and
   * WAL streaming run those.
   * @throws ServerError (after ReadyForQuery; the connection stays usable unless it was FATAL),
   *   AbortError, ConnectionClosedError, StateError.
   */
  async query(sql: string, options: { signal?: AbortSignal } = {}): Promise<QueryResult[]> {
    return collectResults(this.stream(sql, options), sql);
  }

  /**
   * Run one command and iterate its response message by message, pull-based: the socket is
   * paused while the consumer does not pull and more than the high-water mark is buffered.
   * NoticeResponse and ParameterStatus become events. An ErrorResponse makes the iterator
   * throw {@link ServerError} once ReadyForQuery has arrived (at once, destroying the
   * connection, when it is FATAL). ReadyForQuery ends the iteration.
   *
   * Breaking out of the loop (or an aborted `signal`) before the end **destroys the
   * connection**: the protocol offers no clean way to stop a CopyOut or CopyBoth.
   *
   * @throws StateError synchronously when another command is running or the connection is closed.
   * @internal The messages are the protocol layer's own types; the replication commands and WAL
   * streaming are the public way to run commands.
   */
  stream(sql: string, options: { signal?: AbortSignal } = {}): AsyncIterableIterator<StreamMessage> {
    return startCommand(this.#pump, sql, options.signal);
  }

  // ---------------------------------------------------------------- COPY to the server

  /**
   * Send CopyData during copy-in or copy-both. Large payloads are written without copying.
   * @returns false when the socket's write buffer is full: wait for {@link drained}.
   */
  sendCopyData(payload: Buffer): boolean {
    const pump = this.#pump;
    if (!pump.sendOpen || !(pump.state === 'copy-in' || pump.state === 'copy-both')) {
      pump.assertState(['copy-in', 'copy-both'], 'sendCopyData()');
      throw new StateError(`sendCopyData() after CopyDone (state ${pump.state})`);
    }
    if (payload.length <= 256) return pump.write(fe.copyData(pump.writer, payload));
    pump.write(fe.copyDataHeader(payload.length));
    return pump.write(payload);
  }

  /** Send CopyDone: we have nothing more to send in this COPY. */
  sendCopyDone(): void {
    const pump = this.#pump;
    pump.assertState(['copy-in', 'copy-both'], 'sendCopyDone()');
    pump.write(fe.copyDone(pump.writer));
    pump.setCopy(pump.recvOpen, false);
  }

  /** Send CopyFail: the server aborts the COPY with an ErrorResponse carrying `reason`. */
  sendCopyFail(reason: string): void {
    const pump = this.#pump;
    pump.assertState(['copy-in', 'copy-both'], 'sendCopyFail()');
    pump.write(fe.copyFail(pump.writer, reason));
    pump.setCopy(pump.recvOpen, false);
  }

  /** Resolves when the socket's write buffer has drained; rejects if the connection closes first. */
  drained(): Promise<void> {
    return this.#pump.drained();
  }

  // ---------------------------------------------------------------- events and lifecycle

  /** Listen to `notice`, `parameter` or `close` (fires once). */
  on<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): this {
    this.#pump.events.on(event, listener);
    return this;
  }

  /** Remove a listener added with {@link on}. */
  off<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): this {
    this.#pump.events.off(event, listener);
    return this;
  }

  /**
   * Send Terminate and close. Idempotent; the `close` event reports no error.
   *
   * When the connection is idle, waits for the server to close its end (destroying the socket
   * after `closeTimeoutMs`). When a command is running, a walsender sending a COPY does not read
   * what we send until it is done, so waiting would mean receiving (and discarding) the rest of
   * the COPY: the socket is then closed at once after Terminate, and the running command
   * rejects with `ConnectionClosedError`.
   */
  close(): Promise<void> {
    return this.#pump.close();
  }

  /**
   * Close at once, without Terminate. Idempotent. A pending operation rejects with `error`
   * (or ConnectionClosedError), and the `close` event carries `error`.
   */
  destroy(error?: Error): void {
    this.#pump.destroy(error);
  }

  /** A summary without secrets, used by `JSON.stringify`; `options` (which may hold the password) is left out. */
  toJSON(): Record<string, unknown> {
    return {
      connection: describeConnection(this.options),
      state: this.state,
      serverVersionNum: this.serverVersionNum,
      backendPid: this.backendPid,
      encrypted: this.encrypted,
    };
  }

  /** `util.inspect` / `console.log` show the same secret-free summary. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ReplicationConnection ${JSON.stringify(this.toJSON())}`;
  }

  /** `await using conn = ...` closes the connection with {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
