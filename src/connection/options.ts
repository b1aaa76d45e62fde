/**
 * Connection option resolution: explicit options > connection string > `PG*`
 * environment > libpq's defaults, with libpq's validation rules and messages that
 * name the parameter, where it came from, and the allowed values.
 * @module
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { parseConnectionString } from './conninfo.js';
import { DEFAULT_PORT, defaultHost, defaultPassfile, osUserName, readPgEnvironment, type SourcedValue, type SystemHooks } from './env.js';
import { isSecretKeyword } from './keywords.js';
import type { ChannelBindingMode, ConnectionOptions, ResolvedConnectionOptions, SslMode } from './types.js';

const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];
const CHANNEL_BINDING_MODES: readonly ChannelBindingMode[] = ['disable', 'prefer', 'require'];
const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * Keywords libpq accepts that this library does not implement and that would change
 * what happens if silently ignored (security checks, routing, authentication).
 * Setting any of them to a non-empty value is a {@link ConfigError}.
 */
export const UNSUPPORTED_KEYWORDS: Readonly<Record<string, string>> = {
  service: 'connection service files are not supported: spell the parameters out (host, port, user, ...) instead of service / PGSERVICE',
  require_auth: 'require_auth is not supported yet: remove it (authentication methods are negotiated with the server)',
  requirepeer: 'requirepeer is not supported yet: remove it, or connect over TCP',
  sslcrldir: 'sslcrldir is not supported yet: concatenate the CRLs into one file and use sslcrl',
  options: 'options (server command-line options) is not supported yet: remove it or set the parameters on the server',
  scram_client_key: 'scram_client_key is not supported: give the password instead',
  scram_server_key: 'scram_server_key is not supported: give the password instead',
};

/**
 * Keywords accepted and deliberately not applied, because Node.js cannot set them
 * (`keepalives_interval`, `keepalives_count`, `tcp_user_timeout`) or because they only
 * matter for features this library does not use (GSSAPI, OAuth, client encoding).
 * Their values are still validated where libpq validates them.
 */
export const IGNORED_KEYWORDS: readonly string[] = [
  'client_encoding',
  'keepalives_interval',
  'keepalives_count',
  'tcp_user_timeout',
  'sslcompression',
  'sslsni',
  'sslkeylogfile',
  'krbsrvname',
  'gsslib',
  'gssdelegation',
  'oauth_issuer',
  'oauth_client_id',
  'oauth_client_secret',
  'oauth_scope',
  'replication',
  'max_protocol_version',
];

// Explicit option fields and the libpq keyword each one stands for.
const FIELD_KEYWORDS = {
  host: 'host',
  hostaddr: 'hostaddr',
  port: 'port',
  user: 'user',
  password: 'password',
  passfile: 'passfile',
  sslmode: 'sslmode',
  sslrootcert: 'sslrootcert',
  sslcert: 'sslcert',
  sslkey: 'sslkey',
  sslpassword: 'sslpassword',
  sslcrl: 'sslcrl',
  channelBinding: 'channel_binding',
  applicationName: 'application_name',
  connectTimeoutMs: 'connect_timeout',
  keepalives: 'keepalives',
  keepalivesIdleSec: 'keepalives_idle',
} as const satisfies Partial<Record<keyof ConnectionOptions, string>>;

/** Keywords whose values are held in their own resolved field and never copied into `params`. */
const SECRET_FIELDS = new Set(['password', 'sslpassword']);

function describeSource(s: SourcedValue): string {
  return s.source;
}

function invalid(keyword: string, s: SourcedValue, allowed: string): ConfigError {
  return new ConfigError(`invalid ${keyword} value "${s.value}" (from ${describeSource(s)}): ${allowed}`);
}

/**
 * libpq's `pqParseIntParam`: a base-10 integer that fits in 32 bits, with optional
 * leading and trailing whitespace.
 */
function parseIntParam(keyword: string, s: SourcedValue): number {
  const m = /^[ \t\n\r\v\f]*([+-]?[0-9]+)[ \t\n\r\v\f]*$/.exec(s.value);
  const n = m?.[1] !== undefined ? Number(m[1]) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > 2147483647 || n < -2147483648) {
    throw new ConfigError(
      `invalid integer value "${s.value}" for connection option "${keyword}" (from ${describeSource(s)}): give a whole number`,
    );
  }
  return n;
}

function checkEnum<T extends string>(keyword: string, s: SourcedValue | undefined, allowed: readonly T[]): T | undefined {
  if (s === undefined || s.value === '') return undefined;
  if (!(allowed as readonly string[]).includes(s.value)) throw invalid(keyword, s, `allowed values are ${allowed.join(', ')}`);
  return s.value as T;
}

