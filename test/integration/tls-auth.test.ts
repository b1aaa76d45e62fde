// Authentication and TLS against real servers: every authentication method on every
// major from testMajors(); the sslmode/certificate matrix on the newest and the oldest
// of them (TLS behaviour is the client's and OpenSSL's, not the major's).
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicationConnection } from '../../src/connection/connection.js';
import type { ConnectionOptions } from '../../src/connection/types.js';
import { PgBackupError } from '../../src/errors.js';
import { tlsServerEndPointHash } from '../../src/connection/tls.js';
import { chownToServer, makeTempDir, ROLES, startCluster, testMajors, type Cluster } from '../harness/index.js';

const majors = testMajors();
/** Roles made by the SASLprep tests, with their own pg_hba.conf lines (the harness lists its roles one by one). */
const UNICODE_ROLES = { scram: 'pgbb_unicode_scram', md5: 'pgbb_unicode_md5' } as const;
const UNICODE_HBA = [
  `host replication ${UNICODE_ROLES.scram} 127.0.0.1/32 scram-sha-256`,
  `host replication ${UNICODE_ROLES.md5} 127.0.0.1/32 md5`,
];
const tlsMajors = [...new Set([Math.max(...majors), Math.min(...majors)])];
const ssl = new Map<number, Cluster>();
let plain: Cluster;
let tmp: string;

beforeAll(async () => {
  const started = await Promise.all(majors.map((major) => startCluster({ major, hba: UNICODE_HBA })));
  for (const c of started) ssl.set(c.major, c);
  plain = await startCluster({ major: Math.max(...majors), ssl: false });
  tmp = await makeTempDir('tls-auth');
}, 300_000);

function cluster(major: number): Cluster {
  const c = ssl.get(major);
  if (!c) throw new Error(`no cluster for ${major}`);
  return c;
}

/** Options for the harness cluster over TCP, with an empty environment so no PG* of the runner leaks in. */
function tcp(c: Cluster, extra: ConnectionOptions = {}): ConnectionOptions {
  return { host: '127.0.0.1', port: c.port, user: ROLES.trust, sslmode: 'disable', env: {}, connectTimeoutMs: 20_000, ...extra };
}

interface Outcome {
  ssl: boolean;
  pid: number;
}

/** Connect, ask the server (on a side connection) whether this backend uses TLS, and close. */
async function probe(c: Cluster, options: ConnectionOptions): Promise<Outcome> {
  const conn = await ReplicationConnection.connect(options);
  try {
    const rows = await c.sql<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = $1', [conn.backendPid]);
    expect(rows).toHaveLength(1);
    // And the connection is usable.
    const [result] = await conn.query('IDENTIFY_SYSTEM');
    expect(result?.rows).toHaveLength(1);
    return { ssl: rows[0]!.ssl, pid: conn.backendPid };
  } finally {
    await conn.close();
  }
}

async function failure(options: ConnectionOptions): Promise<PgBackupError> {
  let conn: ReplicationConnection | undefined;
  try {
    conn = await ReplicationConnection.connect(options);
  } catch (err) {
    expect(err).toBeInstanceOf(PgBackupError);
    return err as PgBackupError;
  }
  await conn.close();
  throw new Error('expected the connection to fail');
}

function expectNoSecret(err: Error, secret: string): void {
  expect(err.message).not.toContain(secret);
  expect(String(err.stack)).not.toContain(secret);
}

