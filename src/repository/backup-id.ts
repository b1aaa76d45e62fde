/**
 * Backup ids: the start time in UTC to the millisecond and the type, `20261206-033800.123F` for a full
 * backup and `...I` for an incremental one. Fixed width, so that ids sort as the backups started. Pure.
 * @module
 */
/** A full backup, or an incremental one (PostgreSQL 17+) that needs its parent chain. */
export type BackupType = 'full' | 'incremental';

const ID_PATTERN = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})\.(\d{3})([FI])$/;

/** The id of a backup of `type` started at `time`. */
export function backupIdFor(time: Date, type: BackupType): string {
  const iso = time.toISOString(); // 2026-12-06T03:38:00.123Z
  const date = iso.slice(0, 10).replaceAll('-', '');
  const clock = iso.slice(11, 19).replaceAll(':', '');
  return `${date}-${clock}.${iso.slice(20, 23)}${type === 'full' ? 'F' : 'I'}`;
}

/** Whether `id` has the shape of a backup id (so it can be a key segment and names a backup). */
export function isBackupId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** The start time a backup id encodes (to the millisecond), or `undefined` when `id` is not a backup id. */
export function backupIdTime(id: string): Date | undefined {
  const m = ID_PATTERN.exec(id);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!));
}
