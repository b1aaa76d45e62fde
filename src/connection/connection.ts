/**
 * `ReplicationConnection`: a physical-replication (`replication=true`) connection speaking
 * the simple-query protocol, with an explicit state machine:
 *
 * ```
 * connecting ─► authenticating ─► ready ⇄ busy ⇄ copy-out | copy-in | copy-both
 *      │               │            │                     │
 *      └───────────────┴────────────┴── closing ──► closed ◄┘  (destroy(): any state ─► closed)
 * ```
 *
 * A call in a state that does not allow it throws {@link StateError}. Incoming bytes are framed
 * lazily: a message is parsed only when the current operation pulls it, and the socket is paused
 * while more than `highWaterMarkBytes` wait unread, so a slow consumer slows the server down.
 * @module
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import {
  AbortError, AuthenticationError, ConfigError, ConnectionClosedError, ConnectTimeoutError, PgBackupError, ProtocolError,
  ServerError, StateError, TlsError, UnsupportedServerError, type ServerMessageFields,
} from '../errors.js';
import { AuthCode } from '../protocol/codes.js';
import { Framer } from '../protocol/framer.js';
import * as fe from '../protocol/frontend.js';
import type { BackendMessage, StreamMessage } from '../protocol/messages.js';
import { parseMessage } from '../protocol/parser.js';
import { Writer } from '../protocol/writer.js';
import { md5PasswordMessage } from './auth/md5.js';
import { chooseScramMechanism, ScramClient } from './auth/scram.js';
import { resolveConnectionOptions } from './options.js';
import { lookupPgpass, pgpassKeyFor } from './pgpass.js';
import { describeConnection, isUnixSocketHost } from './redact.js';
import { createTransport, describeSocketError, endpointName, negotiateSsl, upgradeToTls } from './socket.js';
import { buildTlsOptions, describeTlsError, effectiveSslMode, SSL_REFUSED, tlsServerEndPointHash } from './tls.js';
import type {
  ConnectionEvents, ConnectionOptions, ConnectionState, QueryResult, ReplicationConnectionApi,
  ResolvedConnectionOptions,
} from './types.js';

/** Oldest major version this library supports. */
export const MIN_SERVER_MAJOR = 13;
/** Newest major version this library is tested against; newer ones are accepted without guarantee. */
export const MAX_TESTED_SERVER_MAJOR = 18;

/** Tuning knobs of {@link ReplicationConnection.connect} that are not libpq options. */
export interface ConnectionTuning {
  /**
   * Pause reading the socket once this many received bytes wait unread; resume below half of it.
   * @default 1048576 (1 MiB)
   */
  highWaterMarkBytes?: number;
  /**
   * How long {@link ReplicationConnection.close} waits for the server to close its end after
   * Terminate before destroying the socket.
   * @default 5000
   */
  closeTimeoutMs?: number;
}

/**
 * Also offered by the iterator {@link ReplicationConnection.stream} returns (not part of the public
 * API): the next result if it needs no waiting, i.e. a whole message is already buffered (or the
 * iteration is over); undefined when the caller must use `next()`, which it must also do while a
 * `next()` is pending. Throws as `next()` would reject.
 * @internal
 */
export interface BufferedMessages {
  takeBuffered(): IteratorResult<StreamMessage> | undefined;
}

/** How one connection attempt treats SSL (derived from sslmode, see {@link ReplicationConnection.connect}). */
type SslPlan = 'plain' | 'prefer' | 'require';

function isFatal(fields: ServerMessageFields): boolean {
  const s = fields.severityCode ?? fields.severity;
  return s === 'FATAL' || s === 'PANIC';
}

/** Startup errors of attempts made over TLS (sslmode=prefer retries those without TLS, like libpq). */
const refusedOverTls = new WeakSet<Error>();

function abortReason(signal: AbortSignal, what: string): PgBackupError {
  const r: unknown = signal.reason;
  if (r instanceof PgBackupError) return r;
  return new AbortError(`${what} was aborted`, { cause: r });
}

/**
 * A physical replication connection. Create one with {@link ReplicationConnection.connect}.
 *
 * @example
 * ```ts
 * await using conn = await ReplicationConnection.connect({ connectionString: 'host=db user=replicator' });
 * const [sys] = await conn.query('IDENTIFY_SYSTEM');
 * ```
 */
export class ReplicationConnection implements ReplicationConnectionApi {
  /** The resolved options in use. Contains the password if one was given: never print it whole. */
  readonly options: ResolvedConnectionOptions;

