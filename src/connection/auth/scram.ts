/**
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677), client side, as PostgreSQL
 * speaks it: the user name in client-first is empty (the server takes the startup user),
 * channel binding is `tls-server-end-point` (RFC 5929), and the server's signature is
 * always checked, so a server that does not know the password cannot pretend to.
 *
 * No I/O: the connection feeds the SASL messages in and sends what comes out.
 * @module
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthenticationError } from '../../errors.js';
import type { ChannelBindingMode } from '../types.js';
import { scramPasswordBytes } from './saslprep.js';

/** The SASL mechanisms this client implements. */
export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS';

/** GS2 header when channel binding is used (RFC 5929 `tls-server-end-point`). */
export const GS2_HEADER_BINDING = 'p=tls-server-end-point,,';
/** GS2 header when the client could bind but the server did not offer `-PLUS` (RFC 5802 §6). */
export const GS2_HEADER_CLIENT_SUPPORTS = 'y,,';
/** GS2 header when no channel binding is used. */
export const GS2_HEADER_NONE = 'n,,';

/** What {@link chooseScramMechanism} decided. */
export interface ScramChoice {
  /** The mechanism to name in SASLInitialResponse. */
  mechanism: ScramMechanism;
  /** The GS2 header that starts client-first and is echoed (base64) in `c=`. */
  gs2Header: string;
}

/**
 * Pick a mechanism from an AuthenticationSASL list the way libpq does (`pg_SASL_init`).
 *
 * - `SCRAM-SHA-256-PLUS` when it is offered, TLS is active and `mode` is not `disable`.
 * - Otherwise `SCRAM-SHA-256`, with GS2 header `y,,` when TLS is active and `mode` is not
 *   `disable` (we could bind, the server did not offer it: RFC 5802 downgrade detection),
 *   else `n,,`.
 *
 * @param offered - Mechanism names from AuthenticationSASL, in the server's order.
 * @param tlsActive - Whether the connection is TLS-encrypted.
 * @param mode - The `channel_binding` setting.
 * @throws AuthenticationError when `-PLUS` is offered without TLS (the connection may have
 *   been stripped of TLS by a proxy), when `mode` is `require` and `-PLUS` cannot be used,
 *   or when no offered mechanism is supported.
 *
 * @example
 * ```ts
 * chooseScramMechanism(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], true, 'prefer');
 * // { mechanism: 'SCRAM-SHA-256-PLUS', gs2Header: 'p=tls-server-end-point,,' }
 * ```
 */
export function chooseScramMechanism(offered: readonly string[], tlsActive: boolean, mode: ChannelBindingMode): ScramChoice {
  const plusOffered = offered.includes('SCRAM-SHA-256-PLUS');
  if (plusOffered && !tlsActive) {
    throw new AuthenticationError(
      'the server offered SCRAM-SHA-256-PLUS over a connection that is not TLS-encrypted; ' +
        'something between client and server may be stripping TLS: connect with sslmode=verify-full',
    );
  }
  if (plusOffered && mode !== 'disable') {
    return { mechanism: 'SCRAM-SHA-256-PLUS', gs2Header: GS2_HEADER_BINDING };
  }
  if (mode === 'require') {
    throw new AuthenticationError(
      tlsActive
        ? 'channel_binding=require, but the server did not offer SCRAM-SHA-256-PLUS: ' +
            'the role may have an MD5 password or the server may not support channel binding; ' +
            'set the password again with password_encryption=scram-sha-256, or use channel_binding=prefer'
        : 'channel_binding=require needs a TLS connection: use sslmode=require or stricter, or channel_binding=prefer',
    );
  }
  if (offered.includes('SCRAM-SHA-256')) {
    return {
      mechanism: 'SCRAM-SHA-256',
      gs2Header: tlsActive && mode !== 'disable' ? GS2_HEADER_CLIENT_SUPPORTS : GS2_HEADER_NONE,
    };
  }
  throw new AuthenticationError(
    `none of the server's SASL authentication mechanisms are supported (offered: ${offered.join(', ') || 'none'})`,
  );
}