function explicitSettings(input: ConnectionOptions): Map<string, SourcedValue> {
  const out = new Map<string, SourcedValue>();
  for (const [field, keyword] of Object.entries(FIELD_KEYWORDS) as [keyof typeof FIELD_KEYWORDS, string][]) {
    const v = input[field];
    if (v === undefined) continue;
    const source = `option "${field}"`;
    let value: string;
    if (typeof v === 'boolean') {
      value = v ? '1' : '0';
    } else if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0) {
        throw new ConfigError(`invalid ${field} value ${String(v)} (from ${source}): give a non-negative whole number`);
      }
      // connect_timeout is in seconds in libpq's vocabulary (and in primary_conninfo).
      value = field === 'connectTimeoutMs' ? String(v === 0 ? 0 : Math.max(1, Math.ceil(v / 1000))) : String(v);
    } else {
      value = v;
    }
    // Like PQconnectdbParams, an empty explicit value is no value at all.
    if (value !== '') out.set(keyword, { value, source });
  }
  return out;
}

/**
 * Merge the three sources keyword by keyword: an explicit option wins, then the
 * connection string (where even an empty value counts: libpq then skips the `PG*`
 * variable), then the environment.
 */
function mergeSettings(input: ConnectionOptions, env: Readonly<Record<string, string | undefined>>): Map<string, SourcedValue> {
  const merged = readPgEnvironment(env);
  if (input.connectionString !== undefined && input.connectionString !== '') {
    const fromString = parseConnectionString(input.connectionString);
    for (const [k, value] of Object.entries(fromString)) merged.set(k, { value, source: 'the connection string' });
  }
  for (const [k, v] of explicitSettings(input)) merged.set(k, v);
  return merged;
}

/**
 * Resolve connection options as libpq would: explicit fields > `connectionString`
 * > `PG*` variables from `input.env ?? process.env` > defaults (the first existing of
 * `/var/run/postgresql` and `/tmp` as socket directory, port 5432, the OS user name,
 * `sslmode=prefer`, `channel_binding=prefer`, `~/.pgpass`).
 *
 * `.pgpass` is not read here: the connection reads it only if the server asks for a
 * password (see {@link lookupPgpass}).
 *
 * @param hooks Replace the machine lookups (socket directory existence, OS user, home) in tests.
 * @throws {ConfigError} for a malformed connection string, an invalid value (the message
 *   names the parameter, its source and the allowed values), several hosts, or a libpq
 *   parameter this library does not implement that would change behaviour.
 * @example
 * ```ts
 * const o = resolveConnectionOptions({ connectionString: 'host=db user=replicator', env: {} });
 * o.port // 5432
 * ```
 */
