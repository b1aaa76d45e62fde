/**
 * Questions asked of a catalog (the committed backups' records): which is the newest full backup, is a
 * new one due, which point-in-time window do they give. Pure: the records are read by the repository.
 * @module
 */
import type { Lsn } from '../lsn.js';
import type { BackupRecord } from './record.js';

/** The records in the order the backups started (their ids sort that way). */
export function sortBackups(records: readonly BackupRecord[]): BackupRecord[] {
  return [...records].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The full backup that ended last, or `undefined` when there is none. */
export function newestFullBackup(records: readonly BackupRecord[]): BackupRecord | undefined {
  let newest: BackupRecord | undefined;
  for (const r of records) {
    if (r.type === 'full' && (newest === undefined || r.endTime.getTime() > newest.endTime.getTime())) newest = r;
  }
  return newest;
}

/** What {@link backupDue} decides for `--if-older-than`. */
export type BackupDue = { due: true } | { due: false; newest: BackupRecord; ageMs: number };

/**
 * Whether a new backup is due: yes when no full backup ended less than `maxAgeMs` before `now`; no,
 * with that backup and its age, otherwise.
 */
export function backupDue(records: readonly BackupRecord[], maxAgeMs: number, now: Date): BackupDue {
  const newest = newestFullBackup(records);
  if (newest === undefined) return { due: true };
  const ageMs = now.getTime() - newest.endTime.getTime();
  return ageMs >= maxAgeMs ? { due: true } : { due: false, newest, ageMs };
}

/** One end of a point-in-time window. */
export interface PitrPoint {
  /** The time. */
  time: Date;
  /** The WAL position. */
  lsn: Lsn;
  /** The timeline. */
  timeline: number;
}

/** The span a restore can reach with the repository's content. */
export interface PitrWindow {
  /** The earliest reachable point: the end of the oldest backup. `null` without backups. */
  from: PitrPoint | null;
  /**
   * The latest reachable point: the end of the newest archived WAL segment, with the time it was stored
   * (the WAL in it was written before that time). `null` while the repository holds no WAL archive: only
   * the backups' own end points are then reachable, each by restoring that backup.
   */
  to: PitrPoint | null;
}

/**
 * The point-in-time window of a repository that holds these backups, and WAL archived up to `walEnd`
 * (the end of its newest archived segment; absent while it holds no WAL archive).
 */
export function pitrWindow(records: readonly BackupRecord[], walEnd?: PitrPoint): PitrWindow {
  let oldest: BackupRecord | undefined;
  for (const r of records) if (oldest === undefined || r.endTime.getTime() < oldest.endTime.getTime()) oldest = r;
  return {
    from: oldest === undefined ? null : { time: oldest.endTime, lsn: oldest.endLsn, timeline: oldest.endTimeline },
    to: walEnd ?? null,
  };
}
