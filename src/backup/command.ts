/**
 * The BASE_BACKUP command text, byte for byte as pg_basebackup builds it (its
 * `AppendPlainCommandOption` / `AppendStringCommandOption` / `AppendIntegerCommandOption` in
 * streamutil.c), so that server logs and `pg_stat_activity` look the same. Pure.
 *
 * pg_basebackup joins options oddly: each option is appended as `" NAME"` after a separator
 * (`", "` in the 15+ parenthesised syntax, `" "` in the 13/14 keyword syntax), which yields
 * two spaces between options (`BASE_BACKUP ( LABEL 'x',  PROGRESS)`). We keep that: the
 * server's scanner ignores the whitespace, and byte-exact output is easy to test.
 * @module
 */
import { quoteLiteral } from '../replication/commands.js';
import { serverCompressionOptions } from '../compress/server.js';
import type { ResolvedBaseBackupOptions } from './options.js';

/** The options that shape the command (a subset of {@link ResolvedBaseBackupOptions}). */
export type BaseBackupCommandOptions = Pick<
  ResolvedBaseBackupOptions,
  | 'label'
  | 'estimateSize'
  | 'wal'
  | 'checkpoint'
  | 'waitForWalArchive'
  | 'maxRateKBps'
  | 'tablespaceMap'
  | 'verifyChecksums'
  | 'manifest'
  | 'manifestForceEncode'
  | 'manifestChecksums'
> &
  Partial<Pick<ResolvedBaseBackupOptions, 'incrementalManifest' | 'compression'>>;

/**
 * Build the BASE_BACKUP command for a server of `serverMajor` (13–18): the keyword syntax
 * for 13/14 and the parenthesised option list with `TARGET 'client'` for 15+, followed by
 * `COMPRESSION` / `COMPRESSION_DETAIL` for a server-side compression spec.
 * @example
 * ```ts
 * buildBaseBackupCommand(resolveBaseBackupOptions(), 16)
 * // "BASE_BACKUP ( LABEL 'pg_basebackup base backup',  PROGRESS,  WAIT 0,  MANIFEST 'yes',  TARGET 'client')"
 * ```
 */
export function buildBaseBackupCommand(options: BaseBackupCommandOptions, serverMajor: number): string {
  const modern = serverMajor >= 15;
  let buf = '';
  const plain = (name: string): void => {
    if (buf.length > 0) buf += modern ? ', ' : ' ';
    buf += ` ${name}`;
  };
  const str = (name: string, value: string): void => {
    plain(name);
    buf += ` ${quoteLiteral(value)}`;
  };
  const int = (name: string, value: number): void => {
    plain(name);
    buf += ` ${value}`;
  };

  str('LABEL', options.label);
  if (options.estimateSize) plain('PROGRESS');
  if (options.wal === 'fetch') plain('WAL');
  if (options.checkpoint === 'fast') {
    if (modern) str('CHECKPOINT', 'fast');
    else plain('FAST');
  }
  if (!options.waitForWalArchive) {
    if (modern) int('WAIT', 0);
    else plain('NOWAIT');
  }
  if (options.maxRateKBps !== undefined) int('MAX_RATE', options.maxRateKBps);
  if (options.tablespaceMap) plain('TABLESPACE_MAP');
  if (!options.verifyChecksums) {
    if (modern) int('VERIFY_CHECKSUMS', 0);
    else plain('NOVERIFY_CHECKSUMS');
  }
  if (options.manifest) {
    str('MANIFEST', options.manifestForceEncode ? 'force-encode' : 'yes');
    if (options.manifestChecksums !== undefined) str('MANIFEST_CHECKSUMS', options.manifestChecksums);
  }
  if (modern) str('TARGET', 'client');
  // Server-side compression (15+; refused with a CompressionError on 13/14, before anything is sent).
  if (options.compression) for (const o of serverCompressionOptions(options.compression, serverMajor)) str(o.name, o.value);
  // 17+ only; the session refuses incremental backups on older servers before building this.
  if (options.incrementalManifest !== undefined && serverMajor >= 17) plain('INCREMENTAL');

  return modern ? `BASE_BACKUP (${buf})` : `BASE_BACKUP ${buf}`;
}
