/**
 * The parts of `backup_label` a backup chain is checked with (pg_combinebackup's backup_label.c):
 * `START WAL LOCATION`, `START TIMELINE`, and on 17+ incremental backups `INCREMENTAL FROM LSN` /
 * `INCREMENTAL FROM TLI`. Pure.
 * @module
 */
import { CombineError } from '../errors.js';
import type { Lsn } from '../lsn.js';

/** What a `backup_label` says about where a backup sits in a chain. */
export interface BackupLabelInfo {
  startLsn: Lsn;
  startTimeline: number;
  /** The start of the backup this one is incremental to; `undefined` for a full backup. */
  incrementalFromLsn: Lsn | undefined;
  incrementalFromTimeline: number | undefined;
}

// sscanf("%X/%X"): hex halves of up to 8 digits.
const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})/;

function lsnAt(text: string, file: string, what: string): { lsn: Lsn; rest: string } {
  const m = LSN_RE.exec(text);
  if (!m) throw new CombineError(`${file}: could not parse ${what}`, { path: file });
  const lsn = ((BigInt(`0x${m[1]!}`) << 32n) | BigInt(`0x${m[2]!}`)) as Lsn;
  return { lsn, rest: text.slice(m[0].length) };
}

function tliOf(text: string, file: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new CombineError(`${file}: could not parse TLI for ${what}`, { path: file });
  const tli = Number(text);
  if (tli === 0 || tli > 0xffffffff) throw new CombineError(`${file}: invalid TLI`, { path: file });
  return tli;
}

/**
 * Parse a backup_label.
 * @param file the path, for messages.
 * @throws CombineError when a required line is missing or malformed, or only one INCREMENTAL FROM line is present.
 * @example
 * ```ts
 * parseBackupLabel('START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nSTART TIMELINE: 1\n', 'backup_label')
 * // { startLsn: 0x4000028n, startTimeline: 1, incrementalFromLsn: undefined, incrementalFromTimeline: undefined }
 * ```
 */
export function parseBackupLabel(text: string, file: string): BackupLabelInfo {
  let startLsn: Lsn | undefined;
  let startTimeline: number | undefined;
  let fromLsn: Lsn | undefined;
  let fromTli: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('START WAL LOCATION: ')) {
      const { lsn, rest } = lsnAt(line.slice(20), file, 'START WAL LOCATION');
      if (!rest.startsWith(' ')) throw new CombineError(`${file}: improper terminator for START WAL LOCATION`, { path: file });
      startLsn = lsn;
    } else if (line.startsWith('START TIMELINE: ')) {
      startTimeline = tliOf(line.slice(16), file, 'START TIMELINE');
    } else if (line.startsWith('INCREMENTAL FROM LSN: ')) {
      const { lsn, rest } = lsnAt(line.slice(22), file, 'INCREMENTAL FROM LSN');
      if (rest !== '') throw new CombineError(`${file}: improper terminator for INCREMENTAL FROM LSN`, { path: file });
      fromLsn = lsn;
    } else if (line.startsWith('INCREMENTAL FROM TLI: ')) {
      fromTli = tliOf(line.slice(22), file, 'INCREMENTAL FROM TLI');
    }
  }
  if (startLsn === undefined) throw new CombineError(`${file}: could not find START WAL LOCATION: is this a base backup?`, { path: file });
  if (startTimeline === undefined) throw new CombineError(`${file}: could not find START TIMELINE`, { path: file });
  if ((fromLsn === undefined) !== (fromTli === undefined)) {
    throw new CombineError(
      `${file}: ${fromLsn === undefined ? 'INCREMENTAL FROM TLI requires INCREMENTAL FROM LSN' : 'INCREMENTAL FROM LSN requires INCREMENTAL FROM TLI'}`,
      { path: file },
    );
  }
  return { startLsn, startTimeline, incrementalFromLsn: fromLsn, incrementalFromTimeline: fromTli };
}

/**
 * The backup_label of a combined backup: the newest backup's, minus its `INCREMENTAL FROM` lines
 * (what pg_combinebackup writes; the result is a full backup).
 */
export function combinedBackupLabel(newest: Buffer): Buffer {
  const text = newest.toString('latin1');
  const kept = text.split(/(?<=\n)/).filter((l) => !l.startsWith('INCREMENTAL FROM LSN: ') && !l.startsWith('INCREMENTAL FROM TLI: '));
  return Buffer.from(kept.join(''), 'latin1');
}
