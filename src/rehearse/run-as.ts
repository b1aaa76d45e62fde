/**
 * The OS identity the rehearsal's server runs as. PostgreSQL refuses to run as root ("root execution of
 * the PostgreSQL server is not permitted"), so a rehearsal started by root runs the server, and hands
 * the restored files, to an unprivileged user; anyone else runs it as themselves.
 * @module
 */
import { execFile } from 'node:child_process';
import { lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from '../errors.js';

const run = promisify(execFile);

/** A uid/gid pair; `undefined` means the current process's own. */
export interface OsIdentity {
  user: string;
  uid: number;
  gid: number;
}

/** Whether this process runs as root. */
export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * The identity for `runAs`: looked up with `id`. Root must name one; others may not switch user (and
 * need not), so `runAs` is refused unless it is root.
 * @throws ConfigError
 */
export async function resolveRunAs(runAs: string | undefined): Promise<OsIdentity | undefined> {
  if (!runningAsRoot()) {
    if (runAs !== undefined) {
      throw new ConfigError(`--run-as ${runAs} needs root (only root can start the server as another user); leave it out`);
    }
    return undefined;
  }
  if (runAs === undefined) {
    throw new ConfigError('running as root: PostgreSQL refuses to run as root, give the user to run the server as with --run-as (runAs)');
  }
  try {
    const uid = Number((await run('id', ['-u', runAs])).stdout.trim());
    const gid = Number((await run('id', ['-g', runAs])).stdout.trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('unexpected id output');
    if (uid === 0) throw new ConfigError(`--run-as ${runAs} is root: name an unprivileged user`);
    return { user: runAs, uid, gid };
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`--run-as: no OS user "${runAs}"`, { cause: err });
  }
}

/** Give a tree to `id`, without following symbolic links (tablespace links are followed by the caller). */
export async function chownTree(path: string, id: OsIdentity): Promise<void> {
  await lchown(path, id.uid, id.gid);
  const st = await lstat(path);
  if (!st.isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), id);
}
