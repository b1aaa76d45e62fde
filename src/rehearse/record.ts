/**
 * A rehearsal's result as the repository records it (`rehearsals/<id>.json`): {@link rehearsalRecord}
 * turns a {@link RehearsalResult} into the record (pure), {@link recordRehearsal} stores it.
 * @module
 */
import { rehearsalIdFor, type RehearsalRecord } from '../repository/rehearsal-record.js';
import { commitRehearsal } from '../repository/history.js';
import type { Repository } from '../repository/repository.js';
import type { StorageCallOptions } from '../storage/types.js';
import type { RehearsalResult } from './types.js';

/** What the result alone does not say about a rehearsal. */
export interface RehearsalRecordOptions {
  /** The repository backup that was rehearsed (`null`: the backup is not in the repository's catalog). */
  backupId: string | null;
  /**
   * When the newest data the rehearsal could replay was stored: the time of the newest archived WAL
   * segment or, for a rehearsal without an archive, the backup's end. The recovery point lag is this
   * minus the last replayed transaction's time. @default unknown (no lag recorded)
   */
  archiveEndTime?: Date | null | undefined;
}

/** The record of rehearsal `result`. Pure. */
export function rehearsalRecord(result: RehearsalResult, options: RehearsalRecordOptions): RehearsalRecord {
  const startTime = new Date(result.startedAt);
  const failed = result.steps.find((s) => s.status === 'failed');
  const f = result.figures;
  const lastTransactionTime = f.lastTransactionTime === undefined ? null : new Date(f.lastTransactionTime);
  const archiveEndTime = options.archiveEndTime ?? null;
  return {
    id: rehearsalIdFor(startTime),
    backupId: options.backupId,
    backupStartLsn: f.backupStartLsn ?? null,
    major: result.major ?? null,
    startTime,
    endTime: new Date(startTime.getTime() + Math.round(result.durationMs)),
    result: result.ok ? 'pass' : 'fail',
    failedStep: failed?.name ?? null,
    failure: failed?.detail ?? null,
    timedOut: result.timedOut,
    restoreMs: Math.round(f.restoreMs),
    replayMs: Math.round(f.replayMs),
    recoveryMs: Math.round(f.recoveryMs),
    walBytes: f.walBytes ?? null,
    replayLsn: f.replayLsn ?? null,
    lastTransactionTime,
    archiveEndTime,
    recoveryPointLagMs:
      lastTransactionTime === null || archiveEndTime === null ? null : archiveEndTime.getTime() - lastTransactionTime.getTime(),
    steps: result.steps.map((s) => ({
      name: s.name,
      status: s.status,
      durationMs: Math.round(s.durationMs),
      detail: s.detail,
      problems: [...(s.problems ?? [])],
    })),
  };
}

/**
 * Records rehearsal `result` in `repository` (one object per rehearsal: the history is kept) and
 * resolves to the record. `pgbb list` shows it; `pgbb status` and the metrics read the newest.
 *
 * @example
 * ```ts
 * import { openRepository } from 'pg-basebackup/repository';
 * import { recordRehearsal, rehearse } from 'pg-basebackup/rehearse';
 *
 * await using repo = await openRepository('/backups/db1');
 * const result = await rehearse({ source: { backupDir: '/restore/src', walArchive: '/backups/wal' } });
 * const record = await recordRehearsal(repo, result, { backupId: '20261206-033800.123F' });
 * console.log(record.id, record.result, record.recoveryMs);
 * ```
 */
export async function recordRehearsal(
  repository: Repository,
  result: RehearsalResult,
  options: RehearsalRecordOptions & StorageCallOptions,
): Promise<RehearsalRecord> {
  const record = rehearsalRecord(result, options);
  await commitRehearsal(repository, record, options.signal ? { signal: options.signal } : {});
  return record;
}
