/**
 * What `pg_basebackup -R` writes for a PostgreSQL 12+ standby: `primary_conninfo`
 * (and `primary_slot_name`) appended to `postgresql.auto.conf`, plus an empty
 * `standby.signal`. Mirrors `GenerateRecoveryConfig` in src/fe_utils/recovery_gen.c.
 * Pure: the sinks write the files.
 * @module
 */
import { ConfigError } from '../errors.js';
import { LIBPQ_KEYWORDS } from '../connection/keywords.js';
import type { ResolvedConnectionOptions } from '../connection/types.js';

/** The file whose presence makes a 12+ server start as a standby. Written empty. */
export const STANDBY_SIGNAL_FILE = 'standby.signal';

/** The file the recovery settings are appended to. */
export const AUTO_CONF_FILE = 'postgresql.auto.conf';

/** Options of {@link buildPrimaryConninfo}. */
export interface PrimaryConninfoOptions {
  /**
   * Write the password used for the backup into `primary_conninfo`. pg_basebackup does
   * when the connection was given one (option, connection string, `PGPASSWORD` or
   * prompt; never one found in `.pgpass`). Turn off to rely on the standby's own
   * `.pgpass` instead of leaving a password in the data directory. Also governs
   * `sslpassword`, which pg_basebackup writes too.
   */
  includePassword: boolean;
  /**
   * Append `dbname` when the user gave one (connection string or `PGDATABASE`), as
   * pg_basebackup 17+ does so that the standby can synchronize logical slots
   * (`sync_replication_slots`). Older walreceivers ignore it.
   * @default true
   */
  includeDbname?: boolean;
}

/**
 * Quote a value for a libpq `key=value` connection string, as libpq's own
 * `appendConnStrVal` does: left bare when it is one or more of `[A-Za-z0-9_.]`,
 * otherwise single-quoted with `'` and `\` escaped by a backslash.
 */
export function quoteConninfoValue(value: string): string {
  if (/^[A-Za-z0-9_.]+$/.test(value)) return value;
  return `'${value.replace(/['\\]/g, (c) => `\\${c}`)}'`;
}

// Options libpqwalreceiver sets itself; pg_basebackup leaves them out.
const OMITTED = new Set(['replication', 'dbname', 'fallback_application_name']);

/**
 * The `primary_conninfo` pg_basebackup would write for this connection: every
 * setting in effect, in libpq's keyword order, except `replication`, `dbname` and
 * `fallback_application_name` (the walreceiver sets those), then `dbname` last when
 * the user gave one (pg_basebackup 17+).
 *
 * libpq reports `user`, `port`, `sslmode` and `channel_binding` even when they are
 * defaults, so they are always written. Keywords libpq fills with other compiled-in
 * defaults (`sslcompression=0`, `gssencmode=prefer`, `krbsrvname=postgres`, ...) and the
 * computed default `passfile` are left out: the standby's libpq supplies the same
 * defaults itself. A `.pgpass` password is never written.
 *
 * @example
 * ```ts
 * buildPrimaryConninfo(opts, { includePassword: true })
 * // "user=replicator password='s3 cr\\'t' channel_binding=prefer host=db port=5432 sslmode=prefer"
 * ```
 */
export function buildPrimaryConninfo(o: ResolvedConnectionOptions, opts: PrimaryConninfoOptions): string {
  const pieces: string[] = [];
  for (const { keyword } of LIBPQ_KEYWORDS) {
    if (OMITTED.has(keyword)) continue;
    let value: string | undefined;
    switch (keyword) {
      case 'user':
        value = o.user;
        break;
      case 'password':
        value = opts.includePassword ? o.password : undefined;
        break;
      case 'sslpassword':
        value = opts.includePassword ? o.sslpassword : undefined;
        break;
      case 'port':
        value = String(o.port);
        break;
      case 'sslmode':
        value = o.sslmode;
        break;
      case 'channel_binding':
        value = o.channelBinding;
        break;
      default:
        value = o.params[keyword];
    }
    if (value === undefined || value === '') continue;
    pieces.push(`${keyword}=${quoteConninfoValue(value)}`);
  }
  if ((opts.includeDbname ?? true) && o.dbname !== undefined && o.dbname !== '') {
    pieces.push(`dbname=${quoteConninfoValue(o.dbname)}`);
  }
  return pieces.join(' ');
}

/**
 * Quote a value for postgresql.conf / postgresql.auto.conf: single quotes around it,
 * with `'` and `\` doubled (libpq's `escape_single_quotes_ascii`, which the server's
 * configuration-file scanner undoes). Returns the quoted value.
 *
 * @example
 * ```ts
 * escapeConfValue("user=a password='x'") // "'user=a password=''x'''"
 * ```
 */
export function escapeConfValue(value: string): string {
  return `'${value.replace(/['\\]/g, (c) => c + c)}'`;
}

/**
 * Replication slot names the server accepts (`ReplicationSlotValidateName`): lower-case
 * letters, digits and underscores, at most 63 bytes. pg_basebackup writes the slot name
 * unescaped, relying on this.
 */
export function isValidSlotName(name: string): boolean {
  return /^[a-z0-9_]{1,63}$/.test(name);
}

/**
 * The lines `pg_basebackup -R` appends to postgresql.auto.conf on a 12+ server.
 *
 * @throws {ConfigError} when `slotName` is not a valid replication slot name.
 * @example
 * ```ts
 * recoveryConfigContents({ primaryConninfo: 'host=db port=5432', slotName: 'standby1' })
 * // "primary_conninfo = 'host=db port=5432'\nprimary_slot_name = 'standby1'\n"
 * ```
 */
export function recoveryConfigContents(opts: { primaryConninfo: string; slotName?: string | undefined }): string {
  let out = `primary_conninfo = ${escapeConfValue(opts.primaryConninfo)}\n`;
  if (opts.slotName !== undefined) {
    if (!isValidSlotName(opts.slotName)) {
      throw new ConfigError(
        `invalid replication slot name "${opts.slotName}": use only lower-case letters, digits and underscores (at most 63)`,
      );
    }
    out += `primary_slot_name = '${opts.slotName}'\n`;
  }
  return out;
}
