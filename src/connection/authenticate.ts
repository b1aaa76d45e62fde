/**
 * The authentication exchange of start-up, one handler per authentication request the server
 * can send (AuthenticationOk, AuthenticationCleartextPassword, AuthenticationMD5Password,
 * AuthenticationSASL, AuthenticationSASLContinue, AuthenticationSASLFinal; Kerberos, GSSAPI and
 * SSPI are refused), then the rest of start-up up to the first ReadyForQuery.
 * @module
 * @internal
 */
import { AuthenticationError, ProtocolError, ServerError, type ServerMessageFields } from '../errors.js';
import { AuthCode } from '../protocol/codes.js';
import * as fe from '../protocol/frontend.js';
import type { AuthenticationMessage } from '../protocol/messages.js';
import { md5PasswordMessage } from './auth/md5.js';
import { chooseScramMechanism, ScramClient } from './auth/scram.js';
import { lookupPgpass, pgpassKeyFor } from './pgpass.js';
import type { MessagePump } from './pump.js';
import { describeConnection, isUnixSocketHost } from './redact.js';
import { tlsServerEndPointHash } from './tls.js';

const UNSUPPORTED = 'use scram-sha-256 for this role in pg_hba.conf';

/** One authentication exchange (the SCRAM conversation spans several requests). */
class Authentication {
  readonly #pump: MessagePump;
  #scram: ScramClient | undefined;
  #scramDone = false;
  /** Where the password came from, for the advice when the server rejects it. */
  passwordSource: string | undefined;

  constructor(pump: MessagePump) {
    this.#pump = pump;
  }

  /**
   * Answer one authentication request.
   * @returns true once the server accepted us (AuthenticationOk).
   */
  async handle(m: AuthenticationMessage): Promise<boolean> {
    switch (m.code) {
      case AuthCode.Ok:
        return this.#AuthenticationOk();
      case AuthCode.CleartextPassword:
        await this.#AuthenticationCleartextPassword();
        return false;
      case AuthCode.MD5Password:
        await this.#AuthenticationMD5Password(m);
        return false;
      case AuthCode.SASL:
        await this.#AuthenticationSASL(m);
        return false;
      case AuthCode.SASLContinue:
        this.#AuthenticationSASLContinue(m);
        return false;
      case AuthCode.SASLFinal:
        this.#AuthenticationSASLFinal(m);
        return false;
      case AuthCode.KerberosV5:
        throw new AuthenticationError(`the server asked for Kerberos V5 authentication, which is not supported: ${UNSUPPORTED}`);
      case AuthCode.GSS:
      case AuthCode.GSSContinue:
        throw new AuthenticationError(`the server asked for GSSAPI authentication, which is not supported: ${UNSUPPORTED}`);
      case AuthCode.SSPI:
        throw new AuthenticationError(`the server asked for SSPI authentication, which is not supported: ${UNSUPPORTED}`);
      default:
        throw new AuthenticationError(`the server asked for an unknown authentication method (code ${m.code})`);
    }
  }

