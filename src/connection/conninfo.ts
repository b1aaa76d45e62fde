/**
 * libpq connection strings, parsed exactly as libpq parses them
 * (`conninfo_parse` and `conninfo_uri_parse_options` in fe-connect.c):
 * the `key=value` form and the `postgres://` / `postgresql://` URI form.
 * Pure: no I/O, no defaults. Error messages never contain a password.
 * @module
 */
import { ConfigError } from '../errors.js';
import { isLibpqKeyword, isSecretKeyword } from './keywords.js';
import { redactConnectionString } from './redact.js';

const URI_PREFIXES = ['postgresql://', 'postgres://'] as const;

/** Length of the URI designator `s` starts with, or 0 (libpq's `uri_prefix_length`: case-sensitive). */
export function uriPrefixLength(s: string): number {
  for (const p of URI_PREFIXES) if (s.startsWith(p)) return p.length;
  return 0;
}

/**
 * Whether `s` looks like a connection string rather than a plain database name
 * (libpq's `recognized_connection_string`: a URI prefix or an `=` anywhere).
 */
export function isConnectionString(s: string): boolean {
  return uriPrefixLength(s) !== 0 || s.includes('=');
}

/**
 * Parse a libpq connection string into the keywords it sets, with their values
 * unescaped / percent-decoded. Later settings of a keyword replace earlier ones, as in
 * libpq. A value may be the empty string (libpq then ignores the matching `PG*`
 * variable and uses the built-in default).
 *
 * Several hosts (`host=a,b` or `postgres://a,b:5433/`) are kept as the comma-separated
 * string libpq would store; resolution decides what to do with them.
 *
 * @throws {ConfigError} for a missing `=`, an unterminated quote, an unknown keyword,
 *   a bad percent-escape (or `%00`), or a malformed URI. Messages never show a password.
 * @example
 * ```ts
 * parseConnectionString("host=db port=5433 user='o\\'brien'")
 * // { host: 'db', port: '5433', user: "o'brien" }
 * parseConnectionString('postgresql://replicator@[::1]:5433/postgres?sslmode=require')
 * // { user: 'replicator', host: '::1', port: '5433', dbname: 'postgres', sslmode: 'require' }
 * ```
 */
export function parseConnectionString(s: string): Record<string, string> {
  return uriPrefixLength(s) !== 0 ? parseUri(s) : parseKeywordValue(s);
}

// C isspace() in the "C" locale, which is what libpq's parser relies on.
function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}

/**
 * Store one setting as libpq's `conninfo_storeval` does: `requiressl` is the
 * pre-9.x spelling of `sslmode` (a value starting with `1` means `require`, anything
 * else `prefer`); an unknown keyword is an error.
 */
function store(out: Record<string, string>, keyword: string, value: string, unknown: () => ConfigError): void {
  if (keyword === 'requiressl') {
    out['sslmode'] = value.startsWith('1') ? 'require' : 'prefer';
    return;
  }
  if (!isLibpqKeyword(keyword)) throw unknown();
  out[keyword] = value;
}

function parseKeywordValue(s: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  let i = 0;
  // The keyword whose value ended just before the current token, to avoid echoing
  // a fragment of an unquoted password that contained a space (`password=a b`).
  let previousWasSecret = false;
  const tokenName = (name: string) =>
    previousWasSecret ? 'the word after the password value (quote a password that contains spaces)' : `"${name}"`;

  while (i < s.length) {
    if (isSpace(s[i])) {
      i++;
      continue;
    }
    // The keyword runs to '=' or whitespace; whitespace may separate it from '='.
    const nameStart = i;
    while (i < s.length && s[i] !== '=' && !isSpace(s[i])) i++;
    const name = s.slice(nameStart, i);
    while (i < s.length && isSpace(s[i])) i++;
    if (s[i] !== '=') {
      throw new ConfigError(`missing "=" after ${tokenName(name)} in connection info string`);
    }
    i++;
    while (i < s.length && isSpace(s[i])) i++;

    let value = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) {
          throw new ConfigError(`unterminated quoted string in connection info string (the value of "${name}" has no closing ')`);
        }
        const c = s[i] as string;
        if (c === '\\') {
          i++;
          if (i < s.length) value += s[i++];
          continue;
        }
        if (c === "'") {
          i++;
          break;
        }
        value += c;
        i++;
      }
    } else {
      // libpq honours backslash escapes in unquoted values too.
      while (i < s.length && !isSpace(s[i])) {
        if (s[i] === '\\') {
          i++;
          if (i < s.length) value += s[i++];
        } else {
          value += s[i++];
        }
      }
    }

    store(
      out,
      name,
      value,
      () => new ConfigError(previousWasSecret ? `invalid connection option: ${tokenName(name)}` : `invalid connection option "${name}"`),
    );
    previousWasSecret = isSecretKeyword(name);
  }
  return out;
}

