/**
 * Safe printing of connections: what every error and log line uses to name the
 * server, and a connection string with its secrets masked.
 * @module
 */
import { isLibpqKeyword, isSecretKeyword } from './keywords.js';
import type { ResolvedConnectionOptions } from './types.js';

/** What a masked secret is replaced with. */
export const REDACTED = '********';

/** Whether `host` names a Unix-socket directory (libpq's `is_unixsock_path`: absolute, or `@` for Linux abstract sockets). */
export function isUnixSocketHost(host: string): boolean {
  return host.startsWith('/') || host.startsWith('@');
}

/** The socket file libpq connects to for a socket directory and port. */
export function socketPath(dir: string, port: number): string {
  return `${dir.endsWith('/') ? dir.slice(0, -1) : dir}/.s.PGSQL.${port}`;
}

/**
 * Name a connection for messages: `user@host:port` (IPv6 in brackets, the numeric
 * `hostaddr` in parentheses when it differs from `host`), or `user@/dir/.s.PGSQL.port`
 * for a Unix socket. Never includes a password or any other secret.
 *
 * @example
 * ```ts
 * describeConnection(opts) // 'replicator@db.example.com:5432' or 'postgres@/var/run/postgresql/.s.PGSQL.5432'
 * ```
 */
export function describeConnection(o: Pick<ResolvedConnectionOptions, 'host' | 'hostaddr' | 'port' | 'user'>): string {
  if (isUnixSocketHost(o.host)) return `${o.user}@${socketPath(o.host, o.port)}`;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const addr = o.hostaddr !== undefined && o.hostaddr !== '' && o.hostaddr !== o.host ? ` (${o.hostaddr})` : '';
  return `${o.user}@${host}:${o.port}${addr}`;
}

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}

function tryDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Mask every secret in a connection string, in either form: `password=...` and
 * `sslpassword=...` (quoted or not) in `key=value` strings; the password of a URI's
 * userinfo and secret query parameters. Works on malformed strings too, erring on the
 * side of masking: an unterminated quoted secret is masked to the end, and words that
 * follow an unquoted secret without being `keyword=` pairs (a password with a space or
 * an `&` in it) are masked as well.
 *
 * @example
 * ```ts
 * redactConnectionString("host=db password='s3 cret'") // "host=db password=********"
 * redactConnectionString('postgres://u:s3cret@db/x?sslpassword=k') // 'postgres://u:********@db/x?sslpassword=********'
 * ```
 */
export function redactConnectionString(s: string): string {
  const prefix = s.startsWith('postgresql://') ? 13 : s.startsWith('postgres://') ? 11 : 0;
  return prefix !== 0 ? redactUri(s, prefix) : redactKeywordValue(s);
}

function redactUri(s: string, prefix: number): string {
  const q = s.indexOf('?', prefix);
  const authEnd = q < 0 ? s.length : q;
  let head = s.slice(0, authEnd);
  // Mask from the first ':' of the userinfo to the LAST '@' before the query: this
  // also covers a password holding an unencoded '/' or '@' (libpq would misparse it,
  // but it is still a secret).
  const at = head.lastIndexOf('@');
  if (at > prefix) {
    const colon = head.indexOf(':', prefix);
    if (colon >= 0 && colon < at) head = `${head.slice(0, colon + 1)}${REDACTED}${head.slice(at)}`;
  }
  if (q < 0) return head;

  const parts = s.slice(q + 1).split('&');
  let afterSecret = false;
  const redacted = parts.map((part) => {
    const eq = part.indexOf('=');
    const keyword = tryDecode(eq < 0 ? part : part.slice(0, eq));
    if (eq >= 0 && isSecretKeyword(keyword)) {
      afterSecret = true;
      return `${part.slice(0, eq + 1)}${REDACTED}`;
    }
    if (afterSecret && (eq < 0 || !(isLibpqKeyword(keyword) || keyword === 'ssl' || keyword === 'requiressl'))) {
      return REDACTED;
    }
    afterSecret = false;
    return part;
  });
  return `${head}?${redacted.join('&')}`;
}

function redactKeywordValue(s: string): string {
  let out = '';
  let i = 0;
  let afterSecret = false;
  while (i < s.length) {
    if (isSpace(s[i])) {
      out += s[i++];
      continue;
    }
    const tokenStart = i;
    while (i < s.length && s[i] !== '=' && !isSpace(s[i])) i++;
    const name = s.slice(tokenStart, i);
    let j = i;
    while (j < s.length && isSpace(s[j])) j++;
    const hasEquals = s[j] === '=';
    if (!hasEquals || (afterSecret && !isLibpqKeyword(name) && name !== 'requiressl')) {
      // A stray word: after an unquoted secret it is probably more of the secret.
      if (afterSecret) {
        // Skip the rest of this word (up to whitespace) entirely.
        while (i < s.length && !isSpace(s[i])) i++;
        out += REDACTED;
      } else {
        out += name;
      }
      continue;
    }
    i = j + 1;
    let k = i;
    while (k < s.length && isSpace(s[k])) k++;
    const valueStart = k;
    let quoted = false;
    if (s[k] === "'") {
      quoted = true;
      k++;
      while (k < s.length && s[k] !== "'") k += s[k] === '\\' ? 2 : 1;
      k = Math.min(k + 1, s.length);
    } else {
      while (k < s.length && !isSpace(s[k])) k += s[k] === '\\' ? 2 : 1;
      k = Math.min(k, s.length);
    }
    const secret = isSecretKeyword(name);
    out += s.slice(tokenStart, valueStart) + (secret ? REDACTED : s.slice(valueStart, k));
    afterSecret = secret && !quoted;
    i = k;
  }
  return out;
}
