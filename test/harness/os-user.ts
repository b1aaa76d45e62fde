import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { chmod, chown, readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';

/** The unprivileged OS account the servers run as when the tests run as root. */
export const TEST_OS_USER = 'pgbbtest';

/** uid/gid the PostgreSQL processes run as; `undefined` when we are not root and run them as ourselves. */
export interface OsIdentity {
  uid: number;
  gid: number;
}

let cachedIdentity: OsIdentity | undefined | null = null;

/** True when this process is root, which PostgreSQL refuses to run as ("root execution of the PostgreSQL server is not permitted"). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * The identity servers run as: `undefined` when not root; otherwise the `pgbbtest` system user, created on first use.
 * `useradd` is idempotent enough for us: a concurrent creator makes it fail with "already exists", after which `id` succeeds.
 */
export function serverIdentity(): OsIdentity | undefined {
  if (cachedIdentity !== null) return cachedIdentity;
  if (!isRoot()) {
    cachedIdentity = undefined;
    return undefined;
  }
  let ids = lookupUser(TEST_OS_USER);
  if (!ids) {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_OS_USER], {
        stdio: 'pipe',
      });
    } catch (err) {
      // Lost a race with another worker, or useradd is missing: the lookup below decides.
      ids = lookupUser(TEST_OS_USER);
      if (!ids) throw new Error(`cannot create OS user ${TEST_OS_USER} to run PostgreSQL as non-root: ${String(err)}`);
    }
    ids ??= lookupUser(TEST_OS_USER);
  }
  if (!ids) throw new Error(`OS user ${TEST_OS_USER} not found after useradd`);
  cachedIdentity = ids;
  return ids;
}

function lookupUser(name: string): OsIdentity | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { stdio: 'pipe' }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', name], { stdio: 'pipe' }).toString().trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/** Spawn options that make a child run as the server identity (no-op when not root). */
export function asServerUser(): Pick<SpawnOptions, 'uid' | 'gid'> {
  const id = serverIdentity();
  return id ? { uid: id.uid, gid: id.gid } : {};
}

/** Result of {@link run}. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a program to completion, collecting its output; as the server identity when `asServer` is set. */
export function run(
  file: string,
  args: readonly string[],
  opts: { asServer?: boolean; env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? serverEnv(),
      // pg_ctl and initdb resolve relative paths against the cwd, which must be readable by the server user.
      cwd: opts.cwd ?? '/',
      ...(opts.asServer ? asServerUser() : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs).unref();
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.input !== undefined) {
      // A child that exits without reading its input must not crash us with EPIPE.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
  });
}

/** Like {@link run} but throws with the output when the exit status is not 0. */
export async function runOk(file: string, args: readonly string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} failed (${r.signal ?? `exit ${String(r.code)}`}):\n${r.stdout}${r.stderr}`);
  }
  return r;
}

/**
 * Environment for server processes: ours minus the libpq variables a developer may have set (PGPORT, PGHOST, ...),
 * which pg_ctl and psql would otherwise honour, plus a fixed C locale so initdb never depends on the host's locales.
 */
export function serverEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG')) env[k] = v;
  }
  env.LC_ALL = 'C';
  env.LANG = 'C';
  delete env.LANGUAGE;
  return { ...env, ...extra };
}

/** Give a file tree to the server identity (recursively, without following symlinks). No-op when not root. */
export async function chownToServer(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
  const id = serverIdentity();
  if (!id) return;
  if (opts.recursive) {
    await runOk('chown', ['-R', '--no-dereference', `${id.uid}:${id.gid}`, path]);
  } else {
    await chown(path, id.uid, id.gid);
  }
}

/** Walk a tree and chmod directories; used where `cp` left modes the server dislikes. */
export async function chmodDirs(path: string, mode: number): Promise<void> {
  await chmod(path, mode);
  for (const entry of await readdir(path)) {
    const p = join(path, entry);
    if ((await lstat(p)).isDirectory()) await chmodDirs(p, mode);
  }
}