  #state: ConnectionState = 'connecting';
  #socket: net.Socket | tls.TLSSocket | undefined;
  #tlsSocket: tls.TLSSocket | undefined;
  readonly #framer = new Framer();
  readonly #writer = new Writer();
  readonly #events = new EventEmitter();
  readonly #parameters = new Map<string, string>();
  readonly #highWater: number;
  readonly #closeTimeoutMs: number;
  #paused = false;
  #wake: (() => void) | undefined;
  /** Why the connection can no longer be used; pending operations reject with it. */
  #closedError: Error | undefined;
  /** Set by destroy(): buffered messages are dropped at once. */
  #destroyed = false;
  /** What the 'close' event reports (undefined for a clean close). */
  #closeReason: Error | undefined;
  #closeEmitted = false;
  #closing: Promise<void> | undefined;
  #socketClosed = false;
  #recvOpen = false;
  #sendOpen = false;
  #serverVersionNum = 0;
  #backendPid = 0;
  #passwordSource: string | undefined;

  private constructor(options: ResolvedConnectionOptions, tuning: ConnectionTuning) {
    this.options = options;
    this.#highWater = tuning.highWaterMarkBytes ?? 1024 * 1024;
    this.#closeTimeoutMs = tuning.closeTimeoutMs ?? 5000;
    // Nobody may be listening when an unsolicited error arrives; never let EventEmitter throw it.
    this.#events.on('error', () => {});
  }

