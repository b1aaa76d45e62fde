/**
 * TLS for PostgreSQL connections, following libpq: which `sslmode` verifies what, where
 * the root certificate, client certificate, key and CRL come from, SNI, the
 * `tls-server-end-point` channel-binding hash (RFC 5929), and error messages that say
 * what to change.
 *
 * The connection layer sends SSLRequest itself, then upgrades its socket with
 * `tls.connect({ ...await buildTlsOptions(opts), socket })`.
 * @module
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type * as tls from 'node:tls';
import { nodeTls } from '../builtins.js';
import { ConfigError, TlsError } from '../errors.js';
import type { ResolvedConnectionOptions, SslMode } from './types.js';

/** Extra inputs of {@link buildTlsOptions}, for tests and embedders. */
export interface BuildTlsOptionsExtra {
  /**
   * Directory holding `.postgresql/` (root.crt, root.crl, postgresql.crt, postgresql.key).
   * @default os.homedir() (which honours HOME, as libpq does)
   */
  homeDir?: string;
}

/** Where libpq looks when the file options are not set (`fe-secure-openssl.c`). */
function defaultFiles(home: string): { rootcert: string; crl: string; cert: string; key: string } {
  const dir = join(home, '.postgresql');
  return {
    rootcert: join(dir, 'root.crt'),
    crl: join(dir, 'root.crl'),
    cert: join(dir, 'postgresql.crt'),
    key: join(dir, 'postgresql.key'),
  };
}

/** libpq's `ssl_min_protocol_version` / `ssl_max_protocol_version` spelling → Node's. */
function tlsVersion(value: string | undefined): tls.SecureVersion | undefined {
  switch (value?.toLowerCase()) {
    case 'tlsv1':
      return 'TLSv1';
    case 'tlsv1.1':
      return 'TLSv1.1';
    case 'tlsv1.2':
      return 'TLSv1.2';
    case 'tlsv1.3':
      return 'TLSv1.3';
    default:
      return undefined;
  }
}

/**
 * The operating system's trusted CAs (what OpenSSL's default verify paths give libpq for
 * `sslrootcert=system`) where Node can list them (`tls.getCACertificates('system')`,
 * Node 22.15+/23.5+); `undefined` otherwise, which leaves Node's bundled Mozilla roots.
 */
function systemCaCertificates(): string[] | undefined {
  const get = (nodeTls() as unknown as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  if (typeof get !== 'function') return undefined;
  try {
    const certs = get('system');
    return certs.length > 0 ? certs : undefined;
  } catch {
    return undefined;
  }
}

/** True when `host` names a Unix-socket directory (absolute path or abstract `@name`), not a TCP host. */
function isSocketHost(host: string): boolean {
  return host.startsWith('/') || host.startsWith('@');
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new TlsError(`could not stat "${path}": ${(err as Error).message}`, { cause: err });
  }
}

