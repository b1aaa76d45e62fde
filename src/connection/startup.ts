/**
 * Start-up of a replication connection: sslmode (which attempts to make, with or without TLS,
 * and when to retry), the transport and TLS upgrade, the StartupMessage, authentication
 * (authenticate.ts), and the server-version check. Hands a `ready` {@link MessagePump} to
 * `ReplicationConnection`.
 * @module
 * @internal
 */
import type * as net from 'node:net';
import { ConnectionClosedError, ConnectTimeoutError, PgBackupError, ProtocolError, ServerError, TlsError } from '../errors.js';
import * as fe from '../protocol/frontend.js';
import { checkServerVersion } from '../server-version.js';
import { authenticate } from './authenticate.js';
import { abortReason, collectResults, startCommand } from './command.js';
import { MessagePump, type ConnectionTuning } from './pump.js';
import { isUnixSocketHost } from './redact.js';
import { createTransport, describeSocketError, endpointName, negotiateSsl, upgradeToTls } from './socket.js';
import { buildTlsOptions, describeTlsError, effectiveSslMode, SSL_REFUSED } from './tls.js';
import type { ResolvedConnectionOptions } from './types.js';

/** How one connection attempt treats SSL (derived from sslmode). */
type SslPlan = 'plain' | 'prefer' | 'require';

/** Startup errors of attempts made over TLS (sslmode=prefer retries those without TLS, like libpq). */
const refusedOverTls = new WeakSet<Error>();

/** A physical walsender (the default), or an ordinary SQL session in `database` (the rehearsal's checks). */
export type SessionKind = { replication: true } | { replication: false; database: string };

/**
 * Make the connection attempts `sslmode` calls for, bounded by `connectTimeoutMs` and `signal`.
 * See `ReplicationConnection.connect` for the sslmode rules.
 */
export async function establish(
  opts: ResolvedConnectionOptions,
  tuning: ConnectionTuning,
  signal: AbortSignal | undefined,
  session: SessionKind = { replication: true },
): Promise<MessagePump> {
  const mode = effectiveSslMode(opts);
  const cancel = new AbortController();
  const onUserAbort = (): void => cancel.abort(abortReason(signal!, 'connecting'));
  signal?.addEventListener('abort', onUserAbort, { once: true });
  const timeoutMs = opts.connectTimeoutMs;
  const timer =
    timeoutMs !== undefined && timeoutMs > 0
      ? setTimeout(
          () =>
            cancel.abort(
              new ConnectTimeoutError(
                `timed out after ${timeoutMs} ms connecting to the server at ${endpointName(opts)} ` +
                  '(connect_timeout): check that the server is reachable and not overloaded',
              ),
            ),
          timeoutMs,
        )
      : undefined;

  const attempt = async (plan: SslPlan): Promise<MessagePump> => {
    const pump = new MessagePump(opts, tuning);
    const onCancel = (): void => pump.destroy(cancel.signal.reason as Error);
    cancel.signal.addEventListener('abort', onCancel, { once: true });
    try {
      await start(pump, plan, session);
      return pump;
    } catch (err) {
      pump.destroy();
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
        if (!(err instanceof TlsError || (err instanceof ServerError && refusedOverTls.has(err))) || cancel.signal.aborted) throw err;
        return await attempt('plain');
      }
    }
    return await attempt('require');
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onUserAbort);
  }
}

/** One attempt: transport, SSLRequest and TLS per `plan`, StartupMessage, authentication, version. */
async function start(pump: MessagePump, plan: SslPlan, session: SessionKind): Promise<void> {
  const o = pump.options;
  // A connection that stays plain reads into large slabs (fewer, bigger reads; see ReadSlabs).
  const slabReads = plan === 'plain';
  let socket: net.Socket = createTransport(o, slabReads ? (chunk) => pump.receive(chunk) : undefined, pump.slabs);
  pump.attach(socket, false);
  await new Promise<void>((resolve, reject) => {
    const onConnect = (): void => {
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve();
    };
    const onError = (err: Error): void => {
      socket.off('connect', onConnect);
      socket.off('close', onClose);
      reject(describeSocketError(err, o, 'connect'));
    };
    const onClose = (): void => reject(pump.closedError ?? new ConnectionClosedError('the connection closed while connecting'));
    socket.once('connect', onConnect);
    socket.once('error', onError);
    socket.once('close', onClose);
  });

  let viaTls = false;
  if (plan !== 'plain') {
    let accepted: boolean;
    try {
      accepted = await negotiateSsl(socket, pump.writer);
    } catch (err) {
      throw pump.closedError ?? (err instanceof PgBackupError ? err : describeSocketError(err, o, 'connect'));
    }
    if (!accepted && plan === 'require') throw describeTlsError(SSL_REFUSED, o);
    if (accepted) {
      const tlsOptions = await buildTlsOptions(o);
      if (pump.closedError) throw pump.closedError;
      try {
        socket = await upgradeToTls(socket, tlsOptions);
      } catch (err) {
        throw pump.closedError ?? describeTlsError(err, o);
      }
      pump.attach(socket, true);
      viaTls = true;
    }
  }

  if (!slabReads) socket.on('data', (chunk: Buffer) => pump.receive(chunk));
  socket.resume();
  pump.transition('authenticating');
  pump.write(
    fe.startupMessage(pump.writer, {
      user: o.user,
      ...(session.replication ? {} : { replication: false, database: session.database }),
      ...(o.applicationName !== undefined ? { applicationName: o.applicationName } : {}),
    }),
  );
  try {
    await authenticate(pump);
  } catch (err) {
    if (err instanceof ServerError && viaTls) refusedOverTls.add(err);
    throw err;
  }
  pump.transition('ready');

  const sql = 'SHOW server_version_num';
  const [show] = await collectResults(startCommand(pump, sql, undefined), sql);
  const num = Number(show?.rows[0]?.[0]);
  if (!Number.isInteger(num) || num <= 0) {
    throw new ProtocolError(`SHOW server_version_num returned ${JSON.stringify(show?.rows[0]?.[0])}`);
  }
  pump.serverVersionNum = num;
  checkServerVersion({ serverVersionNum: num, serverVersion: pump.parameters.get('server_version'), endpoint: endpointName(o) });
}
