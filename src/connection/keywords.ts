/**
 * The libpq connection keywords we recognise, in libpq's own order
 * (`PQconninfoOptions` in fe-connect.c), with the `PG*` variable that is
 * their fallback. The order matters: `pg_basebackup -R` writes
 * `primary_conninfo` in this order, and we do the same.
 * @module
 */

/** One libpq connection keyword. */
export interface LibpqKeyword {
  /** The keyword as libpq spells it. */
  readonly keyword: string;
  /** The environment variable libpq falls back to, if any. */
  readonly envVar?: string;
  /** A secret: never printed (libpq marks these with display character `*`). */
  readonly secret?: true;
}

/**
 * Every keyword libpq 18 accepts, in libpq's order. Unknown keywords are an error
 * in libpq (`invalid connection option "x"`), and so they are here.
 */
export const LIBPQ_KEYWORDS: readonly LibpqKeyword[] = [
  { keyword: 'service', envVar: 'PGSERVICE' },
  { keyword: 'user', envVar: 'PGUSER' },
  { keyword: 'password', envVar: 'PGPASSWORD', secret: true },
  { keyword: 'passfile', envVar: 'PGPASSFILE' },
  { keyword: 'channel_binding', envVar: 'PGCHANNELBINDING' },
  { keyword: 'connect_timeout', envVar: 'PGCONNECT_TIMEOUT' },
  { keyword: 'dbname', envVar: 'PGDATABASE' },
  { keyword: 'host', envVar: 'PGHOST' },
  { keyword: 'hostaddr', envVar: 'PGHOSTADDR' },
  { keyword: 'port', envVar: 'PGPORT' },
  { keyword: 'client_encoding', envVar: 'PGCLIENTENCODING' },
  { keyword: 'options', envVar: 'PGOPTIONS' },
  { keyword: 'application_name', envVar: 'PGAPPNAME' },
  { keyword: 'fallback_application_name' },
  { keyword: 'keepalives' },
  { keyword: 'keepalives_idle' },
  { keyword: 'keepalives_interval' },
  { keyword: 'keepalives_count' },
  { keyword: 'tcp_user_timeout' },
  { keyword: 'sslmode', envVar: 'PGSSLMODE' },
  { keyword: 'sslnegotiation', envVar: 'PGSSLNEGOTIATION' },
  { keyword: 'sslcompression', envVar: 'PGSSLCOMPRESSION' },
  { keyword: 'sslcert', envVar: 'PGSSLCERT' },
  { keyword: 'sslkey', envVar: 'PGSSLKEY' },
  { keyword: 'sslcertmode', envVar: 'PGSSLCERTMODE' },
  { keyword: 'sslpassword', secret: true },
  { keyword: 'sslkeylogfile' },
  { keyword: 'sslrootcert', envVar: 'PGSSLROOTCERT' },
  { keyword: 'sslcrl', envVar: 'PGSSLCRL' },
  { keyword: 'sslcrldir', envVar: 'PGSSLCRLDIR' },
  { keyword: 'sslsni', envVar: 'PGSSLSNI' },
  { keyword: 'requirepeer', envVar: 'PGREQUIREPEER' },
  { keyword: 'require_auth', envVar: 'PGREQUIREAUTH' },
  { keyword: 'min_protocol_version', envVar: 'PGMINPROTOCOLVERSION' },
  { keyword: 'max_protocol_version', envVar: 'PGMAXPROTOCOLVERSION' },
  { keyword: 'ssl_min_protocol_version', envVar: 'PGSSLMINPROTOCOLVERSION' },
  { keyword: 'ssl_max_protocol_version', envVar: 'PGSSLMAXPROTOCOLVERSION' },
  { keyword: 'gssencmode', envVar: 'PGGSSENCMODE' },
  { keyword: 'krbsrvname', envVar: 'PGKRBSRVNAME' },
  { keyword: 'gsslib', envVar: 'PGGSSLIB' },
  { keyword: 'gssdelegation', envVar: 'PGGSSDELEGATION' },
  { keyword: 'scram_client_key', secret: true },
  { keyword: 'scram_server_key', secret: true },
  { keyword: 'replication' },
  { keyword: 'target_session_attrs', envVar: 'PGTARGETSESSIONATTRS' },
  { keyword: 'load_balance_hosts', envVar: 'PGLOADBALANCEHOSTS' },
  { keyword: 'oauth_issuer' },
  { keyword: 'oauth_client_id' },
  { keyword: 'oauth_client_secret', secret: true },
  { keyword: 'oauth_scope' },
];

const byKeyword = new Map(LIBPQ_KEYWORDS.map((k) => [k.keyword, k]));

/** Whether `keyword` is a libpq connection keyword (`requiressl`, an alias, is not listed). */
export function isLibpqKeyword(keyword: string): boolean {
  return byKeyword.has(keyword);
}

/** Whether the value of `keyword` is a secret that must never be printed. */
export function isSecretKeyword(keyword: string): boolean {
  return byKeyword.get(keyword)?.secret === true;
}