async function readTlsFile(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new TlsError(`could not read ${what} "${path}": ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The sslmode actually in force. `sslrootcert=system` (PostgreSQL 16 libpq) makes
 * `verify-full` the default and refuses anything weaker set explicitly, because trusting
 * every public CA without checking the host name would accept any certificate bought for
 * any domain.
 */
export function effectiveSslMode(opts: Pick<ResolvedConnectionOptions, 'sslmode' | 'sslrootcert' | 'params'>): SslMode {
  if (opts.sslrootcert !== 'system' || opts.sslmode === 'verify-full') return opts.sslmode;
  if (opts.params.sslmode !== undefined) {
    throw new ConfigError(`sslmode=${opts.sslmode} may not be used with sslrootcert=system: use sslmode=verify-full (libpq's rule)`);
  }
  return 'verify-full';
}

/**
 * Check the server certificate against `host` the way libpq's verify-full does: Node's
 * RFC 6125 check, plus libpq's leniency for IP-address hosts, which also match a dNSName
 * SAN spelled as that address, or the CN when the certificate has no iPAddress SAN
 * (`pq_verify_peer_name_matches_certificate`, PostgreSQL 14+).
 * @returns undefined when the name matches, else a TlsError naming both names.
 */
export function checkServerName(host: string, cert: tls.PeerCertificate): TlsError | undefined {
  const nodeError = nodeTls().checkServerIdentity(host, cert);
  if (nodeError === undefined) return undefined;
  const sans = (cert.subjectaltname ?? '').split(', ').filter((s) => s.length > 0);
  if (isIP(host) !== 0) {
    const lower = host.toLowerCase();
    if (sans.some((s) => s.toLowerCase() === `dns:${lower}`)) return undefined;
    const hasIpSan = sans.some((s) => s.startsWith('IP Address:'));
    const cn = cert.subject?.CN;
    if (!hasIpSan && typeof cn === 'string' && cn.toLowerCase() === lower) return undefined;
  }
  const names = sans.length > 0 ? sans.join(', ') : `CN=${String(cert.subject?.CN ?? '(none)')}`;
  const error = new TlsError(
    `server certificate for ${names} does not match host name "${host}" (sslmode=verify-full): ` +
      'connect with a host name the certificate lists, or reissue the certificate with this name in its subjectAltName',
    { cause: nodeError },
  );
  return error;
}

/**
 * Node `tls.connect` options for a PostgreSQL connection, following libpq.
 *
 * - `disable`: not called (no SSLRequest is sent).
 * - `allow`, `prefer`, `require`: encrypt without verifying, unless the root certificate
 *   file exists (`sslrootcert`, default `~/.postgresql/root.crt`): then the chain is
 *   verified as with `verify-ca`. libpq has always done this, for compatibility.
 * - `verify-ca`: the chain must lead to a CA in the root certificate file, which must exist;
 *   any host name is accepted.
 * - `verify-full`: as `verify-ca`, plus the host name must match the certificate
 *   ({@link checkServerName}).
 * - `sslrootcert=system`: the operating system's CAs where Node can list them (22.15+),
 *   else Node's bundled Mozilla roots, with `verify-full`.
 *
 * SNI is sent for host names, never for IP addresses or socket directories (RFC 6066),
 * unless `sslsni=0`. `ssl_min_protocol_version` (default TLSv1.2) and
 * `ssl_max_protocol_version` are read from `opts.params`; `sslcertmode=disable` there
 * means no client certificate at all.
 * ALPN `postgresql` is offered as libpq 17 does; older servers ignore it. A client
 * certificate is used when `sslcert` (default `~/.postgresql/postgresql.crt`) exists; its
 * key (`sslkey`, default `~/.postgresql/postgresql.key`) must then exist and not be
 * readable by group or others. `sslcrl` (default `~/.postgresql/root.crl`) is used when a
 * root certificate is loaded and the file exists; a missing CRL is ignored, as in libpq.
 *
 * @throws TlsError when a file that must exist does not, a key file is too open, or the
 *   key cannot be decrypted with `sslpassword`.
 * @throws ConfigError for `sslkey` given as an OpenSSL `engine:key` or a weak sslmode with
 *   `sslrootcert=system`.
 *
 * @example
 * ```ts
 * const options = await buildTlsOptions(resolved);
 * const secure = tls.connect({ ...options, socket });
 * ```
 */
export async function buildTlsOptions(opts: ResolvedConnectionOptions, extra: BuildTlsOptionsExtra = {}): Promise<tls.ConnectionOptions> {
  const mode = effectiveSslMode(opts);
  const home = extra.homeDir ?? homedir();
  const defaults = defaultFiles(home);
  const host = opts.host;
  const result: tls.ConnectionOptions = {
    // libpq's default ssl_min_protocol_version is TLSv1.2.
    minVersion: tlsVersion(opts.params.ssl_min_protocol_version) ?? 'TLSv1.2',
    ALPNProtocols: ['postgresql'],
  };
  const maxVersion = tlsVersion(opts.params.ssl_max_protocol_version);
  if (maxVersion !== undefined) result.maxVersion = maxVersion;
  // sslsni=0 turns SNI off (libpq 14+); RFC 6066 forbids it for IP literals.
  if (opts.params.sslsni !== '0' && host.length > 0 && !isSocketHost(host) && isIP(host) === 0) result.servername = host;

  let verify: 'none' | 'chain' | 'full';
  if (opts.sslrootcert === 'system') {
    verify = 'full';
    const system = systemCaCertificates();
    if (system !== undefined) result.ca = system;
  } else {
    const rootcert = opts.sslrootcert !== undefined && opts.sslrootcert !== '' ? opts.sslrootcert : defaults.rootcert;
    const rootStat = await statOrUndefined(rootcert);
    if (rootStat === undefined) {
      if (mode === 'verify-ca' || mode === 'verify-full') {
        throw new TlsError(
          `root certificate file "${rootcert}" does not exist: sslmode=${mode} needs the CA that signed the server ` +
            'certificate; supply it with sslrootcert (or PGSSLROOTCERT), use sslrootcert=system for a public CA, ' +
            'or use sslmode=require to encrypt without verifying the server',
        );
      }
      verify = 'none';
    } else {
      result.ca = await readTlsFile(rootcert, 'root certificate file');
      verify = mode === 'verify-full' ? 'full' : 'chain';
      const crlPath = opts.sslcrl !== undefined && opts.sslcrl !== '' ? opts.sslcrl : defaults.crl;
      if ((await statOrUndefined(crlPath)) !== undefined) result.crl = await readTlsFile(crlPath, 'certificate revocation list');
    }
  }

  if (verify === 'none') {
    result.rejectUnauthorized = false;
  } else {
    result.rejectUnauthorized = true;
    if (verify === 'full') {
      if (host.length === 0 || isSocketHost(host)) {
        throw new TlsError('a host name must be specified for sslmode=verify-full: set host to the name in the server certificate');
      }
      // Bind the host here: with a pre-connected socket Node would otherwise check the
      // certificate against `servername`, which is absent for IP addresses.
      result.checkServerIdentity = (_name, cert) => checkServerName(host, cert);
    } else {
      result.checkServerIdentity = () => undefined;
    }
  }

  const certPath = opts.sslcert !== undefined && opts.sslcert !== '' ? opts.sslcert : defaults.cert;
  // sslcertmode=disable: never send a client certificate, not even the default one.
  if (opts.params.sslcertmode !== 'disable' && (await statOrUndefined(certPath)) !== undefined) {
    result.cert = await readTlsFile(certPath, 'client certificate file');
    const keyPath = opts.sslkey !== undefined && opts.sslkey !== '' ? opts.sslkey : defaults.key;
    if (opts.sslkey?.includes(':')) {
      throw new ConfigError(`sslkey "${opts.sslkey}" looks like an OpenSSL engine reference, which is not supported: give a key file path`);
    }
    const keyStat = await statOrUndefined(keyPath);
    if (keyStat === undefined) throw new TlsError(`certificate present, but not private key file "${keyPath}": set sslkey`);
    if (!keyStat.isFile()) throw new TlsError(`private key file "${keyPath}" is not a regular file`);
    // libpq refuses keys others can read: 0600 or less, or 0640 or less when owned by root.
    const loose = keyStat.uid === 0 ? keyStat.mode & 0o037 : keyStat.mode & 0o077;
    if (process.platform !== 'win32' && loose !== 0) {
      throw new TlsError(
        `private key file "${keyPath}" has group or world access; file must have permissions u=rw (0600) or less ` +
          'if owned by the current user, or u=rw,g=r (0640) or less if owned by root: run chmod 600 on it',
      );
    }
    const key = await readTlsFile(keyPath, 'private key file');
    try {
      createPrivateKey(opts.sslpassword !== undefined ? { key, passphrase: opts.sslpassword } : { key });
    } catch (err) {
      throw new TlsError(
        `could not load private key file "${keyPath}": ${(err as Error).message}` +
          (opts.sslpassword === undefined ? ' (if the key is encrypted, give its passphrase with sslpassword)' : ''),
        { cause: err },
      );
    }
    result.key = key;
    if (opts.sslpassword !== undefined) result.passphrase = opts.sslpassword;
  }
  return result;
}

// --- tls-server-end-point (RFC 5929 §4.1) ------------------------------------------------

interface Tlv {
  tag: number;
  /** Offset of the contents. */
  start: number;
  /** Offset just past the contents. */
  end: number;
}

function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new TlsError('server certificate is not valid DER (truncated)');
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) throw new TlsError('server certificate is not valid DER (bad length)');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new TlsError('server certificate is not valid DER (length past the end)');
  return { tag, start, end };
}