/** Options of {@link ScramClient}. */
export interface ScramClientOptions {
  /** The password. SASLprep'd like PostgreSQL does (raw bytes if preparation fails). */
  password: string | Buffer;
  /** Mechanism and GS2 header from {@link chooseScramMechanism}, plus the binding data. */
  channelBinding: {
    mechanism: ScramMechanism;
    gs2Header: string;
    /** `tls-server-end-point` data (see `tlsServerEndPointHash`); required for `-PLUS`. */
    bindingData?: Buffer;
  };
  /** Client nonce. For tests only: by default 18 random bytes in base64, as libpq does. */
  nonce?: string;
  /**
   * User name to put in client-first. PostgreSQL ignores it and uses the startup user, so
   * libpq sends it empty. For tests against RFC vectors only.
   * @default ''
   */
  username?: string;
}

/** The sanest upper bound we can put on `i=`: PostgreSQL's `scram_iterations` is an int. */
const MAX_ITERATIONS = 0x7fffffff;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 5802 `printable`: %x21-2B / %x2D-7E (no comma).
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function malformed(what: string): AuthenticationError {
  return new AuthenticationError(`malformed SCRAM message from the server (${what})`);
}

/** RFC 5802 usernames escape ',' and '=' as =2C and =3D. */
function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Read `key=value` attributes in the exact order the SCRAM grammar requires. */
function readAttributes(message: string, keys: readonly string[]): { values: string[]; rest: string[] } {
  const parts = message.split(',');
  const values: string[] = [];
  for (const [index, key] of keys.entries()) {
    const part = parts[index];
    if (part === undefined || !part.startsWith(`${key}=`)) {
      throw malformed(`expected attribute "${key}" at position ${index + 1}`);
    }
    values.push(part.slice(key.length + 1));
  }
  return { values, rest: parts.slice(keys.length) };
}

type Step = 'initial' | 'first-sent' | 'final-sent' | 'done';

/**
 * One SCRAM-SHA-256(-PLUS) exchange.
 *
 * @example
 * ```ts
 * // offered: the AuthenticationSASL list; bindingData: tlsServerEndPointHash(peer certificate) over TLS.
 * const choice = chooseScramMechanism(offered, tlsActive, 'prefer');
 * const scram = new ScramClient({ password, channelBinding: { ...choice, bindingData } });
 * const clientFirst = scram.clientFirstMessage();           // SASLInitialResponse, with choice.mechanism
 * const clientFinal = scram.handleServerFirst(serverFirst); // SASLResponse, after AuthenticationSASLContinue
 * scram.verifyServerFinal(serverFinal);                     // AuthenticationSASLFinal: throws if the server is not genuine
 * ```
 */
export class ScramClient {
  /** The mechanism this exchange uses. */
  readonly mechanism: ScramMechanism;
  readonly #password: string | Buffer;
  readonly #gs2Header: string;
  readonly #bindingData: Buffer | undefined;
  readonly #clientNonce: string;
  readonly #clientFirstBare: string;
  #step: Step = 'initial';
  #expectedServerSignature: Buffer | undefined;

  constructor(options: ScramClientOptions) {
    const { mechanism, gs2Header, bindingData } = options.channelBinding;
    if (mechanism === 'SCRAM-SHA-256-PLUS') {
      if (!gs2Header.startsWith('p=') || bindingData === undefined || bindingData.length === 0) {
        throw new AuthenticationError('SCRAM-SHA-256-PLUS needs a "p=" GS2 header and the channel binding data');
      }
    } else if (gs2Header.startsWith('p=')) {
      throw new AuthenticationError(`a "p=" GS2 header needs SCRAM-SHA-256-PLUS, not ${mechanism}`);
    }
    const nonce = options.nonce ?? randomBytes(18).toString('base64');
    if (!PRINTABLE.test(nonce)) throw new AuthenticationError('the SCRAM client nonce must be printable ASCII without commas');
    this.mechanism = mechanism;
    this.#password = options.password;
    this.#gs2Header = gs2Header;
    this.#bindingData = mechanism === 'SCRAM-SHA-256-PLUS' ? bindingData : undefined;
    this.#clientNonce = nonce;
    this.#clientFirstBare = `n=${saslName(options.username ?? '')},r=${nonce}`;
  }

