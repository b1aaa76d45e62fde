/**
 * The repository's history beside its catalog: the records of restore rehearsals (`rehearsals/`) and of
 * failed backup runs (`failures/`). Each record is one small object written once; readers list the
 * prefix and skip keys that are not records. What monitoring (`pgbb status`, metrics) and `pgbb list`
 * read.
 * @module
 */
import type { StorageCallOptions } from '../storage/types.js';
import { isBackupId } from './backup-id.js';
import { decodeBackupFailureRecord, encodeBackupFailureRecord, type BackupFailureRecord } from './failure-record.js';
import { failureKey, FAILURES_PREFIX, idOfRecordKey, REHEARSALS_PREFIX, rehearsalKey } from './layout.js';
import { readSmallObject } from './objects.js';
import { decodeRehearsalRecord, encodeRehearsalRecord, isRehearsalId, type RehearsalRecord } from './rehearsal-record.js';
import type { Repository } from './repository.js';

async function readRecords<T>(
  repository: Repository,
  prefix: string,
  isId: (id: string) => boolean,
  decode: (bytes: Buffer, id: string) => T,
  options: StorageCallOptions,
): Promise<T[]> {
  await repository.info(options); // refuses a repository of a newer format before reading its records
  const out: { id: string; record: T }[] = [];
  for await (const object of repository.storage.list({ ...options, prefix })) {
    const id = idOfRecordKey(prefix, object.key);
    if (id === undefined || !isId(id)) continue;
    const bytes = await readSmallObject(repository.storage, object.key, options);
    if (bytes !== undefined) out.push({ id, record: decode(bytes, id) });
  }
  // Ids have a fixed width and start with the time: in key order they are oldest first.
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((o) => o.record);
}

/** Stores a rehearsal's record (history is kept: one object per rehearsal). */
export async function commitRehearsal(repository: Repository, record: RehearsalRecord, options: StorageCallOptions = {}): Promise<void> {
  await repository.storage.put(rehearsalKey(record.id), encodeRehearsalRecord(record), options);
}

/** Every recorded rehearsal, oldest first. */
export async function listRehearsals(repository: Repository, options: StorageCallOptions = {}): Promise<RehearsalRecord[]> {
  return readRecords(repository, REHEARSALS_PREFIX, isRehearsalId, decodeRehearsalRecord, options);
}

/** Stores the record of a failed backup run. */
export async function recordBackupFailure(
  repository: Repository,
  record: BackupFailureRecord,
  options: StorageCallOptions = {},
): Promise<void> {
  await repository.storage.put(failureKey(record.id), encodeBackupFailureRecord(record), options);
}

/** Every recorded failed backup run, oldest first. */
export async function listBackupFailures(repository: Repository, options: StorageCallOptions = {}): Promise<BackupFailureRecord[]> {
  return readRecords(repository, FAILURES_PREFIX, isBackupId, decodeBackupFailureRecord, options);
}