function decodeOid(bytes: Buffer): string {
  const parts: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

const SEQUENCE = 0x30;
const OBJECT_IDENTIFIER = 0x06;
const RSASSA_PSS = '1.2.840.113549.1.1.10';

/** Signature algorithm OID → its hash, for the algorithms certificates use. */
const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha1', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha1', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224', // dsa-with-sha224
  '2.16.840.1.101.3.4.3.2': 'sha256', // dsa-with-sha256
};

/** Digest AlgorithmIdentifier OIDs (RSASSA-PSS parameters). */
const DIGEST: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/**
 * The hash named by a DER certificate's outer `signatureAlgorithm`, read with a small
 * ASN.1 walk (Node 20 does not expose it): `Certificate ::= SEQUENCE { tbsCertificate,
 * signatureAlgorithm AlgorithmIdentifier, signatureValue }`.
 * @returns The Node hash name (`sha256`, ...) and the algorithm OID.
 * @throws TlsError for malformed DER or a signature algorithm without a known hash (Ed25519...).
 */
export function certificateSignatureHash(der: Buffer): { hash: string; oid: string } {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== SEQUENCE) throw new TlsError('server certificate is not valid DER (no outer SEQUENCE)');
  const tbs = readTlv(der, cert.start, cert.end);
  const algorithm = readTlv(der, tbs.end, cert.end);
  if (algorithm.tag !== SEQUENCE) throw new TlsError('server certificate is not valid DER (no signatureAlgorithm)');
  const oidTlv = readTlv(der, algorithm.start, algorithm.end);
  if (oidTlv.tag !== OBJECT_IDENTIFIER) throw new TlsError('server certificate is not valid DER (signatureAlgorithm has no OID)');
  const oid = decodeOid(der.subarray(oidTlv.start, oidTlv.end));
  if (oid === RSASSA_PSS) {
    // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] EXPLICIT AlgorithmIdentifier DEFAULT sha1, ... }
    let hash = 'sha1';
    if (oidTlv.end < algorithm.end) {
      const params = readTlv(der, oidTlv.end, algorithm.end);
      if (params.tag === SEQUENCE && params.start < params.end) {
        const first = readTlv(der, params.start, params.end);
        if (first.tag === 0xa0) {
          const hashAlg = readTlv(der, first.start, first.end);
          const hashOid = readTlv(der, hashAlg.start, hashAlg.end);
          const name = DIGEST[decodeOid(der.subarray(hashOid.start, hashOid.end))];
          if (name === undefined) throw new TlsError('server certificate uses RSASSA-PSS with an unknown hash');
          hash = name;
        }
      }
    }
    return { hash, oid };
  }
  const hash = SIGNATURE_HASH[oid];
  if (hash === undefined) {
    throw new TlsError(
      `cannot compute channel binding data for a server certificate signed with algorithm ${oid} ` +
        '(RFC 5929 defines it only for signatures with a hash): use channel_binding=disable',
    );
  }
  return { hash, oid };
}