  #AuthenticationOk(): true {
    if (this.#scram !== undefined && !this.#scramDone) {
      throw new AuthenticationError(
        'the server ended SCRAM authentication without proving it knows the password ' + '(no SASLFinal): refusing to trust it',
      );
    }
    if (this.#pump.options.channelBinding === 'require' && !(this.#scramDone && this.#scram?.mechanism === 'SCRAM-SHA-256-PLUS')) {
      throw new AuthenticationError(
        'channel_binding=require, but the server authenticated us without channel ' +
          'binding (trust or another method without SCRAM-SHA-256-PLUS): fix pg_hba.conf or set channel_binding=prefer',
      );
    }
    return true;
  }

  async #AuthenticationCleartextPassword(): Promise<void> {
    this.#checkChannelBindingAllows('cleartext password');
    this.#pump.write(fe.passwordMessage(this.#pump.writer, await this.#password('password')));
  }

  async #AuthenticationMD5Password(m: AuthenticationMessage): Promise<void> {
    this.#checkChannelBindingAllows('MD5 password');
    const pw = await this.#password('md5');
    this.#pump.write(fe.passwordMessage(this.#pump.writer, md5PasswordMessage(this.#pump.options.user, pw, m.salt!)));
  }

  async #AuthenticationSASL(m: AuthenticationMessage): Promise<void> {
    if (this.#scram !== undefined) throw new ProtocolError('the server restarted SASL authentication');
    const tlsSocket = this.#pump.tlsSocket;
    const choice = chooseScramMechanism(m.mechanisms ?? [], tlsSocket !== undefined, this.#pump.options.channelBinding);
    const pw = await this.#password(choice.mechanism);
    let bindingData: Buffer | undefined;
    if (choice.mechanism === 'SCRAM-SHA-256-PLUS') {
      const cert = tlsSocket?.getPeerX509Certificate();
      if (cert === undefined) throw new AuthenticationError('channel binding needs the server certificate, which TLS did not provide');
      bindingData = tlsServerEndPointHash(cert);
    }
    this.#scram = new ScramClient({
      password: pw,
      channelBinding: { ...choice, ...(bindingData !== undefined ? { bindingData } : {}) },
    });
    this.#pump.write(fe.saslInitialResponse(this.#pump.writer, choice.mechanism, this.#scram.clientFirstMessage()));
  }

  #AuthenticationSASLContinue(m: AuthenticationMessage): void {
    if (this.#scram === undefined) throw new ProtocolError('SASLContinue without a SASL exchange');
    this.#pump.write(fe.saslResponse(this.#pump.writer, this.#scram.handleServerFirst((m.data ?? Buffer.alloc(0)).toString('utf8'))));
  }

  #AuthenticationSASLFinal(m: AuthenticationMessage): void {
    if (this.#scram === undefined) throw new ProtocolError('SASLFinal without a SASL exchange');
    this.#scram.verifyServerFinal((m.data ?? Buffer.alloc(0)).toString('utf8'));
    this.#scramDone = true;
  }

  async #password(method: string): Promise<string> {
    const o = this.#pump.options;
    if (o.password !== undefined) {
      this.passwordSource = 'the password given in the options, connection string or PGPASSWORD';
      return o.password;
    }
    const { password, warning } = await lookupPgpass(o.passfile, pgpassKeyFor(o));
    if (this.#pump.closedError) throw this.#pump.closedError;
    if (password !== undefined) {
      this.passwordSource = `the password from "${o.passfile}"`;
      return password;
    }
    throw new AuthenticationError(
      `the server asked for a password (${method} authentication) for ${describeConnection(o)}, but none was given: ` +
        `set PGPASSWORD, add a line for it to the password file "${o.passfile}", or put password=... in the connection string` +
        (warning !== undefined ? ` (WARNING: ${warning})` : ''),
    );
  }

  #checkChannelBindingAllows(method: string): void {
    if (this.#pump.options.channelBinding === 'require') {
      throw new AuthenticationError(
        `channel_binding=require, but the server asked for ${method} authentication, which cannot bind the channel: ` +
          'use a SCRAM-SHA-256 password and a TLS connection, or set channel_binding=prefer',
      );
    }
  }
}

/**
 * After the StartupMessage: authenticate, then read BackendKeyData and ParameterStatus up to the
 * first ReadyForQuery. An ErrorResponse (always FATAL at this stage) becomes a {@link ServerError}
 * with advice for the usual causes.
 */
export async function authenticate(pump: MessagePump): Promise<void> {
  const auth = new Authentication(pump);
  for (;;) {
    const m = await pump.next();
    if (m.type === 'ErrorResponse') throw startupError(pump, m.fields, auth.passwordSource);
    if (m.type === 'NegotiateProtocolVersion') continue;
    if (m.type !== 'Authentication') throw pump.unexpected(m, 'authentication');
    if (await auth.handle(m)) break;
  }
  for (;;) {
    const m = await pump.next();
    switch (m.type) {
      case 'BackendKeyData':
        pump.backendPid = m.processId;
        break;
      case 'NegotiateProtocolVersion':
        // We ask for 3.0 without _pq_ options; a server that still negotiates is told nothing new.
        break;
      case 'ReadyForQuery':
        return;
      case 'ErrorResponse':
        throw startupError(pump, m.fields, auth.passwordSource);
      default:
        throw pump.unexpected(m, 'startup');
    }
  }
}

/** A start-up ErrorResponse, with advice for pg_hba.conf, password, role and slot failures. */
function startupError(pump: MessagePump, fields: ServerMessageFields, passwordSource: string | undefined): ServerError {
  const o = pump.options;
  const text = `${fields.message} ${fields.detail ?? ''}`;
  let advice: string | undefined;
  if (fields.sqlState === '28000' && /pg_hba/i.test(text)) {
    const addr = isUnixSocketHost(o.host) ? 'local   replication' : 'host    replication';
    advice =
      `The server has no pg_hba.conf entry for replication connections from here: add a line like ` +
      `"${addr} ${o.user} ${isUnixSocketHost(o.host) ? '' : '<client address>/32 '}scram-sha-256" ` +
      '(replication lines need the keyword "replication" in the database column) and reload the server.';
  } else if (fields.sqlState === '28P01') {
    advice = `The password was rejected (${passwordSource ?? 'no password source'}): check it for user "${o.user}".`;
  } else if (fields.sqlState === '28000' || fields.sqlState === '42501') {
    if (/replication|WAL sender/i.test(text)) {
      advice = `Give the role the REPLICATION attribute: ALTER ROLE "${o.user.replace(/"/g, '""')}" REPLICATION;`;
    }
  } else if (fields.sqlState === '53300') {
    advice =
      'The server has no free WAL sender or connection slot: raise max_wal_senders (or max_connections) ' +
      'or stop other replication clients.';
  } else if (fields.sqlState === '57P03') {
    advice = 'The server is starting up or shutting down: try again in a moment.';
  }
  return new ServerError(fields, advice);
}
