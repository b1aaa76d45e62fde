// TLS building blocks, checked against certificates made by the openssl CLI at test time,
// and against a local Node TLS server for the verification paths.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsError } from '../../../src/errors.js';
import {
  buildTlsOptions,
  certificateSignatureHash,
  checkServerName,
  describeTlsError,
  SSL_REFUSED,
  tlsServerEndPointHash,
} from '../../../src/connection/tls.js';
import type { ResolvedConnectionOptions } from '../../../src/connection/types.js';
import { resolvedOptions } from './helpers.js';

let dir: string;
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
const path = (name: string) => join(dir, name);
const der = (name: string) => new X509Certificate(readFileSync(path(name))).raw;

const resolved = (overrides: Partial<ResolvedConnectionOptions> = {}): ResolvedConnectionOptions =>
  resolvedOptions('u', '/nonexistent/.pgpass', overrides);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgbb-tls-'));
  ssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'rsa.key');
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ec.key');
  ssl('genpkey', '-algorithm', 'ED25519', '-out', 'ed.key');
  const selfSigned = (key: string, out: string, ...extra: string[]) =>
    ssl('req', '-x509', '-new', '-key', key, '-subj', '/CN=test', '-days', '2', ...extra, '-out', out);
  selfSigned('rsa.key', 'rsa-sha256.crt', '-sha256');
  selfSigned('rsa.key', 'rsa-sha1.crt', '-sha1');
  selfSigned('rsa.key', 'rsa-md5.crt', '-md5');
  selfSigned('ec.key', 'ec-sha384.crt', '-sha384');
  selfSigned('rsa.key', 'rsa-pss-sha512.crt', '-sha512', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32');
  selfSigned('ed.key', 'ed25519.crt');

  // A CA, a server certificate for DNS:localhost signed by it, and an unrelated CA.
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key');
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other.key');
  ssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=unit CA', '-days', '2', ...caExt, '-out', 'ca.crt');
  ssl('req', '-x509', '-new', '-key', 'other.key', '-subj', '/CN=other CA', '-days', '2', ...caExt, '-out', 'other.crt');
  ssl('req', '-new', '-key', 'ec.key', '-subj', '/CN=localhost', '-out', 'server.csr');
  writeFileSync(path('server.ext'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'server.ext',
    '-out',
    'server.crt',
  );
  // An encrypted client key.
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes256', '-pass', 'pass:hunter2', '-out', 'client-enc.key');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('tlsServerEndPointHash (RFC 5929)', () => {
  it.each([
    ['rsa-sha256.crt', 'sha256', '1.2.840.113549.1.1.11'],
    ['ec-sha384.crt', 'sha384', '1.2.840.10045.4.3.3'],
    ['rsa-pss-sha512.crt', 'sha512', '1.2.840.113549.1.1.10'],
  ])('hashes %s with its signature hash %s', (file, hash, oid) => {
    const raw = der(file);
    expect(certificateSignatureHash(raw)).toEqual({ hash, oid });
    expect(tlsServerEndPointHash(raw)).toEqual(createHash(hash).update(raw).digest());
    expect(tlsServerEndPointHash(new X509Certificate(raw))).toEqual(createHash(hash).update(raw).digest());
  });

  it.each([
    ['rsa-sha1.crt', 'sha1'],
    ['rsa-md5.crt', 'md5'],
  ])('uses SHA-256 for %s, signed with %s', (file, hash) => {
    const raw = der(file);
    expect(certificateSignatureHash(raw).hash).toBe(hash);
    expect(tlsServerEndPointHash(raw)).toEqual(createHash('sha256').update(raw).digest());
  });

  it('refuses a signature without a hash (Ed25519) with advice', () => {
    expect(() => tlsServerEndPointHash(der('ed25519.crt'))).toThrow(/1\.3\.101\.112.*channel_binding=disable/);
  });

  it('refuses truncated or non-certificate DER', () => {
    const raw = der('rsa-sha256.crt');
    expect(() => tlsServerEndPointHash(raw.subarray(0, raw.length - 300))).toThrow(expect.objectContaining({ code: 'ERR_PGBB_TLS' }));
    expect(() => tlsServerEndPointHash(Buffer.from([0x02, 0x01, 0x00]))).toThrow(expect.objectContaining({ code: 'ERR_PGBB_TLS' }));
    expect(() => tlsServerEndPointHash(Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'ERR_PGBB_TLS' }));
  });
});

