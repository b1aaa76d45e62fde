import { mkdirSync, mkdtempSync, chmodSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chownToServer } from './os-user.js';
import { teardownRunRoot, type RegistryEntry } from './teardown.js';

/**
 * Environment variable through which global setup hands the run's temp root to the forked test workers
 * (they inherit the environment of the process that ran global setup).
 */
export const RUN_ROOT_ENV = 'PGBB_HARNESS_ROOT';

/** Prefix of every run root under os.tmpdir(); the stale-run sweep looks for it. */
export const RUN_ROOT_PREFIX = 'pgbb-test-';

let root: string | undefined;

/** Create a run root: world-traversable so the unprivileged server user reaches its sub-directories. */
export function createRunRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), RUN_ROOT_PREFIX));
  chmodSync(dir, 0o755);
  for (const sub of ['registry', 'tmp', 'clusters', 'templates']) mkdirSync(join(dir, sub), { mode: 0o755 });
  // Owner pid lets a later run recognise (and clean up) roots whose runner died without teardown.
  writeFileSync(join(dir, 'owner.pid'), `${process.pid}\n`);
  return dir;
}

/**
 * The run's temp root. Under vitest, global setup created it and exported {@link RUN_ROOT_ENV}; a process using the
 * harness without that setup (a script, a debugger) gets its own root, cleaned up when it exits.
 */
export function runRoot(): string {
  if (root) return root;
  const fromEnv = process.env[RUN_ROOT_ENV];
  if (fromEnv) {
    root = fromEnv;
    return root;
  }
  root = createRunRoot();
  process.env[RUN_ROOT_ENV] = root;
  const own = root;
  // No global teardown will run for this root: stop its servers and delete it when the process exits.
  process.once('exit', () => teardownRunRoot(own));
  return root;
}

/** Record a postmaster so global teardown stops it even if the worker that started it dies. */
export async function register(entry: RegistryEntry): Promise<void> {
  await writeFile(join(runRoot(), 'registry', `${entry.id}.json`), JSON.stringify(entry));
}

/** Forget a postmaster after its worker stopped it and removed its directories. */
export async function unregister(id: string): Promise<void> {
  await rm(join(runRoot(), 'registry', `${id}.json`), { force: true });
}

let seq = 0;

/** A unique short id for a cluster or directory in this run (short: socket paths are limited to 107 bytes). */
export function nextId(kind: string): string {
  seq += 1;
  return `${kind}${process.pid.toString(36)}-${seq}`;
}

/**
 * A fresh directory under the run root, owned by the server OS user (mode 0700, as PostgreSQL wants data
 * directories), removed at the end of the run. Root can still write into it, so tests can restore backups there.
 */
export async function makeTempDir(prefix: string): Promise<string> {
  const parent = join(runRoot(), 'tmp');
  await mkdir(parent, { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(parent, `${prefix.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  await chmod(dir, 0o700);
  await chownToServer(dir);
  return dir;
}