  /** client-first-message: GS2 header + `n=<user>,r=<client nonce>`. Call once, first. */
  clientFirstMessage(): string {
    this.#expect('initial', 'clientFirstMessage');
    this.#step = 'first-sent';
    return this.#gs2Header + this.#clientFirstBare;
  }

  /**
   * Take server-first-message (the AuthenticationSASLContinue data) and return
   * client-final-message with the proof.
   * @throws AuthenticationError on an `e=` error, a nonce that does not extend ours, a bad
   *   salt or an iteration count outside 1..2147483647.
   */
  handleServerFirst(serverFirst: string): string {
    this.#expect('first-sent', 'handleServerFirst');
    if (serverFirst.startsWith('e=')) {
      throw new AuthenticationError(`the server rejected SCRAM authentication: ${serverFirst.slice(2)}`);
    }
    if (serverFirst.startsWith('m=')) throw malformed('unsupported mandatory extension');
    const { values } = readAttributes(serverFirst, ['r', 's', 'i']);
    const [nonce, saltB64, iterationsText] = values as [string, string, string];
    if (!nonce.startsWith(this.#clientNonce) || nonce.length <= this.#clientNonce.length || !PRINTABLE.test(nonce)) {
      throw new AuthenticationError(
        'the server answered SCRAM with a nonce that does not extend ours (nonce mismatch): ' +
          'the reply does not belong to this authentication exchange',
      );
    }
    if (saltB64.length === 0 || !BASE64.test(saltB64)) throw malformed('invalid salt');
    if (!/^[0-9]{1,10}$/.test(iterationsText)) throw malformed(`invalid iteration count "${iterationsText}"`);
    const iterations = Number(iterationsText);
    if (iterations < 1 || iterations > MAX_ITERATIONS) throw malformed(`invalid iteration count ${iterations}`);

    const salt = Buffer.from(saltB64, 'base64');
    const saltedPassword = pbkdf2Sync(scramPasswordBytes(this.#password), salt, iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const cbind = this.#bindingData
      ? Buffer.concat([Buffer.from(this.#gs2Header, 'ascii'), this.#bindingData])
      : Buffer.from(this.#gs2Header, 'ascii');
    const finalWithoutProof = `c=${cbind.toString('base64')},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${finalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.#expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    this.#step = 'final-sent';
    return `${finalWithoutProof},p=${proof.toString('base64')}`;
  }

  /**
   * Check server-final-message (the AuthenticationSASLFinal data).
   * @throws AuthenticationError on an `e=` error or when `v=` is not the signature a server
   *   knowing the password would produce.
   */
  verifyServerFinal(serverFinal: string): void {
    this.#expect('final-sent', 'verifyServerFinal');
    this.#step = 'done';
    if (serverFinal.startsWith('e=')) {
      const reason = serverFinal.slice(2).split(',')[0] ?? '';
      throw new AuthenticationError(`the server rejected SCRAM authentication: ${reason}`);
    }
    const { values } = readAttributes(serverFinal, ['v']);
    const signatureB64 = values[0]!;
    if (!BASE64.test(signatureB64)) throw malformed('invalid server signature encoding');
    const received = Buffer.from(signatureB64, 'base64');
    const expected = this.#expectedServerSignature!;
    if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
      throw new AuthenticationError(
        'server signature did not verify: the server may not know the password, or something is impersonating it',
      );
    }
  }

  #expect(step: Step, method: string): void {
    if (this.#step !== step) {
      throw new AuthenticationError(`SCRAM exchange out of order: ${method}() called in step "${this.#step}"`);
    }
  }
}