  /**
   * Connect, negotiate TLS per `sslmode`, authenticate, read the startup parameters and
   * `SHOW server_version_num`.
   *
   * sslmode as libpq: `disable` never sends SSLRequest; `allow` tries without TLS first and
   * retries with TLS when the server refuses that attempt; `prefer` (default) uses TLS when
   * the server accepts SSLRequest and retries without TLS if the handshake fails; `require`,
   * `verify-ca` and `verify-full` fail with {@link TlsError} when the server refuses SSL.
   * Unix sockets never use TLS (as libpq).
   *
   * The whole sequence is bounded by `connectTimeoutMs` ({@link ConnectTimeoutError}) and
   * `signal` ({@link AbortError}).
   *
   * Servers older than 13 are refused; servers newer than {@link MAX_TESTED_SERVER_MAJOR} are
   * accepted without guarantee (the replication protocol has stayed compatible so far, but they
   * are untested).
   *
   * @example
   * ```ts
   * const conn = await ReplicationConnection.connect({
   *   connectionString: 'postgresql://replicator@db.example.com/?sslmode=verify-full',
   *   connectTimeoutMs: 10_000,
   * });
   * conn.on('notice', (n) => console.warn(`${n.severity}: ${n.message}`));
   * ```
   *
   * @throws ConfigError, ConnectionError, ConnectTimeoutError, TlsError, AuthenticationError,
   *   ServerError (a FATAL at startup, with advice for pg_hba.conf and password failures),
   *   ProtocolError, AbortError, UnsupportedServerError (server older than 13).
   */
  static async connect(input: ConnectionOptions, tuning: ConnectionTuning = {}): Promise<ReplicationConnection> {
    const signal = input.signal;
    if (signal?.aborted) throw abortReason(signal, 'connecting');
    const opts = resolveConnectionOptions(input);
    const mode = effectiveSslMode(opts);

    const cancel = new AbortController();
    const onUserAbort = (): void => cancel.abort(abortReason(signal!, 'connecting'));
    signal?.addEventListener('abort', onUserAbort, { once: true });
    const timeoutMs = opts.connectTimeoutMs;
    const timer = timeoutMs !== undefined && timeoutMs > 0
      ? setTimeout(() => cancel.abort(new ConnectTimeoutError(
        `timed out after ${timeoutMs} ms connecting to the server at ${endpointName(opts)} ` +
        '(connect_timeout): check that the server is reachable and not overloaded')), timeoutMs)
      : undefined;

    const attempt = async (plan: SslPlan): Promise<ReplicationConnection> => {
      const conn = new ReplicationConnection(opts, tuning);
      const onCancel = (): void => conn.destroy(cancel.signal.reason as Error);
      cancel.signal.addEventListener('abort', onCancel, { once: true });
      try {
        await conn.#start(plan);
        return conn;
      } catch (err) {
        conn.destroy();
        throw cancel.signal.aborted ? cancel.signal.reason : err;
      } finally {
        cancel.signal.removeEventListener('abort', onCancel);
      }
    };

    try {
      if (isUnixSocketHost(opts.host) || mode === 'disable') return await attempt('plain');
      if (mode === 'allow') {
        try {
          return await attempt('plain');
        } catch (err) {
          // libpq: with sslmode=allow, a refused non-TLS attempt is retried with TLS
          // (e.g. only `hostssl` lines in pg_hba.conf).
          if (!(err instanceof ServerError) || cancel.signal.aborted) throw err;
          try {
            return await attempt('require');
          } catch (err2) {
            throw err2 instanceof TlsError ? err : err2;
          }
        }
      }
      if (mode === 'prefer') {
        try {
          return await attempt('prefer');
        } catch (err) {
          // libpq: with sslmode=prefer, a failed TLS handshake (or a server that refuses the
          // TLS attempt, e.g. `hostnossl` lines) is retried without TLS.
          if (!(err instanceof TlsError || (err instanceof ServerError && refusedOverTls.has(err))) ||
            cancel.signal.aborted) throw err;
          return await attempt('plain');
        }
      }
      return await attempt('require');
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onUserAbort);
    }
  }

  /** Current state; see the module documentation. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** `server_version_num`, e.g. 170002. */
  get serverVersionNum(): number {
    return this.#serverVersionNum;
  }

  /** Major version, e.g. 17. */
  get serverMajor(): number {
    return Math.floor(this.#serverVersionNum / 10000);
  }

  /** BackendKeyData process id (the walsender's pid). */
  get backendPid(): number {
    return this.#backendPid;
  }

  /** ParameterStatus values reported by the server (`server_version`, `integer_datetimes`, ...). */
  get parameters(): ReadonlyMap<string, string> {
    return this.#parameters;
  }

  /** Whether the connection is TLS-encrypted. */
  get encrypted(): boolean {
    return this.#tlsSocket !== undefined;
  }

  // ---------------------------------------------------------------- connect

  async #start(plan: SslPlan): Promise<void> {
    const o = this.options;
    // A connection that stays plain reads into large slabs (fewer, bigger reads; see ReadSlabs).
    const slabReads = plan === 'plain';
    let socket: net.Socket = createTransport(o, slabReads ? (chunk) => this.#onData(chunk) : undefined);
    this.#socket = socket;
    this.#watch(socket);
    await new Promise<void>((resolve, reject) => {
      const onConnect = (): void => { socket.off('error', onError); socket.off('close', onClose); resolve(); };
      const onError = (err: Error): void => {
        socket.off('connect', onConnect); socket.off('close', onClose);
        reject(describeSocketError(err, o, 'connect'));
      };
      const onClose = (): void => reject(this.#closedError ?? new ConnectionClosedError('the connection closed while connecting'));
      socket.once('connect', onConnect);
      socket.once('error', onError);
      socket.once('close', onClose);
    });

    let viaTls = false;
    if (plan !== 'plain') {
      let accepted: boolean;
      try {
        accepted = await negotiateSsl(socket, this.#writer);
      } catch (err) {
        throw this.#closedError ?? (err instanceof PgBackupError ? err : describeSocketError(err, o, 'connect'));
      }
      if (!accepted && plan === 'require') throw describeTlsError(SSL_REFUSED, o);
      if (accepted) {
        const tlsOptions = await buildTlsOptions(o);
        if (this.#closedError) throw this.#closedError;
        try {
          socket = await upgradeToTls(socket, tlsOptions);
        } catch (err) {
          throw this.#closedError ?? describeTlsError(err, o);
        }
        this.#tlsSocket = socket as tls.TLSSocket;
        this.#socket = socket;
        this.#watch(socket);
        viaTls = true;
      }
    }

    if (!slabReads) socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.resume();
    this.#state = 'authenticating';
    this.#write(fe.startupMessage(this.#writer, {
      user: o.user,
      ...(o.applicationName !== undefined ? { applicationName: o.applicationName } : {}),
    }));
    try {
      await this.#authenticate();
      await this.#readStartup();
    } catch (err) {
      if (err instanceof ServerError && viaTls) refusedOverTls.add(err);
      throw err;
    }
    this.#state = 'ready';

    const [show] = await this.query('SHOW server_version_num');
    const num = Number(show?.rows[0]?.[0]);
    if (!Number.isInteger(num) || num <= 0) {
      throw new ProtocolError(`SHOW server_version_num returned ${JSON.stringify(show?.rows[0]?.[0])}`);
    }
    this.#serverVersionNum = num;
    if (this.serverMajor < MIN_SERVER_MAJOR) {
      throw new UnsupportedServerError(
        `the server at ${endpointName(o)} runs PostgreSQL ${this.#parameters.get('server_version') ?? num} ` +
        `(server_version_num ${num}); pg-basebackup supports PostgreSQL ${MIN_SERVER_MAJOR} and newer: ` +
        'use the pg_basebackup of that server version instead');
    }
  }

  async #password(method: string): Promise<string> {
    const o = this.options;
    if (o.password !== undefined) {
      this.#passwordSource = 'the password given in the options, connection string or PGPASSWORD';
      return o.password;
    }
    const { password, warning } = await lookupPgpass(o.passfile, pgpassKeyFor(o));
    if (this.#closedError) throw this.#closedError;
    if (password !== undefined) {
      this.#passwordSource = `the password from "${o.passfile}"`;
      return password;
    }
    throw new AuthenticationError(
      `the server asked for a password (${method} authentication) for ${describeConnection(o)}, but none was given: ` +
      `set PGPASSWORD, add a line for it to the password file "${o.passfile}", or put password=... in the connection string` +
      (warning !== undefined ? ` (WARNING: ${warning})` : ''));
  }

  #checkChannelBindingAllows(method: string): void {
    if (this.options.channelBinding === 'require') {
      throw new AuthenticationError(
        `channel_binding=require, but the server asked for ${method} authentication, which cannot bind the channel: ` +
        'use a SCRAM-SHA-256 password and a TLS connection, or set channel_binding=prefer');
    }
  }

  async #authenticate(): Promise<void> {
    const o = this.options;
    let scram: ScramClient | undefined;
    let scramDone = false;
    for (;;) {
      const m = await this.#next();
      if (m.type === 'ErrorResponse') throw this.#startupError(m.fields);
      if (m.type === 'NegotiateProtocolVersion') continue;
      if (m.type !== 'Authentication') throw this.#unexpected(m, 'authentication');
      switch (m.code) {
        case AuthCode.Ok:
          if (scram !== undefined && !scramDone) {
            throw new AuthenticationError('the server ended SCRAM authentication without proving it knows the password ' +
              '(no SASLFinal): refusing to trust it');
          }
          if (o.channelBinding === 'require' && !(scramDone && scram?.mechanism === 'SCRAM-SHA-256-PLUS')) {
            throw new AuthenticationError('channel_binding=require, but the server authenticated us without channel ' +
              'binding (trust or another method without SCRAM-SHA-256-PLUS): fix pg_hba.conf or set channel_binding=prefer');
          }
          return;
        case AuthCode.CleartextPassword: {
          this.#checkChannelBindingAllows('cleartext password');
          this.#write(fe.passwordMessage(this.#writer, await this.#password('password')));
          break;
        }
        case AuthCode.MD5Password: {
          this.#checkChannelBindingAllows('MD5 password');
          const pw = await this.#password('md5');
          this.#write(fe.passwordMessage(this.#writer, md5PasswordMessage(o.user, pw, m.salt!)));
          break;
        }
        case AuthCode.SASL: {
          if (scram !== undefined) throw new ProtocolError('the server restarted SASL authentication');
          const choice = chooseScramMechanism(m.mechanisms ?? [], this.#tlsSocket !== undefined, o.channelBinding);
          const pw = await this.#password(choice.mechanism);
          let bindingData: Buffer | undefined;
          if (choice.mechanism === 'SCRAM-SHA-256-PLUS') {
            const cert = this.#tlsSocket?.getPeerX509Certificate();
            if (cert === undefined) throw new AuthenticationError('channel binding needs the server certificate, which TLS did not provide');
            bindingData = tlsServerEndPointHash(cert);
          }
          scram = new ScramClient({
            password: pw,
            channelBinding: { ...choice, ...(bindingData !== undefined ? { bindingData } : {}) },
          });
          this.#write(fe.saslInitialResponse(this.#writer, choice.mechanism, scram.clientFirstMessage()));
          break;
        }
        case AuthCode.SASLContinue:
          if (scram === undefined) throw new ProtocolError('SASLContinue without a SASL exchange');
          this.#write(fe.saslResponse(this.#writer, scram.handleServerFirst((m.data ?? Buffer.alloc(0)).toString('utf8'))));
          break;
        case AuthCode.SASLFinal:
          if (scram === undefined) throw new ProtocolError('SASLFinal without a SASL exchange');
          scram.verifyServerFinal((m.data ?? Buffer.alloc(0)).toString('utf8'));
          scramDone = true;
          break;
        case AuthCode.KerberosV5:
          throw new AuthenticationError('the server asked for Kerberos V5 authentication, which is not supported: ' +
            'use scram-sha-256 for this role in pg_hba.conf');
        case AuthCode.GSS:
        case AuthCode.GSSContinue:
          throw new AuthenticationError('the server asked for GSSAPI authentication, which is not supported: ' +
            'use scram-sha-256 for this role in pg_hba.conf');
        case AuthCode.SSPI:
          throw new AuthenticationError('the server asked for SSPI authentication, which is not supported: ' +
            'use scram-sha-256 for this role in pg_hba.conf');
        default:
          throw new AuthenticationError(`the server asked for an unknown authentication method (code ${m.code})`);
      }
    }
  }

  async #readStartup(): Promise<void> {
    for (;;) {
      const m = await this.#next();
      switch (m.type) {
        case 'BackendKeyData':
          this.#backendPid = m.processId;
          break;
        case 'NegotiateProtocolVersion':
          // We ask for 3.0 without _pq_ options; a server that still negotiates is told nothing new.
          break;
        case 'ReadyForQuery':
          return;
        case 'ErrorResponse':
          throw this.#startupError(m.fields);
        default:
          throw this.#unexpected(m, 'startup');
      }
    }
  }

  #startupError(fields: ServerMessageFields): ServerError {
    const o = this.options;
    const text = `${fields.message} ${fields.detail ?? ''}`;
    let advice: string | undefined;
    if (fields.sqlState === '28000' && /pg_hba/i.test(text)) {
      const addr = isUnixSocketHost(o.host) ? 'local   replication' : 'host    replication';
      advice = `The server has no pg_hba.conf entry for replication connections from here: add a line like ` +
        `"${addr} ${o.user} ${isUnixSocketHost(o.host) ? '' : '<client address>/32 '}scram-sha-256" ` +
        '(replication lines need the keyword "replication" in the database column) and reload the server.';
    } else if (fields.sqlState === '28P01') {
      advice = `The password was rejected (${this.#passwordSource ?? 'no password source'}): check it for user "${o.user}".`;
    } else if (fields.sqlState === '28000' || fields.sqlState === '42501') {
      if (/replication|WAL sender/i.test(text)) {
        advice = `Give the role the REPLICATION attribute: ALTER ROLE "${o.user.replace(/"/g, '""')}" REPLICATION;`;
      }
    } else if (fields.sqlState === '53300') {
      advice = 'The server has no free WAL sender or connection slot: raise max_wal_senders (or max_connections) ' +
        'or stop other replication clients.';
    } else if (fields.sqlState === '57P03') {
      advice = 'The server is starting up or shutting down: try again in a moment.';
    }
    return new ServerError(fields, advice);
  }

  // ---------------------------------------------------------------- message pump

  #watch(socket: net.Socket): void {
    socket.on('error', (err: Error) => {
      if (this.#closedError !== undefined) return;
      this.#closedError = this.#tlsSocket !== undefined && socket === this.#tlsSocket && this.#state === 'connecting'
        ? describeTlsError(err, this.options)
        : describeSocketError(err, this.options, this.#state === 'connecting' ? 'connect' : 'io');
      this.#closeReason ??= this.#closedError;
    });
    socket.on('close', () => {
      if (socket !== this.#socket) return;
      this.#socketClosed = true;
      if (this.#closedError === undefined) {
        const unsolicited = this.#state === 'ready' ? this.#drainUnsolicitedError() : undefined;
        // The stream stopped inside a message: say where, since it was cut rather than ended.
        const partial = this.#framer.describePartial();
        this.#closedError = unsolicited ?? new ConnectionClosedError(
          this.#state === 'closing'
            ? 'the connection was closed'
            : `the server at ${endpointName(this.options)} closed the connection unexpectedly ` +
              '(it may have been shut down or the walsender terminated; see the server log)' +
              (partial === undefined ? '' : `, in the middle of a message (received ${partial})`));
        if (this.#state !== 'closing') this.#closeReason ??= this.#closedError;
      }
      this.#state = 'closed';
      this.#wakeUp();
      this.#emitClose();
    });
  }

  /** When the server closes an idle connection it usually says why in a FATAL ErrorResponse. */
  #drainUnsolicitedError(): ServerError | undefined {
    try {
      for (let f; (f = this.#framer.pull()); ) {
        const m = parseMessage(f);
        if (m.type === 'NoticeResponse') this.#events.emit('notice', m.fields);
        if (m.type === 'ErrorResponse') return new ServerError(m.fields);
      }
    } catch {
      // The stream is dead anyway; the generic message will do.
    }
    return undefined;
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.#events.emit('close', this.#closeReason);
  }

  #onData(chunk: Buffer): void {
    if (this.#destroyed || this.#closing !== undefined) return;
    this.#framer.push(chunk);
    if (!this.#paused && this.#framer.bufferedBytes >= this.#highWater) {
      this.#paused = true;
      this.#socket?.pause();
    }
    this.#wakeUp();
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #resume(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#socket?.resume();
    }
  }

  /**
   * The next message for the current operation if a whole one is buffered, else undefined (nothing
   * is awaited). NoticeResponse and ParameterStatus are handled here (events), in order, whatever
   * the state, so they are never lost.
   */
  #nextBuffered(): BackendMessage | undefined {
    for (;;) {
      if (this.#destroyed || this.#closing !== undefined) {
        throw this.#closedError ?? new ConnectionClosedError('the connection was destroyed');
      }
      let msg: BackendMessage | undefined;
      try {
        const frame = this.#framer.pull();
        if (frame === null) return undefined;
        msg = parseMessage(frame);
      } catch (err) {
        this.destroy(err as Error);
        throw err;
      }
      if (this.#paused && this.#framer.bufferedBytes <= this.#highWater / 2) this.#resume();
      if (msg.type === 'NoticeResponse') {
        this.#events.emit('notice', msg.fields);
        continue;
      }
      if (msg.type === 'ParameterStatus') {
        this.#parameters.set(msg.name, msg.value);
        if (this.#state !== 'authenticating' && this.#state !== 'connecting') {
          this.#events.emit('parameter', msg.name, msg.value);
        }
        continue;
      }
      return msg;
    }
  }

  /** The next message for the current operation, waiting for the socket when none is buffered. */
  async #next(): Promise<BackendMessage> {
    for (;;) {
      const msg = this.#nextBuffered();
      if (msg !== undefined) return msg;
      if (this.#closedError !== undefined && this.#socketClosed) throw this.#closedError;
      // Nothing whole is buffered: read on even above the high-water mark (one big message).
      this.#resume();
      await new Promise<void>((resolve) => { this.#wake = resolve; });
    }
  }

  #unexpected(m: BackendMessage, during: string): ProtocolError {
    const err = new ProtocolError(`unexpected ${m.type} message during ${during}`);
    this.destroy(err);
    return err;
  }

  #write(buf: Buffer): boolean {
    const s = this.#socket;
    if (s === undefined || this.#closedError !== undefined || s.destroyed) {
      throw this.#closedError ?? new ConnectionClosedError('the connection is closed');
    }
    return s.write(buf);
  }

  #assertState(allowed: readonly ConnectionState[], what: string): void {
    if (!allowed.includes(this.#state)) {
      if (this.#state === 'closed' || this.#state === 'closing') {
        throw new StateError(`${what} called on a ${this.#state} connection`);
      }
      throw new StateError(`${what} is not allowed while the connection is ${this.#state}` +
        (this.#state === 'busy' || this.#state.startsWith('copy') ? ' (one command at a time: finish the current one first)' : ''));
    }
  }

  #updateCopyState(): void {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    this.#state = this.#recvOpen && this.#sendOpen ? 'copy-both'
      : this.#recvOpen ? 'copy-out'
      : this.#sendOpen ? 'copy-in'
      : 'busy';
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
    const results: QueryResult[] = [];
    let current: QueryResult | undefined;
    for await (const m of this.stream(sql, options)) {
      switch (m.type) {
        case 'RowDescription':
          current = { command: '', columns: m.columns.map((c) => ({ name: c.name, typeOid: c.typeOid })), rows: [] };
          break;
        case 'DataRow':
          (current ??= { command: '', columns: [], rows: [] }).rows.push(m.values);
          break;
        case 'CommandComplete':
          (current ??= { command: '', columns: [], rows: [] }).command = m.tag;
          results.push(current);
          current = undefined;
          break;
        case 'CopyInResponse':
        case 'CopyOutResponse':
        case 'CopyBothResponse':
          // Leaving the loop destroys the connection: there is no clean way back from a COPY here.
          throw new StateError(`"${sql.slice(0, 40)}" started a COPY (${m.type}); use stream() for such commands`);
        default:
          break;
      }
    }
    return results;
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
    this.#assertState(['ready'], 'stream()');
    if (sql.includes('\0')) throw new ConfigError('a command cannot contain a NUL character');
    const signal = options.signal;
    if (signal?.aborted) {
      const err = abortReason(signal, 'the command');
      // Nothing was sent: the connection stays ready.
      return (async function* aborted(): AsyncGenerator<StreamMessage> { throw err; })();
    }
    this.#write(fe.query(this.#writer, sql));
    this.#state = 'busy';
    this.#recvOpen = false;
    this.#sendOpen = false;
    return this.#run(signal);
  }

  /**
   * The iterator {@link stream} returns: an async iterator written out rather than an async
   * generator, so that it can also hand out, without a promise each, the messages already whole in
   * the receive buffer (`takeBuffered()`, which the backup session uses for BASE_BACKUP's thousands of
   * CopyData messages). Leaving it before ReadyForQuery destroys the connection, as documented.
   */
  #run(signal: AbortSignal | undefined): AsyncIterableIterator<StreamMessage> & BufferedMessages {
    let started = false;
    let finished = false; // the iteration is over: ended, failed or left
    let done = false; // ReadyForQuery arrived
    let serverError: ServerError | undefined;
    let last: Promise<unknown> | undefined; // the latest next() still pending
    const ended: IteratorResult<StreamMessage> = { done: true, value: undefined };
    const onAbort = (): void => this.destroy(abortReason(signal!, 'the command'));
    const start = (): void => {
      if (started) return;
      started = true;
      signal?.addEventListener('abort', onAbort, { once: true });
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      if (!done && !this.#destroyed) {
        this.destroy(new AbortError('the command was not read to its end (stream() left early); ' +
          'the connection was closed because the protocol cannot stop a running command cleanly'));
      }
    };
    // One message in: the result to hand out, or undefined for a message the consumer does not see.
    const step = (m: BackendMessage): IteratorResult<StreamMessage> | undefined => {
      switch (m.type) {
        case 'ErrorResponse': {
          const err = new ServerError(m.fields);
          if (isFatal(m.fields)) {
            // The server closes the connection after a FATAL; no ReadyForQuery will come.
            this.destroy(err);
            throw err;
          }
          serverError ??= err;
          this.#recvOpen = false;
          this.#sendOpen = false;
          this.#updateCopyState();
          return undefined;
        }
        case 'ReadyForQuery':
          done = true;
          this.#recvOpen = false;
          this.#sendOpen = false;
          if (this.#state !== 'closing' && this.#state !== 'closed') this.#state = 'ready';
          if (serverError !== undefined) throw serverError;
          finish();
          return ended;
        case 'CopyInResponse':
          this.#sendOpen = true;
          this.#updateCopyState();
          break;
        case 'CopyOutResponse':
          this.#recvOpen = true;
          this.#updateCopyState();
          break;
        case 'CopyBothResponse':
          this.#recvOpen = true;
          this.#sendOpen = true;
          this.#updateCopyState();
          break;
        case 'CopyDone':
          this.#recvOpen = false;
          this.#updateCopyState();
          break;
        case 'CopyData':
          if (!this.#recvOpen) throw this.#unexpected(m, `a command in state ${this.#state}`);
          break;
        case 'CommandComplete':
          this.#recvOpen = false;
          this.#sendOpen = false;
          this.#updateCopyState();
          break;
        case 'RowDescription':
        case 'DataRow':
        case 'EmptyQueryResponse':
          break;
        case 'NotificationResponse':
          return undefined;
        default:
          throw this.#unexpected(m, 'a command');
      }
      return { done: false, value: m };
    };
    const pump = async (): Promise<IteratorResult<StreamMessage>> => {
      if (finished) return ended;
      start();
      try {
        for (;;) {
          const r = step(await this.#next());
          if (r !== undefined) return r;
        }
      } catch (err) {
        finish();
        throw err;
      }
    };
    const iterator = {
      next: (): Promise<IteratorResult<StreamMessage>> => {
        // As with an async generator, a call made while another is pending runs after it.
        const p = last === undefined ? pump() : last.then(pump, pump);
        last = p;
        const clear = (): void => {
          if (last === p) last = undefined;
        };
        p.then(clear, clear);
        return p;
      },
      takeBuffered: (): IteratorResult<StreamMessage> | undefined => {
        if (finished) return ended;
        if (last !== undefined) return undefined;
        start();
        try {
          for (;;) {
            const m = this.#nextBuffered();
            if (m === undefined) return undefined;
            const r = step(m);
            if (r !== undefined) return r;
          }
        } catch (err) {
          finish();
          throw err;
        }
      },
      return: (value?: unknown): Promise<IteratorResult<StreamMessage>> => {
        finish();
        return Promise.resolve({ done: true, value: value as undefined });
      },
      throw: (err?: unknown): Promise<IteratorResult<StreamMessage>> => {
        finish();
        return Promise.reject(err);
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  // ---------------------------------------------------------------- COPY to the server

  /**
   * Send CopyData during copy-in or copy-both. Large payloads are written without copying.
   * @returns false when the socket's write buffer is full: wait for {@link drained}.
   */
  sendCopyData(payload: Buffer): boolean {
    if (!this.#sendOpen || !(this.#state === 'copy-in' || this.#state === 'copy-both')) {
      this.#assertState(['copy-in', 'copy-both'], 'sendCopyData()');
      throw new StateError(`sendCopyData() after CopyDone (state ${this.#state})`);
    }
    if (payload.length <= 256) return this.#write(fe.copyData(this.#writer, payload));
    this.#write(fe.copyDataHeader(payload.length));
    return this.#write(payload);
  }

  /** Send CopyDone: we have nothing more to send in this COPY. */
  sendCopyDone(): void {
    this.#assertState(['copy-in', 'copy-both'], 'sendCopyDone()');
    this.#write(fe.copyDone(this.#writer));
    this.#sendOpen = false;
    this.#updateCopyState();
  }

  /** Send CopyFail: the server aborts the COPY with an ErrorResponse carrying `reason`. */
  sendCopyFail(reason: string): void {
    this.#assertState(['copy-in', 'copy-both'], 'sendCopyFail()');
    this.#write(fe.copyFail(this.#writer, reason));
    this.#sendOpen = false;
    this.#updateCopyState();
  }

  /** Resolves when the socket's write buffer has drained; rejects if the connection closes first. */
  drained(): Promise<void> {
    const s = this.#socket;
    if (this.#closedError !== undefined) return Promise.reject(this.#closedError);
    if (s === undefined || !s.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => { s.off('close', onClose); resolve(); };
      const onClose = (): void => {
        s.off('drain', onDrain);
        reject(this.#closedError ?? new ConnectionClosedError('the connection closed while waiting for the write buffer to drain'));
      };
      s.once('drain', onDrain);
      s.once('close', onClose);
    });
  }

  // ---------------------------------------------------------------- events and lifecycle

  /** Listen to `notice`, `parameter` or `close` (fires once). */
  on<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Remove a listener added with {@link on}. */
  off<E extends keyof ConnectionEvents>(event: E, listener: ConnectionEvents[E]): this {
    this.#events.off(event, listener);
    return this;
  }

  /**
   * Send Terminate and close. Idempotent; the `close` event reports no error.
   *
   * When the connection is idle, waits for the server to close its end (destroying the socket
   * after `closeTimeoutMs`). When a command is running, a walsender sending a COPY does not read
   * what we send until it is done, so waiting would mean receiving (and discarding) the rest of
   * the COPY: the socket is then closed at once after Terminate, and the running command
   * rejects with {@link ConnectionClosedError}.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const s = this.#socket;
    if (this.#state === 'closed' || s === undefined || this.#socketClosed) {
      this.#state = 'closed';
      this.#emitClose();
      return (this.#closing = Promise.resolve());
    }
    const idle = this.#state === 'ready';
    this.#state = 'closing';
    this.#closedError ??= new ConnectionClosedError(idle
      ? 'the connection was closed by close()'
      : 'the connection was closed by close() while a command was running');
    this.#closing = new Promise<void>((resolve) => {
      const timer = setTimeout(() => s.destroy(), idle ? this.#closeTimeoutMs : Math.min(this.#closeTimeoutMs, 1000));
      s.once('close', () => { clearTimeout(timer); resolve(); });
      if (!idle) s.once('finish', () => s.destroy());
      try {
        s.end(fe.terminate(this.#writer));
      } catch {
        s.destroy();
      }
      // Read on to see the server's end of the connection; what arrives now is dropped.
      this.#resume();
    });
    this.#wakeUp();
    return this.#closing;
  }

  /**
   * Close at once, without Terminate. Idempotent. A pending operation rejects with `error`
   * (or ConnectionClosedError), and the `close` event carries `error`.
   */
  destroy(error?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closedError ??= error ?? new ConnectionClosedError('the connection was destroyed');
    if (error !== undefined) this.#closeReason ??= error;
    this.#state = 'closed';
    const s = this.#socket;
    if (s === undefined || this.#socketClosed || s.destroyed && s.closed) {
      this.#emitClose();
    } else {
      s.destroy();
    }
    this.#wakeUp();
  }

  /** A summary without secrets, used by `JSON.stringify`; `options` (which may hold the password) is left out. */
  toJSON(): Record<string, unknown> {
    return {
      connection: describeConnection(this.options),
      state: this.#state,
      serverVersionNum: this.#serverVersionNum,
      backendPid: this.#backendPid,
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
