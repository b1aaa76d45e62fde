/**
 * The repository's history beside its catalog: the records of restore rehearsals (`rehearsals/`) and of
 * failed backup runs (`failures/`). Each record is one small object written once; readers list the
 * prefix and skip keys that are not records. What monitoring (`pgbb status`, metrics) and `pgbb list`
 * read.
 *
 * A record that cannot be read (not JSON, cut short, a format version newer than this pg-basebackup
 * reads, a field missing or wrong) fails the read, unless the caller takes it with `onUnreadable`: then
 * it is left out and the rest is read. History is never read to restore, so expire, list and status
 * carry on without it and warn; a storage that fails still fails the call.
 * @module
 */
import { RepositoryError } from '../errors.js';
import type { StorageCallOptions } from '../storage/types.js';
import { isBackupId } from './backup-id.js';
import { decodeBackupFailureRecord, encodeBackupFailureRecord, type BackupFailureRecord } from './failure-record.js';
import { failureKey, FAILURES_PREFIX, idOfRecordKey, REHEARSALS_PREFIX, rehearsalKey } from './layout.js';
import { readSmallObject } from './objects.js';
import { decodeRehearsalRecord, encodeRehearsalRecord, isRehearsalId, type RehearsalRecord } from './rehearsal-record.js';
import type { Repository } from './repository.js';

/** A history record that could not be read. */
export interface UnreadableHistoryRecord {
  /** Its key: `failures/<id>.json` or `rehearsals/<id>.json`. */
  key: string;
  /** Whose record: a failed backup run's or a rehearsal's. */
  kind: 'failure' | 'rehearsal';
  /** The id its key names (a failed run's is the backup id it would have had: its start time). */
  id: string;
  /** Why it could not be read: the first line of the decoder's message. */
  reason: string;
}

/** Options of {@link listRehearsals} and {@link listBackupFailures}. */
export interface HistoryReadOptions extends StorageCallOptions {
  /**
   * Takes each record that cannot be read, which is then left out of the list (see the module
   * documentation); without it such a record fails the call with a `RepositoryError`.
   * @default none: an unreadable record is an error
   */
  onUnreadable?: ((record: UnreadableHistoryRecord) => void) | undefined;
}

/** The warning for a record left out (`pgbb list` and `pgbb status` print it; expire adds what it did with it). */
export function unreadableRecordWarning(record: UnreadableHistoryRecord): string {
  return `skipped the unreadable history record "${record.key}": ${record.reason}`;
}

async function readRecords<T>(
  repository: Repository,
  prefix: string,
  kind: UnreadableHistoryRecord['kind'],
  isId: (id: string) => boolean,
  decode: (bytes: Buffer, id: string) => T,
  options: HistoryReadOptions,
): Promise<T[]> {
  const { onUnreadable, ...call } = options;
  await repository.info(call); // refuses a repository of a newer format before reading its records
  const out: { id: string; record: T }[] = [];
  for await (const object of repository.storage.list({ ...call, prefix })) {
    const id = idOfRecordKey(prefix, object.key);
    if (id === undefined || !isId(id)) continue;
    let record: T;
    try {
      const bytes = await readSmallObject(repository.storage, object.key, call);
      if (bytes === undefined) continue; // removed since the listing
      record = decode(bytes, id);
    } catch (err) {
      // What the object holds is wrong (its size, JSON or fields); a storage error is not the record's.
      if (!(err instanceof RepositoryError) || onUnreadable === undefined) throw err;
      onUnreadable({ key: object.key, kind, id, reason: err.message.split('\n')[0]! });
      continue;
    }
    out.push({ id, record });
  }
  // Ids have a fixed width and start with the time: in key order they are oldest first.
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((o) => o.record);
}

/** Stores a rehearsal's record (history is kept: one object per rehearsal). */
export async function commitRehearsal(repository: Repository, record: RehearsalRecord, options: StorageCallOptions = {}): Promise<void> {
  await repository.storage.put(rehearsalKey(record.id), encodeRehearsalRecord(record), options);
}

/** Every recorded rehearsal, oldest first. */
export async function listRehearsals(repository: Repository, options: HistoryReadOptions = {}): Promise<RehearsalRecord[]> {
  return readRecords(repository, REHEARSALS_PREFIX, 'rehearsal', isRehearsalId, decodeRehearsalRecord, options);
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
export async function listBackupFailures(repository: Repository, options: HistoryReadOptions = {}): Promise<BackupFailureRecord[]> {
  return readRecords(repository, FAILURES_PREFIX, 'failure', isBackupId, decodeBackupFailureRecord, options);
}