describe('buildTlsOptions', () => {
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'pgbb-home-'));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('encrypts without verification for prefer/require when there is no root certificate', async () => {
    for (const sslmode of ['allow', 'prefer', 'require'] as const) {
      const o = await buildTlsOptions(resolved({ sslmode }), { homeDir: home });
      expect(o.rejectUnauthorized).toBe(false);
      expect(o.ca).toBeUndefined();
      expect(o.minVersion).toBe('TLSv1.2');
      expect(o.ALPNProtocols).toEqual(['postgresql']);
    }
  });

  it('verifies the chain for require when ~/.postgresql/root.crt exists (libpq compatibility rule)', async () => {
    const h = mkdtempSync(join(tmpdir(), 'pgbb-home-'));
    mkdirSync(join(h, '.postgresql'));
    writeFileSync(join(h, '.postgresql', 'root.crt'), readFileSync(path('ca.crt')));
    try {
      const o = await buildTlsOptions(resolved({ sslmode: 'require', host: 'elsewhere.example' }), { homeDir: h });
      expect(o.rejectUnauthorized).toBe(true);
      expect(o.ca).toEqual(readFileSync(path('ca.crt')));
      // verify-ca semantics: any host name.
      expect(o.checkServerIdentity?.('elsewhere.example', peer('server.crt'))).toBeUndefined();
    } finally {
      rmSync(h, { recursive: true, force: true });
    }
  });

  it('fails verify-ca and verify-full without a root certificate, saying to supply sslrootcert', async () => {
    for (const sslmode of ['verify-ca', 'verify-full'] as const) {
      const err = await buildTlsOptions(resolved({ sslmode }), { homeDir: home }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_PGBB_TLS' });
      expect((err as TlsError).message).toContain(join(home, '.postgresql', 'root.crt'));
      expect((err as TlsError).message).toContain('sslrootcert');
    }
  });

  it('verify-ca accepts any host name; verify-full checks the connected host, even an IP without SNI', async () => {
    const ca = await buildTlsOptions(resolved({ sslmode: 'verify-ca', sslrootcert: path('ca.crt'), host: '127.0.0.1' }));
    expect(ca.rejectUnauthorized).toBe(true);
    expect(ca.checkServerIdentity?.('localhost', peer('server.crt'))).toBeUndefined();

    const full = await buildTlsOptions(resolved({ sslmode: 'verify-full', sslrootcert: path('ca.crt'), host: '127.0.0.1' }));
    expect(full.servername).toBeUndefined();
    // Node passes 'localhost' when no servername is set: the check must still use 127.0.0.1.
    const err = full.checkServerIdentity?.('localhost', peer('server.crt'));
    expect(err).toMatchObject({ code: 'ERR_PGBB_TLS' });
    expect(err?.message).toMatch(/DNS:localhost.*does not match host name "127\.0\.0\.1"/);

    const ok = await buildTlsOptions(resolved({ sslmode: 'verify-full', sslrootcert: path('ca.crt'), host: 'localhost' }));
    expect(ok.servername).toBe('localhost');
    expect(ok.checkServerIdentity?.('localhost', peer('server.crt'))).toBeUndefined();
  });

  it('sends SNI for host names only', async () => {
    const sni = async (host: string) => (await buildTlsOptions(resolved({ host }), { homeDir: home })).servername;
    expect(await sni('db.example.com')).toBe('db.example.com');
    expect(await sni('10.0.0.1')).toBeUndefined();
    expect(await sni('::1')).toBeUndefined();
    expect(await sni('/var/run/postgresql')).toBeUndefined();
  });

  it('honours sslsni=0, ssl_min/max_protocol_version and sslcertmode=disable from params', async () => {
    const o = await buildTlsOptions(
      resolved({
        host: 'db.example.com',
        sslcert: path('ec-sha384.crt'),
        params: { sslsni: '0', ssl_min_protocol_version: 'TLSv1.3', ssl_max_protocol_version: 'tlsv1.3', sslcertmode: 'disable' },
      }),
      { homeDir: home },
    );
    expect(o.servername).toBeUndefined();
    expect(o.minVersion).toBe('TLSv1.3');
    expect(o.maxVersion).toBe('TLSv1.3');
    expect(o.cert).toBeUndefined();
  });

  it('refuses verify-full on a socket directory', async () => {
    await expect(buildTlsOptions(resolved({ sslmode: 'verify-full', sslrootcert: path('ca.crt'), host: '/tmp' }))).rejects.toThrow(
      /host name must be specified/,
    );
  });

  it('uses the trusted roots with verify-full for sslrootcert=system, and refuses a weaker explicit sslmode', async () => {
    const o = await buildTlsOptions(resolved({ sslmode: 'prefer', sslrootcert: 'system', host: 'db.example.com' }));
    // Node 22.15+ lists the system store; older Node leaves its bundled roots (ca unset). Never our own files.
    if (o.ca !== undefined) expect(Array.isArray(o.ca) && o.ca.length > 0).toBe(true);
    expect(o.rejectUnauthorized).toBe(true);
    expect(o.checkServerIdentity?.('x', peer('server.crt'))).toMatchObject({ code: 'ERR_PGBB_TLS' });
    await expect(
      buildTlsOptions(resolved({ sslmode: 'require', sslrootcert: 'system', params: { sslmode: 'require' } })),
    ).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG' });
  });

  it('loads a CRL only alongside a root certificate, ignoring a missing one', async () => {
    writeFileSync(path('crl.pem'), '-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n');
    const o = await buildTlsOptions(resolved({ sslmode: 'verify-ca', sslrootcert: path('ca.crt'), sslcrl: path('crl.pem') }));
    expect(o.crl).toEqual(readFileSync(path('crl.pem')));
    const missing = await buildTlsOptions(resolved({ sslmode: 'verify-ca', sslrootcert: path('ca.crt'), sslcrl: path('nope.pem') }));
    expect(missing.crl).toBeUndefined();
    const noRoot = await buildTlsOptions(resolved({ sslmode: 'require', sslcrl: path('crl.pem') }), { homeDir: home });
    expect(noRoot.crl).toBeUndefined();
  });

  describe('client certificate', () => {
    it('is used when sslcert exists, with its key', async () => {
      writeFileSync(path('client.key'), readFileSync(path('ec.key')));
      chmodSync(path('client.key'), 0o600);
      const o = await buildTlsOptions(resolved({ sslcert: path('ec-sha384.crt'), sslkey: path('client.key') }), { homeDir: home });
      expect(o.cert).toEqual(readFileSync(path('ec-sha384.crt')));
      expect(o.key).toEqual(readFileSync(path('client.key')));
    });

    it('is skipped when the default ~/.postgresql/postgresql.crt does not exist', async () => {
      const o = await buildTlsOptions(resolved(), { homeDir: home });
      expect(o.cert).toBeUndefined();
      expect(o.key).toBeUndefined();
    });

    it('needs the key file', async () => {
      await expect(
        buildTlsOptions(resolved({ sslcert: path('ec-sha384.crt'), sslkey: path('missing.key') }), { homeDir: home }),
      ).rejects.toThrow(/certificate present, but not private key file/);
    });

    it('refuses a key readable by others', async () => {
      writeFileSync(path('open.key'), readFileSync(path('ec.key')));
      chmodSync(path('open.key'), 0o644);
      await expect(
        buildTlsOptions(resolved({ sslcert: path('ec-sha384.crt'), sslkey: path('open.key') }), { homeDir: home }),
      ).rejects.toThrow(/has group or world access.*chmod 600/);
    });

    it('decrypts an encrypted key with sslpassword, and explains a wrong one', async () => {
      chmodSync(path('client-enc.key'), 0o600);
      const base = { sslcert: path('ec-sha384.crt'), sslkey: path('client-enc.key') };
      const o = await buildTlsOptions(resolved({ ...base, sslpassword: 'hunter2' }), { homeDir: home });
      expect(o.passphrase).toBe('hunter2');
      const wrong = await buildTlsOptions(resolved({ ...base, sslpassword: 'nope' }), { homeDir: home }).catch((e: unknown) => e);
      expect(wrong).toMatchObject({ code: 'ERR_PGBB_TLS' });
      expect((wrong as Error).message).not.toContain('nope');
      await expect(buildTlsOptions(resolved(base), { homeDir: home })).rejects.toThrow(/give its passphrase with sslpassword/);
    });

    it('refuses an engine:key reference', async () => {
      await expect(
        buildTlsOptions(resolved({ sslcert: path('ec-sha384.crt'), sslkey: 'pkcs11:id=1' }), { homeDir: home }),
      ).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG' });
    });
  });
});