export function resolveConnectionOptions(input: ConnectionOptions, hooks: SystemHooks = {}): ResolvedConnectionOptions {
  const env = input.env ?? process.env;
  const set = mergeSettings(input, env);
  const get = (k: string): SourcedValue | undefined => {
    const v = set.get(k);
    return v === undefined || v.value === '' ? undefined : v;
  };
  const str = (k: string): string | undefined => get(k)?.value;

  for (const [keyword, advice] of Object.entries(UNSUPPORTED_KEYWORDS)) {
    const s = get(keyword);
    if (s !== undefined) throw new ConfigError(`${advice} (${keyword} set by ${describeSource(s)})`);
  }

  for (const k of ['host', 'hostaddr', 'port']) {
    const s = get(k);
    if (s?.value.includes(',')) {
      throw new ConfigError(
        `several hosts are not supported yet (${k}="${s.value}" from ${describeSource(s)}): give a single host and port`,
      );
    }
  }

  const hostaddr = str('hostaddr');
  if (hostaddr !== undefined && isIP(hostaddr) === 0) {
    throw invalid('hostaddr', get('hostaddr') as SourcedValue, 'give a numeric IPv4 or IPv6 address (use host for a name)');
  }
  const host = str('host') ?? hostaddr ?? defaultHost(hooks);

  let port = DEFAULT_PORT;
  const portSetting = get('port');
  if (portSetting !== undefined) {
    port = parseIntParam('port', portSetting);
    if (port < 1 || port > 65535) throw invalid('port', portSetting, 'give a port number between 1 and 65535');
  }

  const user = str('user') ?? osUserName(hooks);
  if (user === undefined) {
    throw new ConfigError('could not determine the operating-system user name: set the user option or PGUSER');
  }

  // sslrootcert=system makes the default sslmode verify-full and forbids weaker ones (libpq 16+).
  const sslrootcert = str('sslrootcert');
  let sslmode = checkEnum('sslmode', get('sslmode'), SSL_MODES);
  if (sslrootcert === 'system') {
    if (sslmode === undefined) sslmode = 'verify-full';
    else if (sslmode !== 'verify-full') {
      throw new ConfigError(`weak sslmode "${sslmode}" may not be used with sslrootcert=system (use "verify-full")`);
    }
  }
  sslmode ??= 'prefer';
  if (sslmode === 'verify-full' && str('host') === undefined && hostaddr !== undefined) {
    throw new ConfigError(
      'host name must be specified for a verified SSL connection (sslmode=verify-full with only hostaddr): set host too',
    );
  }

  const channelBinding = checkEnum('channel_binding', get('channel_binding'), CHANNEL_BINDING_MODES) ?? 'prefer';

  for (const k of ['ssl_min_protocol_version', 'ssl_max_protocol_version']) {
    const s = get(k);
    if (s !== undefined && !TLS_VERSIONS.some((v) => v.toLowerCase() === s.value.toLowerCase())) {
      throw invalid(k, s, `allowed values are ${TLS_VERSIONS.join(', ')}`);
    }
  }
  const minTls = str('ssl_min_protocol_version')?.toLowerCase();
  const maxTls = str('ssl_max_protocol_version')?.toLowerCase();
  if (minTls !== undefined && maxTls !== undefined && minTls !== 'tlsv1' && (maxTls === 'tlsv1' || minTls > maxTls)) {
    throw new ConfigError(
      `invalid SSL protocol version range: ssl_min_protocol_version=${minTls} is above ssl_max_protocol_version=${maxTls}`,
    );
  }

  const certMode = checkEnum('sslcertmode', get('sslcertmode'), ['disable', 'allow', 'require']);
  if (certMode === 'require') {
    throw new ConfigError('sslcertmode=require is not supported yet: use sslcertmode=allow (the default) or disable');
  }
  const gssencmode = checkEnum('gssencmode', get('gssencmode'), ['disable', 'prefer', 'require']);
  if (gssencmode === 'require') {
    throw new ConfigError('gssencmode=require is not supported: GSSAPI encryption is not implemented; use sslmode for encryption');
  }
  const negotiation = checkEnum('sslnegotiation', get('sslnegotiation'), ['postgres', 'direct']);
  if (negotiation === 'direct') {
    throw new ConfigError('sslnegotiation=direct is not supported yet: remove it (the default, postgres, works with every server)');
  }
  const tsa = checkEnum('target_session_attrs', get('target_session_attrs'), [
    'any',
    'read-write',
    'read-only',
    'primary',
    'standby',
    'prefer-standby',
  ]);
  if (tsa !== undefined && tsa !== 'any') {
    throw new ConfigError(`target_session_attrs=${tsa} is not supported yet (it only selects among several hosts): remove it or use "any"`);
  }
  checkEnum('load_balance_hosts', get('load_balance_hosts'), ['disable', 'random']);
  const minProto = checkEnum('min_protocol_version', get('min_protocol_version'), ['3.0', '3.2', 'latest']);
  if (minProto !== undefined && minProto !== '3.0') {
    throw new ConfigError(`min_protocol_version=${minProto} cannot be satisfied: this library speaks protocol 3.0`);
  }
  checkEnum('max_protocol_version', get('max_protocol_version'), ['3.0', '3.2', 'latest']);
  for (const k of ['keepalives_interval', 'keepalives_count', 'tcp_user_timeout']) {
    const s = get(k);
    if (s !== undefined) parseIntParam(k, s);
  }

  // libpq's useKeepalives: strtol must consume the whole value; non-zero means on.
  let keepalives = true;
  const ka = get('keepalives');
  if (ka !== undefined) {
    if (!/^[ \t\n\r\v\f]*[+-]?[0-9]+$/.test(ka.value)) throw invalid('keepalives', ka, 'give 1 (on) or 0 (off)');
    keepalives = Number(ka.value) !== 0;
  }
  let keepalivesIdleSec: number | undefined;
  const kaIdle = get('keepalives_idle');
  if (kaIdle !== undefined) keepalivesIdleSec = Math.max(0, parseIntParam('keepalives_idle', kaIdle));

  // libpq: 0 or negative means no limit; 1 is raised to 2 because of rounding.
  let connectTimeoutMs: number | undefined;
  if (input.connectTimeoutMs !== undefined) {
    connectTimeoutMs = input.connectTimeoutMs === 0 ? undefined : input.connectTimeoutMs;
  } else {
    const ct = get('connect_timeout');
    if (ct !== undefined) {
      const sec = parseIntParam('connect_timeout', ct);
      connectTimeoutMs = sec <= 0 ? undefined : Math.max(2, sec) * 1000;
    }
  }

  let sslcert = str('sslcert');
  let sslkey = str('sslkey');
  if (certMode === 'disable') {
    // libpq then never sends a client certificate, whatever sslcert says.
    sslcert = undefined;
    sslkey = undefined;
  }

  const params: Record<string, string> = {};
  for (const [k, v] of set) {
    if (v.value === '' || SECRET_FIELDS.has(k) || isSecretKeyword(k)) continue;
    params[k] = v.value;
  }

  return {
    host,
    hostaddr,
    port,
    user,
    password: str('password'),
    passfile: str('passfile') ?? defaultPassfile(env, hooks),
    dbname: str('dbname'),
    sslmode,
    sslrootcert,
    sslcert,
    sslkey,
    sslpassword: str('sslpassword'),
    sslcrl: str('sslcrl'),
    channelBinding,
    applicationName: str('application_name') ?? str('fallback_application_name'),
    connectTimeoutMs,
    keepalives,
    keepalivesIdleSec,
    params,
  };
}
