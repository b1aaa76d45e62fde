/**
 * The password file (`~/.pgpass`, `PGPASSFILE`, `passfile`), with libpq's rules
 * (`passwordFromFile` and `pwdfMatchesString` in fe-connect.c). A pure parser and
 * matcher, plus one thin function that reads the file.
 * @module
 */
import { readFile, stat } from 'node:fs/promises';
import { DEFAULT_PORT, DEFAULT_SOCKET_DIRS } from './env.js';
import { isUnixSocketHost } from './redact.js';
import type { ResolvedConnectionOptions } from './types.js';

/** What a `.pgpass` line is matched against. */
export interface PgpassKey {
  /** Host name, IP address or socket directory, as given (see `pgpassHostName`). */
  host: string;
  /** The port; 0 means the default, 5432. */
  port: number;
  /** For a physical replication connection, `replication` (see `pgpassKeyFor`). */
  dbname: string;
  /** The user name the connection authenticates as. */
  user: string;
}

/** One line of a password file: five fields, still escaped (`\:` and `\\`), `*` meaning any. */
export interface PgpassEntry {
  /** The raw line, without its line terminator. */
  line: string;
  /** 1-based line number, for messages. */
  lineNumber: number;
}

/** The outcome of a lookup: a password, or a warning explaining why the file was refused. */
export interface PgpassResult {
  /** The password of the first matching line. Never print it. */
  password?: string;
  /** Why the file was ignored (libpq prints this as a WARNING), e.g. it is readable by others. */
  warning?: string;
}

/**
 * Split a password file into its candidate lines. libpq skips lines starting with `#`
 * (only in the first column) and empty lines, and strips a trailing `\r\n` / `\n`.
 */
export function parsePgpass(text: string): PgpassEntry[] {
  const out: PgpassEntry[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.replace(/[\r\n]+$/, '');
    if (line === '' || raw.startsWith('#')) return;
    out.push({ line, lineNumber: index + 1 });
  });
  return out;
}

/**
 * Match one field at `pos` of `line` against `token` (libpq's `pwdfMatchesString`):
 * `*` followed by `:` matches anything; otherwise the field, unescaping `\x` to `x`,
 * must equal `token` exactly and end with an unescaped `:`. Returns the position
 * after the `:`, or -1.
 */
function matchField(line: string, pos: number, token: string): number {
  if (line[pos] === '*' && line[pos + 1] === ':') return pos + 2;
  let t = 0;
  let i = pos;
  while (i < line.length) {
    let escaped = false;
    if (line[i] === '\\') {
      i++;
      escaped = true;
      // libpq compares the escaped character itself (a trailing '\' compares NUL).
      if (i >= line.length) return -1;
    }
    const c = line[i];
    if (c === ':' && !escaped && t === token.length) return i + 1;
    if (t === token.length || c !== token[t]) return -1;
    i++;
    t++;
  }
  return -1;
}

/**
 * The host name libpq looks up: `localhost` for an empty host and for the default
 * socket directory (libpq's `DefaultHost`); any other value verbatim. Since our default
 * socket directory is one of {@link DEFAULT_SOCKET_DIRS}, each of them maps to
 * `localhost` (libpq only maps its single compiled-in one).
 */
export function pgpassHostName(host: string): string {
  if (host === '') return 'localhost';
  if (isUnixSocketHost(host)) {
    const dir = host.length > 1 && host.endsWith('/') ? host.slice(0, -1) : host;
    if (DEFAULT_SOCKET_DIRS.includes(dir)) return 'localhost';
  }
  return host;
}

/**
 * The first entry matching `key`, de-escaped (libpq: first match wins; the password is
 * the rest of the line up to an unescaped `:`, with `\x` turned into `x`).
 */
export function findPgpassPassword(entries: readonly PgpassEntry[], key: PgpassKey): string | undefined {
  if (key.dbname === '' || key.user === '') return undefined;
  const host = pgpassHostName(key.host);
  const port = String(key.port || DEFAULT_PORT);
  for (const { line } of entries) {
    let pos = 0;
    for (const token of [host, port, key.dbname, key.user]) {
      pos = matchField(line, pos, token);
      if (pos < 0) break;
    }
    if (pos < 0) continue;
    let password = '';
    for (let i = pos; i < line.length && line[i] !== ':'; i++) {
      if (line[i] === '\\' && i + 1 < line.length) i++;
      password += line[i];
    }
    return password;
  }
  return undefined;
}

/**
 * The lookup key libpq uses for our connections: the host (or `hostaddr` when no host
 * name was given), the port, the user, and `replication` as the database, because
 * pg_basebackup always connects with `dbname=replication` (streamutil.c), whatever
 * dbname the connection string holds.
 */
export function pgpassKeyFor(o: Pick<ResolvedConnectionOptions, 'host' | 'hostaddr' | 'port' | 'user' | 'params'>): PgpassKey {
  const host = o.params['host'] !== undefined ? o.host : (o.hostaddr ?? o.host);
  return { host, port: o.port, dbname: 'replication', user: o.user };
}

/**
 * Look a password up in a password file, as libpq does when the server asks for one.
 * A missing file gives nothing. A file that is not a regular file, or that the group
 * or others may access (`mode & 0o077`), is refused with a warning in libpq's words
 * (the caller should surface it, e.g. as a notice).
 *
 * @example
 * ```ts
 * const { password, warning } = await lookupPgpass(opts.passfile, pgpassKeyFor(opts));
 * ```
 */
export async function lookupPgpass(passfile: string, key: PgpassKey): Promise<PgpassResult> {
  let st;
  try {
    st = await stat(passfile);
  } catch {
    return {};
  }
  if (!st.isFile()) return { warning: `password file "${passfile}" is not a plain file` };
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    return {
      warning: `password file "${passfile}" has group or world access; permissions should be u=rw (0600) or less`,
    };
  }
  let text: string;
  try {
    text = await readFile(passfile, 'utf8');
  } catch {
    return {};
  }
  const password = findPgpassPassword(parsePgpass(text), key);
  return password === undefined ? {} : { password };
}
