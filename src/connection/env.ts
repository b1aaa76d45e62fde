/**
 * libpq's fallbacks: the `PG*` environment variables and the built-in defaults
 * (socket directory, port, password file). Reads only what it is given, plus
 * `existsSync`/`os` through injectable hooks so tests stay pure.
 * @module
 */
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { LIBPQ_KEYWORDS } from './keywords.js';

/** libpq's default port (`DEF_PGPORT`). */
export const DEFAULT_PORT = 5432;

/**
 * Socket directories tried, in order, when no host is given. libpq uses one
 * compiled-in directory: `/tmp` upstream, `/var/run/postgresql` in Debian/Ubuntu and
 * Red Hat builds. We take the first that exists, so that both kinds of installation
 * work without configuration; `/tmp` if none does.
 */
export const DEFAULT_SOCKET_DIRS: readonly string[] = ['/var/run/postgresql', '/tmp'];

/** Where a setting came from, for error messages (`option "port"`, `the connection string`, `PGPORT`). */
export type SettingSource = string;

/** One value with its origin. */
export interface SourcedValue {
  /** The value as given (connection-string values already unescaped / decoded). */
  value: string;
  /** Where it came from: `option "port"`, `the connection string`, or the variable's name. */
  source: SettingSource;
}

/** Hooks onto the machine, replaceable in tests. */
export interface SystemHooks {
  /** Whether a path exists. @default fs.existsSync */
  pathExists?: (path: string) => boolean;
  /** The operating-system user name (libpq's `pg_fe_getauthname`). @default os.userInfo().username */
  osUser?: () => string;
  /** The home directory when `HOME` is not set. @default os.homedir() */
  homeDir?: () => string;
  /** @default process.platform */
  platform?: NodeJS.Platform;
}

/**
 * The `PG*` variables that are set (and non-empty) in `env`, by libpq keyword.
 * Also applies the deprecated `PGREQUIRESSL`: a value starting with `1` means
 * `sslmode=require`, and only when `PGSSLMODE` is not set (libpq ≥ 9.3).
 */
export function readPgEnvironment(env: Readonly<Record<string, string | undefined>>): Map<string, SourcedValue> {
  const out = new Map<string, SourcedValue>();
  for (const { keyword, envVar } of LIBPQ_KEYWORDS) {
    if (envVar === undefined) continue;
    const value = env[envVar];
    // libpq would take an empty variable as an explicit empty value, which for most
    // keywords means "use the default" anyway; we simply treat it as unset.
    if (value !== undefined && value !== '') out.set(keyword, { value, source: envVar });
  }
  if (!out.has('sslmode') && env['PGREQUIRESSL']?.startsWith('1')) {
    out.set('sslmode', { value: 'require', source: 'PGREQUIRESSL' });
  }
  return out;
}

/** The socket directory used when no host is given (see {@link DEFAULT_SOCKET_DIRS}); `localhost` on Windows, like libpq. */
export function defaultHost(hooks: SystemHooks = {}): string {
  if ((hooks.platform ?? process.platform) === 'win32') return 'localhost';
  const exists = hooks.pathExists ?? existsSync;
  for (const dir of DEFAULT_SOCKET_DIRS) if (exists(dir)) return dir;
  return '/tmp';
}

/**
 * libpq's default password file: `$HOME/.pgpass` (home from `HOME`, else the account's
 * home directory), or `%APPDATA%\postgresql\pgpass.conf` on Windows.
 */
export function defaultPassfile(env: Readonly<Record<string, string | undefined>>, hooks: SystemHooks = {}): string {
  if ((hooks.platform ?? process.platform) === 'win32') {
    return join(env['APPDATA'] ?? join(homedir(), 'AppData', 'Roaming'), 'postgresql', 'pgpass.conf');
  }
  const home = env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : (hooks.homeDir ?? homedir)();
  return join(home, '.pgpass');
}

/** The operating-system user name, or undefined when it cannot be determined. */
export function osUserName(hooks: SystemHooks = {}): string | undefined {
  try {
    const name = hooks.osUser ? hooks.osUser() : userInfo().username;
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}