describe.each(majors)('authentication, PostgreSQL %i', (major) => {
  const secret = ROLES.secret;

  it('SCRAM-SHA-256 without TLS', async () => {
    const c = cluster(major);
    expect(await probe(c, tcp(c, { user: ROLES.scram, password: secret }))).toMatchObject({ ssl: false });
  });

  it('MD5', async () => {
    const c = cluster(major);
    expect(await probe(c, tcp(c, { user: ROLES.md5, password: secret }))).toMatchObject({ ssl: false });
  });

  it('cleartext password', async () => {
    const c = cluster(major);
    expect(await probe(c, tcp(c, { user: ROLES.password, password: secret }))).toMatchObject({ ssl: false });
  });

  it.each([ROLES.scram, ROLES.md5, ROLES.password])(
    'a wrong password for %s fails with 28P01 and never shows the password',
    async (user) => {
      const c = cluster(major);
      const wrong = 'Wr0ng-p4ssw0rd-do-not-print';
      const err = await failure(tcp(c, { user, password: wrong }));
      expect(['ERR_PGBB_SERVER', 'ERR_PGBB_AUTH']).toContain(err.code);
      if (err.code === 'ERR_PGBB_SERVER') expect((err as unknown as { sqlState: string }).sqlState).toBe('28P01');
      expect(err.message).toMatch(/password authentication failed/);
      expectNoSecret(err, wrong);
    },
  );

  it('a password-protected role without any password fails with an authentication error', async () => {
    const c = cluster(major);
    const err = await failure(tcp(c, { user: ROLES.scram, passfile: join(tmp, 'no-such-pgpass') }));
    expect(err.code).toBe('ERR_PGBB_AUTH');
    expect(err.message).toMatch(/password/);
  });

  it.each(['require', 'prefer', 'disable'] as const)('SCRAM over TLS with channel_binding=%s', async (channelBinding) => {
    const c = cluster(major);
    const outcome = await probe(c, tcp(c, { user: ROLES.scram, password: secret, sslmode: 'require', channelBinding }));
    expect(outcome.ssl).toBe(true);
  });

  it('channel_binding=require without TLS fails clearly', async () => {
    const c = cluster(major);
    const err = await failure(tcp(c, { user: ROLES.scram, password: secret, sslmode: 'disable', channelBinding: 'require' }));
    expect(err.code).toBe('ERR_PGBB_AUTH');
    expect(err.message).toMatch(/channel.binding/i);
  });

  it('channel_binding=require refuses a server that authenticates without SCRAM (md5, trust)', async () => {
    const c = cluster(major);
    for (const user of [ROLES.md5, ROLES.trust]) {
      const err = await failure(tcp(c, { user, password: secret, sslmode: 'require', channelBinding: 'require' }));
      expect(err.code).toBe('ERR_PGBB_AUTH');
      expect(err.message).toMatch(/channel.binding/i);
    }
  });

  it('a hostssl-only role is refused without TLS and accepted with it', async () => {
    const c = cluster(major);
    const err = await failure(tcp(c, { user: ROLES.sslOnly, password: secret, sslmode: 'disable' }));
    expect(err.code).toBe('ERR_PGBB_SERVER');
    expect((err as unknown as { sqlState: string }).sqlState).toBe('28000');
    expect(await probe(c, tcp(c, { user: ROLES.sslOnly, password: secret, sslmode: 'require' }))).toMatchObject({ ssl: true });
  });

  it('.pgpass with mode 0600 supplies the password; 0644 is refused with a warning', async () => {
    const c = cluster(major);
    const escaped = secret.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
    const file = join(tmp, `pgpass-${major}`);
    writeFileSync(file, `# comment\n127.0.0.1:${c.port}:*:${ROLES.scram}:${escaped}\n`);
    chmodSync(file, 0o600);
    expect(await probe(c, tcp(c, { user: ROLES.scram, passfile: file }))).toMatchObject({ ssl: false });

    chmodSync(file, 0o644);
    const err = await failure(tcp(c, { user: ROLES.scram, passfile: file }));
    expect(err.code).toBe('ERR_PGBB_AUTH');
    expect(err.message).toMatch(/group or world access/);
  });

  it('PG* environment variables alone', async () => {
    const c = cluster(major);
    const env = {
      PGHOST: '127.0.0.1',
      PGPORT: String(c.port),
      PGUSER: ROLES.scram,
      PGPASSWORD: secret,
      PGSSLMODE: 'require',
      PGCHANNELBINDING: 'require',
      PGAPPNAME: 'pgbb-env-test',
    };
    const conn = await ReplicationConnection.connect({ env });
    try {
      const rows = await c.sql<{ ssl: boolean; application_name: string; usename: string }>(
        'select s.ssl, a.application_name, a.usename from pg_stat_ssl s join pg_stat_activity a using (pid) where pid = $1',
        [conn.backendPid],
      );
      expect(rows[0]).toEqual({ ssl: true, application_name: 'pgbb-env-test', usename: ROLES.scram });
    } finally {
      await conn.close();
    }
  });

  it('a URI with a percent-encoded password', async () => {
    const c = cluster(major);
    const uri = c.connectionUri({ user: ROLES.scram, password: secret });
    expect(uri).toContain('%40'); // '@' of the password, encoded
    expect(await probe(c, { connectionString: uri, env: {} })).toMatchObject({ ssl: false });
  });

  it('SASLprep matches the server: non-ASCII SCRAM passwords, normalized or taken raw, and MD5', async () => {
    const c = cluster(major);
    const lit = (v: string) => `'${v.replace(/'/g, "''")}'`;
    const setScram = async (password: string) => {
      await c.sql(`set password_encryption = 'scram-sha-256'`);
      await c.sql(`alter role ${UNICODE_ROLES.scram} password ${lit(password)}`);
    };
    await c.sql(`drop role if exists ${UNICODE_ROLES.scram}`);
    await c.sql(`drop role if exists ${UNICODE_ROLES.md5}`);
    await c.sql(`create role ${UNICODE_ROLES.scram} login replication`);
    const scram = (password: string) => tcp(c, { user: UNICODE_ROLES.scram, password });

    // Soft hyphen (mapped to nothing) and ROMAN NUMERAL NINE (NFKC: "IX"): the server stored SASLprep("I\u00adX\u2168") = "IXIX".
    await setScram('I\u00adX\u2168');
    await probe(c, scram('I\u00adX\u2168'));
    await probe(c, scram('IXIX'));
    // Non-ASCII spaces map to U+0020.
    await setScram('pa\u00a0ss\u3000wörd');
    await probe(c, scram('pa ss wörd'));
    // Right-to-left followed by a digit breaks the bidi rule: both sides use the raw bytes, so only the exact string works.
    await setScram('\u0627\u0031');
    await probe(c, scram('\u0627\u0031'));
    expect((await failure(scram('\u0627 1'))).message).toMatch(/password authentication failed/);
    // A character unassigned in Unicode 3.2 (an emoji) makes both sides use the raw bytes, NBSP included.
    await setScram('\u00a0\u{1F600}x');
    await probe(c, scram('\u00a0\u{1F600}x'));
    expect((await failure(scram(' \u{1F600}x'))).message).toMatch(/password authentication failed/);
    // Pure ASCII is never altered, control characters included.
    await setScram('tab\there');
    await probe(c, scram('tab\there'));

    await c.sql(`set password_encryption = 'md5'`);
    await c.sql(`create role ${UNICODE_ROLES.md5} login replication password ${lit('pässwörd\u2168')}`);
    const stored = await c.sql<{ rolname: string; kind: string }>(
      `select rolname, split_part(rolpassword, '$', 1) as kind from pg_authid where rolname = any($1) order by rolname`,
      [[UNICODE_ROLES.md5, UNICODE_ROLES.scram]],
    );
    expect(stored.map((r) => r.kind.slice(0, 3))).toEqual(['md5', 'SCR']);
    await probe(c, tcp(c, { user: UNICODE_ROLES.md5, password: 'pässwörd\u2168' }));
  });

  it('a Unix socket (never TLS, whatever sslmode says, as in libpq)', async () => {
    const c = cluster(major);
    for (const sslmode of ['prefer', 'require'] as const) {
      expect(await probe(c, { host: c.socketDir, port: c.port, user: ROLES.trust, sslmode, env: {} })).toMatchObject({ ssl: false });
    }
  });
});

