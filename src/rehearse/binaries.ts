/**
 * Finding the PostgreSQL server binaries of a backup's major: the caller's directory, else
 * `pg_config --bindir` on PATH when its major matches, else the packagers' usual places (Debian's
 * `/usr/lib/postgresql/N/bin`, the PGDG RPMs' `/usr/pgsql-N/bin`). A server of another major cannot
 * start the restored data directory, so a directory whose `postgres` reports another major is skipped.
 * @module
 */
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PgBinariesNotFoundError } from '../errors.js';

const run = promisify(execFile);

/** Where the server binaries of one major are. */
export interface PgBinaries {
  /** The directory holding `postgres`. */
  binDir: string;
  /** The `postgres` executable. */
  postgres: string;
  /** `pg_checksums` of the same directory, when it ships one (the check of a stopped cluster's pages). */
  pgChecksums: string | undefined;
  /** The major `postgres --version` reported. */
  major: number;
}

/** Options of {@link findPgBinaries}. */
export interface FindPgBinariesOptions {
  /** The major the backup needs. */
  major: number;
  /** Look only here (`--pg-bin`). */
  pgBin?: string | undefined;
  /** The PATH searched for `pg_config`. @default process.env.PATH */
  path?: string | undefined;
}

/** The major in a `--version` line: `postgres (PostgreSQL) 17.2` or `PostgreSQL 15.4 (Debian ...)`. */
export function majorOfVersionLine(line: string): number | undefined {
  const m = /PostgreSQL\)?\s+(\d+)(?:\.\d+|beta|rc|devel)/.exec(line);
  return m ? Number(m[1]) : undefined;
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function probe(binDir: string): Promise<PgBinaries | undefined> {
  const postgres = join(binDir, 'postgres');
  if (!(await executable(postgres))) return undefined;
  let major: number | undefined;
  try {
    major = majorOfVersionLine((await run(postgres, ['--version'], { timeout: 30_000 })).stdout);
  } catch {
    return undefined;
  }
  if (major === undefined) return undefined;
  const checksums = join(binDir, 'pg_checksums');
  return { binDir, postgres, major, pgChecksums: (await executable(checksums)) ? checksums : undefined };
}

async function pgConfigBinDir(path: string | undefined): Promise<string | undefined> {
  try {
    const env = path === undefined ? process.env : { ...process.env, PATH: path };
    return (await run('pg_config', ['--bindir'], { env, timeout: 30_000 })).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The server binaries of `major`.
 * @throws PgBinariesNotFoundError naming the major and the places looked in.
 */
export async function findPgBinaries(o: FindPgBinariesOptions): Promise<PgBinaries> {
  const candidates: string[] = [];
  if (o.pgBin !== undefined) candidates.push(o.pgBin);
  else {
    const fromPgConfig = await pgConfigBinDir(o.path);
    if (fromPgConfig !== undefined) candidates.push(fromPgConfig);
    candidates.push(`/usr/lib/postgresql/${o.major}/bin`, `/usr/pgsql-${o.major}/bin`);
  }
  const seen: string[] = [];
  for (const dir of candidates) {
    const found = await probe(dir);
    if (found?.major === o.major) return found;
    seen.push(found ? `${dir} (PostgreSQL ${found.major})` : dir);
  }
  throw new PgBinariesNotFoundError(`no PostgreSQL ${o.major} server binaries found (looked in ${seen.join(', ')})`, {
    major: o.major,
    advice: `install PostgreSQL ${o.major}'s server, or give its bin directory with --pg-bin (pgBin)`,
  });
}
