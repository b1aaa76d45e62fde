import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chownToServer, runOk } from './os-user.js';

/** TLS files of a run, all PEM. */
export interface TlsMaterial {
  /** The CA that signed the server certificate: clients verifying with it succeed (sslmode=verify-ca). */
  caFile: string;
  /** An unrelated CA: clients verifying the server with it must fail. */
  otherCaFile: string;
  /**
   * Server certificate for CN and SAN DNS `localhost` only. The SAN deliberately has no IP 127.0.0.1: a client
   * connecting to host 127.0.0.1 with sslmode=verify-full must fail on the host name check while verify-ca
   * passes, and one connecting to `localhost` with verify-full passes.
   */
  serverCertFile: string;
  /** The server's private key: mode 0600 and owned by the server OS user, since PostgreSQL refuses a key that is group or world readable ("private key file has group or world access"). */
  serverKeyFile: string;
}

function files(dir: string): TlsMaterial {
  return {
    caFile: join(dir, 'ca.crt'),
    otherCaFile: join(dir, 'other-ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
  };
}

const DAYS = '3650';

/** Generate (once per run root) a CA, a server certificate it signs, and a second unrelated CA, with the openssl CLI. */
export async function ensureTlsMaterial(root: string): Promise<TlsMaterial> {
  const dir = join(root, 'tls');
  if (existsSync(join(dir, '.complete'))) return files(dir);
  const tmp = `${dir}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true, mode: 0o755 });
  const f = files(tmp);
  const ssl = (...args: string[]) => runOk('openssl', args, { cwd: tmp, env: process.env });
  // P-256 keys: generated in milliseconds, and accepted by every OpenSSL the servers and Node link against.
  const ecKey = (out: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out);
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  await Promise.all([ecKey('ca.key'), ecKey('other-ca.key'), ecKey('server.key')]);
  await Promise.all([
    ssl('req', '-x509', '-new', '-key', 'ca.key', '-days', DAYS, '-subj', '/CN=pgbb test CA', ...caExt, '-out', f.caFile),
    ssl('req', '-x509', '-new', '-key', 'other-ca.key', '-days', DAYS, '-subj', '/CN=pgbb unrelated CA', ...caExt, '-out', f.otherCaFile),
    ssl('req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr'),
  ]);
  await writeFile(
    join(tmp, 'server.ext'),
    // No IP:127.0.0.1 here on purpose; see TlsMaterial.serverCertFile.
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  await ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    f.caFile,
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    DAYS,
    '-extfile',
    'server.ext',
    '-out',
    f.serverCertFile,
  );
  await chmod(join(tmp, 'server.key'), 0o600);
  await chownToServer(join(tmp, 'server.key'));
  await writeFile(join(tmp, '.complete'), '');
  try {
    await rename(tmp, dir);
  } catch {
    // Another worker generated it first.
    await rm(tmp, { recursive: true, force: true });
  }
  return files(dir);
}
