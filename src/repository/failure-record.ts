/**
 * The record of a backup run that failed after it took the repository lock (`failures/<id>.json`, the id
 * the backup would have had): what an operator's monitoring counts as "failed backups since the last
 * success". A run killed outright (SIGKILL, power loss) writes none; the age of the newest backup
 * catches those. Pure.
 * @module
 */
import { RepositoryError } from '../errors.js';
import { isBackupId, type BackupType } from './backup-id.js';
import { encodeRecord, RecordReader } from './json.js';
import { failureKey } from './layout.js';

const FAILURE_FORMAT_VERSION = 1;

/** A failed backup run. */
export interface BackupFailureRecord {
  /** The id the backup would have had (its start time and type). */
  id: string;
  type: BackupType;
  startTime: Date;
  /** When it failed. */
  endTime: Date;
  /** The error's code (`ERR_PGBB_...`, `ERR_PGBB_ABORTED` for an interrupted run) and message. */
  error: { code: string; message: string };
}

/** A {@link BackupFailureRecord} as JSON. */
export interface BackupFailureRecordJson {
  id: string;
  type: BackupType;
  startTime: string;
  endTime: string;
  error: { code: string; message: string };
}

/** The record as JSON values. */
export function backupFailureRecordJson(r: BackupFailureRecord): BackupFailureRecordJson {
  return {
    id: r.id,
    type: r.type,
    startTime: r.startTime.toISOString(),
    endTime: r.endTime.toISOString(),
    error: { code: r.error.code, message: r.error.message },
  };
}

/** The record's bytes. */
export function encodeBackupFailureRecord(r: BackupFailureRecord): Buffer {
  return encodeRecord({ formatVersion: FAILURE_FORMAT_VERSION, ...backupFailureRecordJson(r) });
}

/** Decodes `failures/<expectedId>.json`; throws {@link RepositoryError} when it is not valid. */
export function decodeBackupFailureRecord(bytes: Uint8Array | string, expectedId: string): BackupFailureRecord {
  const key = failureKey(expectedId);
  const r = RecordReader.parse(key, bytes);
  const version = r.integer('formatVersion', 1);
  if (version > FAILURE_FORMAT_VERSION) {
    throw new RepositoryError(`the failure record "${key}" has format version ${version}, newer than this pg-basebackup reads`, {
      key,
      advice: 'upgrade pg-basebackup to read this repository',
    });
  }
  const id = r.string('id');
  if (id !== expectedId || !isBackupId(id)) r.fail('id', `"${id}" is not the id its key names (${expectedId})`);
  const e = r.child('error');
  return {
    id,
    type: r.oneOf('type', ['full', 'incremental'] as const),
    startTime: r.date('startTime'),
    endTime: r.date('endTime'),
    error: { code: e.string('code'), message: e.text('message') },
  };
}