describe.each(tlsMajors)('sslmode and certificates, PostgreSQL %i', (major) => {
  const trust = (c: Cluster, extra: ConnectionOptions) => tcp(c, { user: ROLES.trust, ...extra });

  it.each([
    ['disable', false],
    ['allow', false],
    ['prefer', true],
    ['require', true],
  ] as const)('sslmode=%s against an SSL server: ssl=%s', async (sslmode, expected) => {
    const c = cluster(major);
    expect((await probe(c, trust(c, { sslmode }))).ssl).toBe(expected);
  });

  it('sslmode=allow retries with TLS when the plain attempt is refused (hostssl-only role)', async () => {
    const c = cluster(major);
    expect(await probe(c, tcp(c, { user: ROLES.sslOnly, password: ROLES.secret, sslmode: 'allow' }))).toMatchObject({ ssl: true });
  });

  it('sslmode=require with an existing root certificate verifies the chain (libpq compatibility rule)', async () => {
    const c = cluster(major);
    expect((await probe(c, trust(c, { sslmode: 'require', sslrootcert: c.tls!.caFile }))).ssl).toBe(true);
    const err = await failure(trust(c, { sslmode: 'require', sslrootcert: c.tls!.otherCaFile }));
    expect(err.code).toBe('ERR_PGBB_TLS');
    expect(err.message).toContain(`not signed by a CA in "${c.tls!.otherCaFile}"`);
  });

  it('verify-full accepts the right CA and host name localhost', async () => {
    const c = cluster(major);
    const outcome = await probe(
      c,
      trust(c, { sslmode: 'verify-full', sslrootcert: c.tls!.caFile, host: 'localhost', hostaddr: '127.0.0.1' }),
    );
    expect(outcome.ssl).toBe(true);
  });

  it('verify-full to host localhost alone (name resolution; the server listens on 127.0.0.1 only)', async () => {
    const c = cluster(major);
    expect((await probe(c, trust(c, { sslmode: 'verify-full', sslrootcert: c.tls!.caFile, host: 'localhost' }))).ssl).toBe(true);
  });

  it('verify-full rejects an unknown CA', async () => {
    const c = cluster(major);
    const err = await failure(
      trust(c, { sslmode: 'verify-full', sslrootcert: c.tls!.otherCaFile, host: 'localhost', hostaddr: '127.0.0.1' }),
    );
    expect(err.code).toBe('ERR_PGBB_TLS');
    expect(err.message).toContain(`the server certificate is not signed by a CA in "${c.tls!.otherCaFile}"`);
  });

  it('verify-full rejects host 127.0.0.1 for a certificate that names only localhost, naming both', async () => {
    const c = cluster(major);
    const err = await failure(trust(c, { sslmode: 'verify-full', sslrootcert: c.tls!.caFile, host: '127.0.0.1' }));
    expect(err.code).toBe('ERR_PGBB_TLS');
    expect(err.message).toContain('DNS:localhost');
    expect(err.message).toContain('"127.0.0.1"');
  });

  it('verify-ca accepts the chain with any host name', async () => {
    const c = cluster(major);
    expect((await probe(c, trust(c, { sslmode: 'verify-ca', sslrootcert: c.tls!.caFile, host: '127.0.0.1' }))).ssl).toBe(true);
  });

  it('verify-ca without the root certificate file says to supply sslrootcert', async () => {
    const c = cluster(major);
    const missing = join(tmp, 'no-root.crt');
    const err = await failure(trust(c, { sslmode: 'verify-ca', sslrootcert: missing }));
    expect(err.code).toBe('ERR_PGBB_TLS');
    expect(err.message).toContain(missing);
    expect(err.message).toContain('sslrootcert');
  });

  it('SCRAM-SHA-256-PLUS over verify-full (channel binding checked by the server against its certificate)', async () => {
    const c = cluster(major);
    const outcome = await probe(
      c,
      tcp(c, {
        user: ROLES.scram,
        password: ROLES.secret,
        sslmode: 'verify-full',
        sslrootcert: c.tls!.caFile,
        host: 'localhost',
        hostaddr: '127.0.0.1',
        channelBinding: 'require',
      }),
    );
    expect(outcome.ssl).toBe(true);
  });
});