function hexDigit(c: string | undefined): number {
  if (c === undefined) return -1;
  const code = c.charCodeAt(0);
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/**
 * Percent-decode one URI component as libpq's `conninfo_uri_decode` does: `%XY` with
 * hex digits of either case, `%00` forbidden, everything else (including `+`) kept.
 * Decoded bytes are reassembled as UTF-8, like the C string libpq builds.
 * `what` names the component in errors; the value itself is only shown when it
 * cannot be a secret.
 */
export function uriDecode(str: string, what: string, showValue = true): string {
  if (!str.includes('%')) return str;
  const bytes: number[] = [];
  const shown = showValue ? `: "${str}"` : '';
  for (let i = 0; i < str.length; ) {
    const c = str[i] as string;
    if (c !== '%') {
      const cp = str.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
      i += ch.length;
      continue;
    }
    const hi = hexDigit(str[i + 1]);
    const lo = hexDigit(str[i + 2]);
    if (hi < 0 || lo < 0) {
      throw new ConfigError(`invalid percent-encoded token in the ${what} of the URI${shown} (write a literal "%" as %25)`);
    }
    const b = (hi << 4) | lo;
    if (b === 0) throw new ConfigError(`forbidden value %00 in percent-encoded value in the ${what} of the URI${shown}`);
    bytes.push(b);
    i += 3;
  }
  return Buffer.from(bytes).toString('utf8');
}

function parseUri(uri: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const shown = () => `"${redactConnectionString(uri)}"`;
  const start = uriPrefixLength(uri);
  let p = start;

  // libpq looks ahead for '@' before the first '/' (not '?'): that is the userinfo.
  let q = p;
  while (q < uri.length && uri[q] !== '@' && uri[q] !== '/') q++;
  if (uri[q] === '@') {
    const userinfo = uri.slice(p, q);
    const colon = userinfo.indexOf(':');
    const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    if (user !== '') out['user'] = uriDecode(user, 'user name');
    if (colon >= 0) {
      const password = userinfo.slice(colon + 1);
      if (password !== '') out['password'] = uriDecode(password, 'password', false);
    }
    p = q + 1;
  }

  // One or more netloc[:port], separated by commas.
  let hosts = '';
  let ports = '';
  let terminator = '';
  for (;;) {
    let host: string;
    if (uri[p] === '[') {
      const close = uri.indexOf(']', p + 1);
      if (close < 0) {
        throw new ConfigError(`end of string reached when looking for matching "]" in IPv6 host address in URI: ${shown()}`);
      }
      if (close === p + 1) throw new ConfigError(`IPv6 host address may not be empty in URI: ${shown()}`);
      host = uri.slice(p + 1, close);
      p = close + 1;
      const next = uri[p];
      if (next !== undefined && next !== ':' && next !== '/' && next !== '?' && next !== ',') {
        throw new ConfigError(`unexpected character "${next}" at position ${p + 1} in URI (expected ":" or "/"): ${shown()}`);
      }
    } else {
      const hostStart = p;
      while (p < uri.length && !':/?,'.includes(uri[p] as string)) p++;
      host = uri.slice(hostStart, p);
    }
    hosts += host;
    terminator = uri[p] ?? '';
    if (terminator === ':') {
      const portStart = ++p;
      while (p < uri.length && !'/?,'.includes(uri[p] as string)) p++;
      const port = uri.slice(portStart, p);
      // libpq would accept anything here and fail later with "invalid port number";
      // we fail now so that a password mistaken for a port (an unencoded '/' in it)
      // is never echoed.
      if (!/^[0-9]*$/.test(uriDecode(port, 'port', false).trim())) {
        throw new ConfigError(`invalid port number in URI ${shown()} (percent-encode "/", "@", ":" and "," in a user name or password)`);
      }
      ports += port;
      terminator = uri[p] ?? '';
    }
    if (terminator !== ',') break;
    p++;
    hosts += ',';
    ports += ',';
  }
  if (hosts !== '') out['host'] = uriDecode(hosts, 'host');
  if (ports !== '') out['port'] = uriDecode(ports, 'port');

  if (terminator === '/') {
    const dbStart = ++p;
    while (p < uri.length && uri[p] !== '?') p++;
    const dbname = uri.slice(dbStart, p);
    // An empty dbname is not stored, so that PGDATABASE still applies (as in libpq).
    if (dbname !== '') out['dbname'] = uriDecode(dbname, 'database name');
    terminator = uri[p] ?? '';
  }

  if (terminator === '?') parseUriParams(uri.slice(p + 1), out);
  return out;
}

function parseUriParams(params: string, out: Record<string, string>): void {
  let p = 0;
  // As in the key=value form: a fragment following a password that contained an
  // unencoded '&' must not be echoed.
  let previousWasSecret = false;
  while (p < params.length) {
    const start = p;
    let eq = -1;
    for (;;) {
      const c = params[p];
      if (c === '=') {
        if (eq >= 0) {
          throw new ConfigError(
            `extra key/value separator "=" in URI query parameter "${params.slice(start, eq)}" (percent-encode "=" in values as %3D)`,
          );
        }
        eq = p++;
      } else if (c === '&' || c === undefined) {
        if (eq < 0) {
          throw new ConfigError(
            previousWasSecret
              ? 'missing key/value separator "=" in the URI query parameter after the password (percent-encode "&" in a password as %26)'
              : `missing key/value separator "=" in URI query parameter "${params.slice(start, p)}"`,
          );
        }
        break;
      } else {
        p++;
      }
    }
    const rawKeyword = params.slice(start, eq);
    const rawValue = params.slice(eq + 1, p);
    if (params[p] === '&') p++;

    let keyword = uriDecode(rawKeyword, 'query parameter name');
    let value = uriDecode(rawValue, `value of query parameter "${keyword}"`, !isSecretKeyword(keyword));
    // libpq's JDBC compatibility: ssl=true means sslmode=require.
    if (keyword === 'ssl' && value === 'true') {
      keyword = 'sslmode';
      value = 'require';
    }
    store(
      out,
      keyword,
      value,
      () =>
        new ConfigError(
          previousWasSecret
            ? 'invalid URI query parameter after the password (percent-encode "&" in a password as %26)'
            : `invalid URI query parameter: "${keyword}"`,
        ),
    );
    previousWasSecret = isSecretKeyword(keyword);
  }
}
