/**
 * The recovery settings a restore writes into `postgresql.auto.conf`: `restore_command` running
 * `pgbb restore-wal`, the `recovery_target*` settings, and nothing left over from the backed-up server
 * (a stale `primary_conninfo`, `restore_command` or target would make the new server follow the old
 * primary or stop at someone else's target). Pure: the caller reads and writes the file.
 * @module
 */
import { ConfigError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import type { TargetTimeline } from './preflight.js';
import { escapeConfValue } from './standby.js';
import type { RecoveryTarget } from './wal-targets.js';

/** The file whose presence makes the server start a targeted (archive) recovery. Written empty. */
export const RECOVERY_SIGNAL_FILE = 'recovery.signal';

/** `recovery_target_action`. */
export type TargetAction = 'pause' | 'promote' | 'shutdown';

/** What the recovery settings say. */
export interface RecoverySettings {
  /** The full `restore_command`, already shell-quoted (see {@link restoreCommandLine}). */
  restoreCommand: string;
  target?: RecoveryTarget | undefined;
  /** `recovery_target_inclusive = false` when true. @default false */
  exclusive?: boolean | undefined;
  /** @default PostgreSQL's (latest) */
  targetTimeline?: TargetTimeline | undefined;
  /** @default PostgreSQL's (pause) */
  targetAction?: TargetAction | undefined;
}

/** Settings a restore replaces: recovery and replication settings of the server the backup came from. */
const STALE_SETTING =
  /^\s*(restore_command|recovery_target\w*|primary_conninfo|primary_slot_name|recovery_end_command|archive_cleanup_command|recovery_min_apply_delay)\s*(=|\s)/i;

/**
 * Quote a word for the POSIX shell that runs `restore_command` (`/bin/sh -c`): single quotes, a `'`
 * inside written `'\''`, and `%` doubled because PostgreSQL replaces `%f`, `%p`, `%r` and `%%` in the
 * command before the shell sees it.
 */
export function shellWord(word: string): string {
  return `'${word.replace(/'/g, `'\\''`).replace(/%/g, '%%')}'`;
}

/**
 * The `restore_command` that runs `pgbb restore-wal` with absolute paths.
 * @param pgbb the words that run pgbb: the node executable and the CLI's `main.js`.
 * @example
 * ```ts
 * restoreCommandLine(['/usr/bin/node', '/opt/pgbb/dist/cli/main.js'], '/srv/wal')
 * // `'/usr/bin/node' '/opt/pgbb/dist/cli/main.js' restore-wal "%f" "%p" --wal-archive '/srv/wal'`
 * ```
 */
export function restoreCommandLine(pgbb: readonly string[], archiveDir: string): string {
  return restoreWalInvocation(pgbb, '--wal-archive', archiveDir);
}

/**
 * The `restore_command` that runs `pgbb restore-wal --repo` on a repository. The address holds no
 * credentials (addresses cannot): `restore-wal` finds them as every command does, through the AWS SDK's
 * provider chain in the server's environment.
 * @example
 * ```ts
 * repositoryRestoreCommandLine(['/usr/bin/node', '/opt/pgbb/dist/cli/main.js'], 's3://backups/db1?region=eu-west-1')
 * // `'/usr/bin/node' '/opt/pgbb/dist/cli/main.js' restore-wal "%f" "%p" --repo 's3://backups/db1?region=eu-west-1'`
 * ```
 */
export function repositoryRestoreCommandLine(pgbb: readonly string[], address: string): string {
  return restoreWalInvocation(pgbb, '--repo', address);
}

function restoreWalInvocation(pgbb: readonly string[], flag: '--wal-archive' | '--repo', value: string): string {
  return `${pgbb.map(shellWord).join(' ')} restore-wal "%f" "%p" ${flag} ${shellWord(value)}`;
}

/** The `recovery_target*` lines for a target. */
function targetLines(s: RecoverySettings): string[] {
  const t = s.target;
  const lines: string[] = [];
  if (t) {
    switch (t.kind) {
      case 'lsn':
        lines.push(`recovery_target_lsn = ${escapeConfValue(formatLsn(t.lsn))}`);
        break;
      case 'name':
        lines.push(`recovery_target_name = ${escapeConfValue(t.name)}`);
        break;
      case 'time':
        lines.push(`recovery_target_time = ${escapeConfValue(isoMicroseconds(t.time, t.microsecond ?? 0))}`);
        break;
      case 'xid':
        lines.push(`recovery_target_xid = ${escapeConfValue(String(t.xid))}`);
        break;
      case 'immediate':
        lines.push(`recovery_target = 'immediate'`);
        break;
    }
    if (s.exclusive && t.kind !== 'immediate' && t.kind !== 'name') lines.push(`recovery_target_inclusive = false`);
    if (s.targetAction) lines.push(`recovery_target_action = ${escapeConfValue(s.targetAction)}`);
  }
  if (s.targetTimeline !== undefined) lines.push(`recovery_target_timeline = ${escapeConfValue(String(s.targetTimeline))}`);
  return lines;
}

/**
 * `2026-01-31 12:00:00.123456+00`: a Date and its microseconds as `recovery_target_time` takes them (its
 * check refuses zone abbreviations such as `Z`, which are not loaded when settings are read).
 */
export function isoMicroseconds(time: Date, microsecond: number): string {
  return time
    .toISOString()
    .replace('T', ' ')
    .replace(/\.(\d{3})Z$/, (_m, ms: string) => `.${ms}${String(microsecond).padStart(3, '0')}+00`);
}

/**
 * The new `postgresql.auto.conf`: the backup's, without stale recovery and replication settings, then
 * the restore's settings.
 */
export function recoveryAutoConf(previous: string, s: RecoverySettings | undefined): string {
  const kept = previous.split('\n').filter((l) => !STALE_SETTING.test(l));
  while (kept.length > 0 && kept.at(-1) === '') kept.pop();
  const lines = [...kept];
  if (s) {
    lines.push('# Added by pgbb restore', `restore_command = ${escapeConfValue(s.restoreCommand)}`, ...targetLines(s));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Parse a `--target-time`: an ISO 8601 or PostgreSQL-style timestamp with an explicit zone
 * (`2026-01-01 12:00:00+00`, `2026-01-01T12:00:00.5Z`). A time without a zone is refused, since the new
 * server would read it in its own `timezone`.
 */
export function parseTargetTime(text: string): { time: Date; microsecond: number } {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i.exec(text.trim());
  if (!m) {
    throw new ConfigError(
      `invalid target time "${text}": give a timestamp with its time zone, e.g. "2026-01-31 12:00:00+00" or "2026-01-31T12:00:00Z"`,
    );
  }
  let zone = m[3]!.toUpperCase();
  if (zone !== 'Z') zone = zone.length === 3 ? `${zone}:00` : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const frac = /\.(\d+)$/.exec(m[2]!)?.[1] ?? '';
  if (frac.length > 6) throw new ConfigError(`invalid target time "${text}": at most 6 fractional digits (microseconds)`);
  const d = new Date(`${m[1]!}T${m[2]!.replace(/\.\d+$/, '')}.${(`${frac}000`).slice(0, 3)}${zone}`);
  if (Number.isNaN(d.getTime())) throw new ConfigError(`invalid target time "${text}"`);
  return { time: d, microsecond: Number(`${frac}000000`.slice(3, 6)) };
}

/** Parse a `--target-xid` (a 32-bit transaction id, as `recovery_target_xid` takes it). */
export function parseTargetXid(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 3 || Number(text) > 0xffffffff) {
    throw new ConfigError(`invalid target transaction id "${text}": give a normal transaction id (3 to 4294967295)`);
  }
  return Number(text);
}

/** Parse a `--target-timeline`: `current`, `latest` or a timeline number. */
export function parseTargetTimeline(text: string): TargetTimeline {
  if (text === 'current' || text === 'latest') return text;
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 0xffffffff) return Number(text);
  throw new ConfigError(`invalid target timeline "${text}": give current, latest or a timeline number`);
}