// The server computes tls-server-end-point from its own certificate with OpenSSL; a login
// with channel_binding=require proves our DER walk picked the same hash.
const certCases = [
  ['ECDSA with SHA-384', 'EC', ['-pkeyopt', 'ec_paramgen_curve:P-384'], ['-sha384'], 'sha384'],
  ['RSA with SHA-512', 'RSA', ['-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha512'], 'sha512'],
  ['RSA-PSS with SHA-512', 'RSA-PSS', ['-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha512', '-sigopt', 'rsa_pss_saltlen:32'], 'sha512'],
  ['RSA with SHA-1 (hashed with SHA-256)', 'RSA', ['-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha1'], 'sha256'],
] as const;
describe.each(tlsMajors.flatMap((major) => certCases.map((cs) => [major, ...cs] as const)))(
  'PostgreSQL %i, channel binding with a server certificate signed with %s',
  (major, label, algorithm, keyOpts, digest, expectedHash) => {
    let c: Cluster;
    let certFile: string;
    beforeAll(async () => {
      const dir = await makeTempDir('cert');
      const key = join(dir, 'server.key');
      certFile = join(dir, 'server.crt');
      execFileSync('openssl', ['genpkey', '-algorithm', algorithm, ...keyOpts, '-out', key], { stdio: 'pipe' });
      execFileSync('openssl', ['req', '-x509', '-new', '-key', key, '-subj', '/CN=localhost', '-days', '2', ...digest, '-out', certFile], {
        stdio: 'pipe',
      });
      chmodSync(key, 0o600);
      await chownToServer(key);
      c = await startCluster({ major, conf: { ssl_cert_file: certFile, ssl_key_file: key } });
    }, 120_000);
    afterAll(() => c?.destroy());

    it(`uses ${expectedHash} and the server accepts SCRAM-SHA-256-PLUS (${label})`, async () => {
      const der = new X509Certificate(readFileSync(certFile)).raw;
      expect(tlsServerEndPointHash(der)).toEqual(createHash(expectedHash).update(der).digest());
      const outcome = await probe(c, tcp(c, { user: ROLES.scram, password: ROLES.secret, sslmode: 'require', channelBinding: 'require' }));
      expect(outcome.ssl).toBe(true);
    });
  },
);

