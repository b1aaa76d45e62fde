import type { TlsMaterial } from './tls.js';

/** Role names every harness cluster has, and the password of those that have one. */
export const ROLES = {
  /** REPLICATION LOGIN, `trust` from 127.0.0.1/::1 and over the socket. */
  trust: 'rep_trust',
  /** REPLICATION LOGIN with an md5 hash, `md5` in pg_hba.conf (so the server really runs the md5 exchange). */
  md5: 'rep_md5',
  /** REPLICATION LOGIN with a SCRAM-SHA-256 hash, `scram-sha-256` in pg_hba.conf. */
  scram: 'rep_scram',
  /** REPLICATION LOGIN, `password` (cleartext) in pg_hba.conf. */
  password: 'rep_password',
  /** REPLICATION LOGIN, `scram-sha-256` over `hostssl` only: a non-TLS attempt finds no pg_hba.conf entry. */
  sslOnly: 'rep_sslonly',
  /** LOGIN without REPLICATION, `trust`: for "must be superuser or replication role" errors. */
  noReplication: 'pgbb_norepl',
  /** The password of md5, scram, password and sslOnly; it needs percent-encoding in a URI (`@ : / space %`). */
  secret: 'p@ss:w/rd %1',
} as const;

/** The role names and password of a cluster; see {@link ROLES}. */
export type Roles = typeof ROLES;

/** The harness's bootstrap superuser (initdb -U postgres). */
export const SUPERUSER = 'postgres';

function sqlLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * Role creation, run once per template. password_encryption is a session setting read by CREATE ROLE ...
 * PASSWORD, so setting it to md5 first makes the md5 role store an md5 hash; with a SCRAM hash the server would
 * answer an `md5` pg_hba.conf line with a SCRAM exchange instead (PostgreSQL 10+ behaviour).
 */
export function roleSql(): string[] {
  const pw = sqlLiteral(ROLES.secret);
  return [
    `CREATE ROLE ${ROLES.trust} LOGIN REPLICATION`,
    `SET password_encryption = 'md5'`,
    `CREATE ROLE ${ROLES.md5} LOGIN REPLICATION PASSWORD ${pw}`,
    `SET password_encryption = 'scram-sha-256'`,
    `CREATE ROLE ${ROLES.scram} LOGIN REPLICATION PASSWORD ${pw}`,
    `CREATE ROLE ${ROLES.password} LOGIN REPLICATION PASSWORD ${pw}`,
    `CREATE ROLE ${ROLES.sslOnly} LOGIN REPLICATION PASSWORD ${pw}`,
    `CREATE ROLE ${ROLES.noReplication} LOGIN`,
  ];
}

/** Settings every new harness cluster gets, appended to postgresql.conf (later lines win). */
export function baseConf(tls: TlsMaterial | undefined): Record<string, string> {
  const conf: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    wal_level: 'replica',
    max_wal_senders: '10',
    max_replication_slots: '10',
    // Small, so WAL recycling happens in tests that generate a few segments; 0 would let a slow test lose WAL.
    wal_keep_size: '64MB',
    max_connections: '40',
    shared_buffers: '32MB',
    // fsync stays on (restore tests check durability) and synchronous_commit keeps its default.
    logging_collector: 'off',
    log_min_messages: 'warning',
    log_line_prefix: '%m [%p] %q%u@%d ',
    log_replication_commands: 'on',
    log_connections: 'on',
    // Keep the server from trying to reach a non-existent /var/run/postgresql when a setting is forgotten.
    unix_socket_permissions: '0777',
    ssl: tls ? 'on' : 'off',
  };
  if (tls) {
    conf.ssl_cert_file = tls.serverCertFile;
    conf.ssl_key_file = tls.serverKeyFile;
    // Lets tests try client certificates signed by the harness CA.
    conf.ssl_ca_file = tls.caFile;
  }
  return conf;
}

/** Render settings as postgresql.conf lines, quoting every value (valid for numbers, booleans and enums alike). */
export function renderConf(conf: Record<string, string>): string {
  return Object.entries(conf)
    .map(([k, v]) => `${k} = ${sqlLiteral(v)}`)
    .join('\n');
}

/**
 * pg_hba.conf for a harness cluster: `extra` lines first (first match wins), then the superuser over the socket,
 * then one line per role and method for both `all` and `replication` on 127.0.0.1/32 and ::1/128. `host` lines
 * match TLS and plain connections alike; the sslOnly role only has `hostssl` lines.
 */
export function renderHba(extra: readonly string[] = []): string {
  const lines: string[] = ['# pgbb test harness', ...extra];
  lines.push(`local all ${SUPERUSER} trust`);
  lines.push(`local all ${ROLES.trust} trust`);
  lines.push(`local replication ${ROLES.trust} trust`);
  lines.push(`local all ${ROLES.noReplication} trust`);
  const methods: [string, string, string][] = [
    ['host', SUPERUSER, 'trust'],
    ['host', ROLES.trust, 'trust'],
    ['host', ROLES.md5, 'md5'],
    ['host', ROLES.scram, 'scram-sha-256'],
    ['host', ROLES.password, 'password'],
    ['hostssl', ROLES.sslOnly, 'scram-sha-256'],
    ['host', ROLES.noReplication, 'trust'],
  ];
  for (const [type, role, method] of methods) {
    for (const db of ['all', 'replication']) {
      for (const addr of ['127.0.0.1/32', '::1/128']) lines.push(`${type} ${db} ${role} ${addr} ${method}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
