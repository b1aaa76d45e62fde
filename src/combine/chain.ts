/**
 * Is this a chain pg_combinebackup would combine? The options (validate), one system identifier in
 * every pg_control and manifest, and the order of the backups by their labels: the first full, each
 * later one incremental to the one listed before it. Pure: the files are read by files.ts.
 * @module
 */
import { isAbsolute, join, resolve } from 'node:path';
import { CombineError, ConfigError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import { MANIFEST_FILE_CHECKSUM_ALGORITHMS } from '../manifest/checksum.js';
import type { BackupManifest } from '../manifest/types.js';
import { readControlFile } from '../verify/control-file.js';
import type { BackupLabelInfo } from './backup-label.js';
import type { CombineOptions } from './types.js';

/** The options' own consistency, before anything is read. */
export function validate(options: CombineOptions): void {
  if (!Array.isArray(options.backups) || options.backups.length === 0) {
    throw new ConfigError('no input directories specified: give the full backup, then the incremental backups, oldest first');
  }
  for (const b of options.backups)
    if (typeof b !== 'string' || b === '') throw new ConfigError('invalid backup directory: expected a path');
  if (typeof options.output !== 'string' || options.output === '') throw new ConfigError('no output directory specified');
  const alg = options.manifestChecksums;
  if (alg !== undefined && !MANIFEST_FILE_CHECKSUM_ALGORITHMS.includes(alg)) {
    throw new ConfigError(`unrecognized checksum algorithm: "${String(alg)}": use one of ${MANIFEST_FILE_CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  const out = resolve(options.output);
  for (const b of options.backups) {
    if (resolve(b) === out)
      throw new ConfigError(`the output directory "${options.output}" is one of the input backups: choose a new directory`);
  }
  for (const [from, to] of options.tablespaceMapping ?? []) {
    if (!isAbsolute(from) || !isAbsolute(to))
      throw new ConfigError(`tablespace mapping "${from}=${to}": both directories must be absolute paths`);
  }
}

/**
 * One step of pg_combinebackup's check_control_files (newest backup first): `bytes` must be a valid
 * pg_control with the identifier seen so far (`sysid`, undefined for the first). Returns the identifier.
 */
export function checkControlFile(backup: string, path: string, bytes: Buffer, sysid: bigint | undefined): bigint {
  const info = readControlFile(bytes);
  if (!info?.crcOk) throw new CombineError(`${path}: CRC is incorrect: the backup is damaged or not a backup`, { path });
  if (sysid !== undefined && info.systemIdentifier !== sysid) {
    throw new CombineError(
      `${path}: expected system identifier ${sysid}, but found ${info.systemIdentifier}: ` +
        `"${backup}" is a backup of another cluster; combine only backups of one server`,
      { path },
    );
  }
  return info.systemIdentifier;
}

/**
 * pg_combinebackup's check_backup_label_files: the first backup full, the others incremental, each
 * one's INCREMENTAL FROM equal to the start of the backup before it.
 */
export function checkChain(backups: readonly string[], labels: readonly BackupLabelInfo[]): void {
  const order = 'list the full backup first, then each incremental backup in the order they were taken';
  for (let i = backups.length - 1; i >= 0; i--) {
    const l = labels[i]!;
    if (i > 0 && l.incrementalFromLsn === undefined) {
      throw new CombineError(`backup at "${backups[i]}" is a full backup, but only the first backup should be a full backup: ${order}`, {
        path: backups[i],
      });
    }
    if (i === 0 && l.incrementalFromLsn !== undefined) {
      throw new CombineError(
        `backup at "${backups[0]}" is an incremental backup, but the first backup should be a full backup: ` +
          `${order} (the chain must start with the full backup it was taken against)`,
        { path: backups[0] },
      );
    }
    if (i < backups.length - 1) {
      const next = labels[i + 1]!;
      if (l.startTimeline !== next.incrementalFromTimeline) {
        throw new CombineError(
          `backup at "${backups[i]}" starts on timeline ${l.startTimeline}, but "${backups[i + 1]}" was taken ` +
            `relative to a backup on timeline ${next.incrementalFromTimeline}: ${order}, without leaving one out`,
          { path: backups[i] },
        );
      }
      if (l.startLsn !== next.incrementalFromLsn) {
        throw new CombineError(
          `backup at "${backups[i]}" starts at LSN ${formatLsn(l.startLsn)}, but expected ` +
            `${formatLsn(next.incrementalFromLsn!)} ("${backups[i + 1]}" was taken relative to the backup that started there): ` +
            `${order}, without leaving one out`,
          { path: backups[i] },
        );
      }
    }
  }
}

/** Every manifest that names a system identifier names pg_control's. */
export function checkManifestIdentifiers(
  backups: readonly string[],
  manifests: readonly (BackupManifest | undefined)[],
  systemIdentifier: bigint,
): void {
  for (const [i, m] of manifests.entries()) {
    if (m?.systemIdentifier !== undefined && m.systemIdentifier !== systemIdentifier) {
      const path = join(backups[i]!, 'global', 'pg_control');
      throw new CombineError(`${path}: manifest system identifier is ${m.systemIdentifier}, but control file has ${systemIdentifier}`, {
        path,
      });
    }
  }
}