describe('sslmode against a server without SSL', () => {
  it.each(['disable', 'allow', 'prefer'] as const)('sslmode=%s connects without TLS', async (sslmode) => {
    expect((await probe(plain, tcp(plain, { sslmode }))).ssl).toBe(false);
  });

  it('sslmode=require fails: the server refused SSL', async () => {
    const err = await failure(tcp(plain, { sslmode: 'require' }));
    expect(err.code).toBe('ERR_PGBB_TLS');
    expect(err.message).toMatch(/does not accept SSL connections/);
  });

  it('SCRAM with channel_binding=prefer works without TLS', async () => {
    expect((await probe(plain, tcp(plain, { user: ROLES.scram, password: ROLES.secret, sslmode: 'prefer' }))).ssl).toBe(false);
  });
});

describe('connect_timeout', () => {
  let server: Server;
  let port: number;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    // Accepts TCP connections and never answers a byte.
    server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it.each(['prefer', 'disable'] as const)('gives up after connectTimeoutMs with sslmode=%s', async (sslmode) => {
    const started = Date.now();
    const err = await failure({ host: '127.0.0.1', port, user: 'nobody', sslmode, env: {}, connectTimeoutMs: 1500 });
    const elapsed = Date.now() - started;
    expect(err.code).toBe('ERR_PGBB_CONNECT_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(5000);
  });

  it('connect_timeout in a connection string is in seconds', async () => {
    const started = Date.now();
    const err = await failure({ connectionString: `host=127.0.0.1 port=${port} user=nobody sslmode=disable connect_timeout=2`, env: {} });
    const elapsed = Date.now() - started;
    expect(err.code).toBe('ERR_PGBB_CONNECT_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(6000);
  });
});