/**
 * RFC 5929 `tls-server-end-point` channel-binding data: the hash of the server
 * certificate's DER, with the certificate's signature hash, except that MD5 and SHA-1
 * become SHA-256 (RFC 5929 §4.1). Feed it to `ScramClient` as `bindingData`.
 *
 * @param cert - The peer certificate: an `X509Certificate` (e.g. `socket.getPeerX509Certificate()`) or its DER.
 *
 * @example
 * ```ts
 * const bindingData = tlsServerEndPointHash(secureSocket.getPeerCertificate().raw);
 * ```
 */
export function tlsServerEndPointHash(cert: X509Certificate | Buffer): Buffer {
  const der = cert instanceof X509Certificate ? cert.raw : cert;
  const { hash } = certificateSignatureHash(der);
  const algorithm = hash === 'md5' || hash === 'sha1' ? 'sha256' : hash;
  return createHash(algorithm).update(der).digest();
}

// --- errors ---------------------------------------------------------------------------

/**
 * Pass as `err` to {@link describeTlsError} when the server answered SSLRequest with 'N'
 * and the sslmode does not allow going on without TLS.
 */
export const SSL_REFUSED = Symbol('pgbb.sslRefused');

const UNKNOWN_CA_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

function rootCertDescription(opts: ResolvedConnectionOptions): string {
  if (opts.sslrootcert === 'system') return 'the trusted root CAs (sslrootcert=system)';
  const path = opts.sslrootcert !== undefined && opts.sslrootcert !== '' ? opts.sslrootcert : defaultFiles(homedir()).rootcert;
  return `"${path}"`;
}

