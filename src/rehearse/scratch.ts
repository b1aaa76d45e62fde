/**
 * The rehearsal's scratch directory: one private directory (mode 0700) that holds everything the
 * rehearsal creates (the data directory, the server's socket directory and its own pg_hba.conf), so
 * that removing it removes everything.
 * @module
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OsIdentity } from './run-as.js';
import { chownTree } from './run-as.js';

/** The paths inside a scratch directory. */
export interface ScratchDir {
  root: string;
  /** The restored data directory (created by the restore). */
  dataDir: string;
  /** The server's private Unix socket directory. */
  socketDir: string;
  /** The pg_hba.conf the server runs with: local connections only, trusted (the socket directory is private). */
  hbaFile: string;
  /** An empty pg_ident.conf (the backup's may be elsewhere, as Debian keeps it in /etc). */
  identFile: string;
}

/** Only the Unix socket in the private directory is reachable; TCP is off (listen_addresses = ''). */
const HBA = 'local all all trust\n';

/** Create a scratch directory under `parent`. */
export async function createScratch(parent: string | undefined): Promise<ScratchDir> {
  const base = parent ?? tmpdir();
  await mkdir(base, { recursive: true, mode: 0o700 });
  const root = await mkdtemp(join(base, 'pgbb-rehearsal-'));
  const socketDir = join(root, 'socket');
  await mkdir(socketDir, { mode: 0o700 });
  const hbaFile = join(root, 'pg_hba.conf');
  await writeFile(hbaFile, HBA, { mode: 0o600 });
  const identFile = join(root, 'pg_ident.conf');
  await writeFile(identFile, '', { mode: 0o600 });
  return { root, dataDir: join(root, 'data'), socketDir, hbaFile, identFile };
}

/**
 * Give the restored data directory the configuration file the server needs to start: a backup of a
 * cluster whose postgresql.conf lives elsewhere (Debian keeps it in /etc/postgresql) holds none.
 */
export async function ensureServerConfig(s: ScratchDir): Promise<void> {
  await writeFile(join(s.dataDir, 'postgresql.conf'), '', { mode: 0o600, flag: 'a' });
}

/** Hand the scratch directory's files to the server's user (after the restore wrote them as root). */
export async function giveScratch(s: ScratchDir, id: OsIdentity): Promise<void> {
  await chownTree(s.root, id);
}

/** Remove the scratch directory and everything in it. */
export async function removeScratch(s: ScratchDir): Promise<void> {
  await rm(s.root, { recursive: true, force: true, maxRetries: 3 });
}