describe('checkServerName (libpq verify-full rules)', () => {
  it('matches DNS SANs and rejects other names, naming both', () => {
    expect(checkServerName('localhost', peer('server.crt'))).toBeUndefined();
    const err = checkServerName('db.example.com', peer('server.crt'));
    expect(err?.message).toContain('DNS:localhost');
    expect(err?.message).toContain('"db.example.com"');
  });

  it('lets an IP host match a dNSName SAN spelled as the address, or the CN when there is no IP SAN', () => {
    const cert = { subject: { CN: 'x' }, subjectaltname: 'DNS:10.1.2.3' } as unknown as tls.PeerCertificate;
    expect(checkServerName('10.1.2.3', cert)).toBeUndefined();
    const cnOnly = { subject: { CN: '10.1.2.3' } } as unknown as tls.PeerCertificate;
    expect(checkServerName('10.1.2.3', cnOnly)).toBeUndefined();
    const withIp = { subject: { CN: '10.1.2.3' }, subjectaltname: 'IP Address:10.9.9.9' } as unknown as tls.PeerCertificate;
    expect(checkServerName('10.1.2.3', withIp)).toMatchObject({ code: 'ERR_PGBB_TLS' });
  });
});

describe('handshakes against a local TLS server', () => {
  let server: tls.Server;
  let port: number;
  beforeAll(async () => {
    server = tls.createServer({ cert: readFileSync(path('server.crt')), key: readFileSync(path('ec.key')) }, (s) => s.end());
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function handshake(opts: ResolvedConnectionOptions): Promise<tls.TLSSocket> {
    const options = await buildTlsOptions(opts);
    const socket = netConnect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return await new Promise<tls.TLSSocket>((resolve, reject) => {
      const secure = tls.connect({ ...options, socket });
      secure.once('secureConnect', () => resolve(secure));
      secure.once('error', (err) => {
        socket.destroy();
        reject(describeTlsError(err, opts));
      });
    });
  }

  it('verify-full to localhost with the right CA succeeds, and the binding hash matches the certificate', async () => {
    const s = await handshake(resolved({ sslmode: 'verify-full', sslrootcert: path('ca.crt'), host: 'localhost' }));
    expect(s.authorized).toBe(true);
    expect(tlsServerEndPointHash(s.getPeerCertificate().raw)).toEqual(createHash('sha256').update(der('server.crt')).digest());
    s.destroy();
  });

  it('verify-full to 127.0.0.1 fails on the host name', async () => {
    await expect(handshake(resolved({ sslmode: 'verify-full', sslrootcert: path('ca.crt'), host: '127.0.0.1' }))).rejects.toThrow(
      /server certificate for DNS:localhost does not match host name "127\.0\.0\.1"/,
    );
  });

  it('verify-ca to 127.0.0.1 succeeds', async () => {
    const s = await handshake(resolved({ sslmode: 'verify-ca', sslrootcert: path('ca.crt'), host: '127.0.0.1' }));
    expect(s.authorized).toBe(true);
    s.destroy();
  });

  it('an unrelated CA fails, naming the root certificate file', async () => {
    const err = await handshake(resolved({ sslmode: 'verify-ca', sslrootcert: path('other.crt') })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_TLS' });
    expect((err as Error).message).toContain(`the server certificate is not signed by a CA in "${path('other.crt')}"`);
  });

  it('require without a root certificate encrypts without verifying', async () => {
    const home = mkdtempSync(join(tmpdir(), 'pgbb-home-'));
    try {
      const options = await buildTlsOptions(resolved({ sslmode: 'require' }), { homeDir: home });
      const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const secure = tls.connect({ ...options, host: '127.0.0.1', port });
        secure.once('secureConnect', () => resolve(secure)).once('error', reject);
      });
      expect(s.encrypted).toBe(true);
      expect(s.authorized).toBe(false);
      s.destroy();
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('describeTlsError', () => {
  it('explains a server that refuses SSL', () => {
    const err = describeTlsError(SSL_REFUSED, resolved({ sslmode: 'require' }));
    expect(err).toMatchObject({ code: 'ERR_PGBB_TLS' });
    expect(err.code).toBe('ERR_PGBB_TLS');
    expect(err.message).toMatch(/does not accept SSL connections, but sslmode=require requires one/);
  });

  it('maps certificate errors to advice and keeps the cause', () => {
    const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' });
    const e = describeTlsError(expired, resolved());
    expect(e.message).toMatch(/expired/);
    expect(e.cause).toBe(expired);
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(describeTlsError(reset, resolved()).message).toMatch(/closed the connection during the TLS handshake/);
    expect(describeTlsError(new Error('weird'), resolved()).message).toBe('TLS negotiation failed: weird');
  });

  it('passes a TlsError through', () => {
    const original = new TlsError('x');
    expect(describeTlsError(original, resolved())).toBe(original);
  });
});

function peer(file: string): tls.PeerCertificate {
  const x = new X509Certificate(readFileSync(path(file)));
  const cn = /CN=([^\n,]+)/.exec(x.subject)?.[1];
  return { subject: { CN: cn }, subjectaltname: x.subjectAltName } as unknown as tls.PeerCertificate;
}