/**
 * Turn a TLS failure into a {@link TlsError} whose message says what to change.
 *
 * - `SSL_REFUSED`: the server does not accept SSL connections while sslmode requires one.
 * - An unknown CA: "the server certificate is not signed by a CA in <sslrootcert>".
 * - A host-name mismatch (from {@link checkServerName}): names both names.
 * - Expired, not yet valid, revoked certificates; the server closing during the handshake.
 * - A TlsError passes through unchanged; anything else is wrapped with its message.
 *
 * @param err - What `tls.connect` emitted (or {@link SSL_REFUSED}).
 * @param opts - The options used, to name the files and modes in the advice.
 */
export function describeTlsError(err: unknown, opts: ResolvedConnectionOptions): TlsError {
  if (err instanceof TlsError) return err;
  if (err === SSL_REFUSED) {
    return new TlsError(
      `the server does not accept SSL connections, but sslmode=${opts.sslmode} requires one: ` +
        'enable ssl in the server configuration, or use sslmode=prefer to connect without encryption',
    );
  }
  const e = err as (Error & { code?: unknown }) | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const detail = e instanceof Error ? e.message : String(err);
  if (code !== undefined && UNKNOWN_CA_CODES.has(code)) {
    return new TlsError(
      `the server certificate is not signed by a CA in ${rootCertDescription(opts)} (${code}): ` +
        'set sslrootcert to the CA that signed it, or use sslmode=require to encrypt without verifying',
      { cause: err },
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new TlsError(`server certificate does not match host name "${opts.host}": ${detail}`, { cause: err });
  }
  if (code === 'CERT_HAS_EXPIRED') {
    return new TlsError('the server certificate has expired: renew it on the server', { cause: err });
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return new TlsError('the server certificate is not valid yet: check the clocks of client and server', { cause: err });
  }
  if (code === 'CERT_REVOKED') {
    return new TlsError(`the server certificate is revoked by the CRL${opts.sslcrl ? ` "${opts.sslcrl}"` : ''}`, { cause: err });
  }
  if (code === 'UNABLE_TO_GET_CRL') {
    return new TlsError(
      `no certificate revocation list for the server certificate's issuer in ${opts.sslcrl ? `"${opts.sslcrl}"` : 'the CRL file'}: ` +
        'supply the CRL of every CA in the chain, or unset sslcrl',
      { cause: err },
    );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket disconnected|socket hang up/i.test(detail)) {
    return new TlsError(
      `the server closed the connection during the TLS handshake (${detail}): ` +
        'see the server log; it may require a client certificate (sslcert/sslkey) or a newer TLS version',
      { cause: err },
    );
  }
  return new TlsError(`TLS negotiation failed: ${detail}`, { cause: err });
}
