/**
 * The record of one restore rehearsal (`rehearsals/<id>.json`): which backup was rehearsed, whether it
 * passed, which step failed, the recovery figures and every step with its result and duration. The
 * JSON is documented in docs/repository.md and stable: fields may be added, none removed or changed in
 * meaning. Pure.
 * @module
 */
import { RepositoryError } from '../errors.js';
import { isBackupId } from './backup-id.js';
import { encodeRecord, RecordReader } from './json.js';
import { rehearsalKey } from './layout.js';

/** The version of the record's JSON, written in its `formatVersion`. */
const REHEARSAL_FORMAT_VERSION = 1;

const REHEARSAL_ID = /^\d{8}-\d{6}\.\d{3}R$/;

/** The id of a rehearsal started at `time`: `20261206-041500.000R` (fixed width: ids sort as rehearsals started). */
export function rehearsalIdFor(time: Date): string {
  const iso = time.toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}.${iso.slice(20, 23)}R`;
}

/** Whether `id` has the shape of a rehearsal id. */
export function isRehearsalId(id: string): boolean {
  return REHEARSAL_ID.test(id);
}

/** One step of a recorded rehearsal (restore, recovery, each check, cleanup). */
export interface RehearsalStepRecord {
  /** `restore`, `archive`, `binaries`, `start`, `recovery`, `read-tables`, `amcheck`, `checksums`, `sql-checks`, `stop`, `cleanup`. */
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Milliseconds. */
  durationMs: number;
  /** What was done or found, in a sentence. */
  detail: string;
  /** The failures found (damaged relations, false checks). */
  problems: string[];
}

/** A recorded rehearsal. */
export interface RehearsalRecord {
  /** The rehearsal id ({@link rehearsalIdFor} its start time). */
  id: string;
  /** The repository backup rehearsed; `null` when the backup came from elsewhere (a directory that is not in the catalog). */
  backupId: string | null;
  /** The rehearsed backup's start position, `X/X`; `null` when the restore did not get that far. */
  backupStartLsn: string | null;
  /** The PostgreSQL major of the backup; `null` when the restore did not get that far. */
  major: number | null;
  startTime: Date;
  endTime: Date;
  /** `pass` when every step passed. */
  result: 'pass' | 'fail';
  /** The first step that failed; `null` when it passed. */
  failedStep: string | null;
  /** What that step found, in a sentence; `null` when it passed. */
  failure: string | null;
  /** The rehearsal ran out of time. */
  timedOut: boolean;
  /** Time to fetch and lay out the backup, ms. */
  restoreMs: number;
  /** Time from starting the server to the end of recovery, ms (0 when recovery did not end). */
  replayMs: number;
  /** Their sum: the recovery time a real restore would take, ms. */
  recoveryMs: number;
  /** WAL replayed from the backup's start, bytes; `null` when unknown. */
  walBytes: number | null;
  /** The last replayed position, `X/X`; `null` when unknown. */
  replayLsn: string | null;
  /** The commit time of the last replayed transaction (the recovery point); `null` when none was replayed. */
  lastTransactionTime: Date | null;
  /** When the newest data the rehearsal could replay was stored: the newest archived segment's time (or, without an archive, the backup's end). */
  archiveEndTime: Date | null;
  /** `archiveEndTime` minus `lastTransactionTime`: how far behind the archive's newest data the restore got, ms; `null` when either is unknown. */
  recoveryPointLagMs: number | null;
  /** Every step, in order. */
  steps: RehearsalStepRecord[];
}

/** A {@link RehearsalRecord} as JSON: dates in ISO 8601 UTC. */
export type RehearsalRecordJson = Omit<RehearsalRecord, 'startTime' | 'endTime' | 'lastTransactionTime' | 'archiveEndTime'> & {
  startTime: string;
  endTime: string;
  lastTransactionTime: string | null;
  archiveEndTime: string | null;
};

/** The record as JSON values, in the documented field order. */
export function rehearsalRecordJson(r: RehearsalRecord): RehearsalRecordJson {
  return {
    id: r.id,
    backupId: r.backupId,
    backupStartLsn: r.backupStartLsn,
    major: r.major,
    startTime: r.startTime.toISOString(),
    endTime: r.endTime.toISOString(),
    result: r.result,
    failedStep: r.failedStep,
    failure: r.failure,
    timedOut: r.timedOut,
    restoreMs: r.restoreMs,
    replayMs: r.replayMs,
    recoveryMs: r.recoveryMs,
    walBytes: r.walBytes,
    replayLsn: r.replayLsn,
    lastTransactionTime: r.lastTransactionTime?.toISOString() ?? null,
    archiveEndTime: r.archiveEndTime?.toISOString() ?? null,
    recoveryPointLagMs: r.recoveryPointLagMs,
    steps: r.steps.map((s) => ({ name: s.name, status: s.status, durationMs: s.durationMs, detail: s.detail, problems: [...s.problems] })),
  };
}

/** The record's bytes. */
export function encodeRehearsalRecord(r: RehearsalRecord): Buffer {
  return encodeRecord({ formatVersion: REHEARSAL_FORMAT_VERSION, ...rehearsalRecordJson(r) });
}

/** Decodes `rehearsals/<expectedId>.json`; throws {@link RepositoryError} when it is not valid. */
export function decodeRehearsalRecord(bytes: Uint8Array | string, expectedId: string): RehearsalRecord {
  const key = rehearsalKey(expectedId);
  const r = RecordReader.parse(key, bytes);
  const version = r.integer('formatVersion', 1);
  if (version > REHEARSAL_FORMAT_VERSION) {
    throw new RepositoryError(`the rehearsal record "${key}" has format version ${version}, newer than this pg-basebackup reads`, {
      key,
      advice: 'upgrade pg-basebackup to read this repository',
    });
  }
  const id = r.string('id');
  if (id !== expectedId) r.fail('id', `"${id}" is not the id its key names (${expectedId})`);
  const backupId = r.optionalString('backupId') ?? null;
  if (backupId !== null && !isBackupId(backupId)) r.fail('backupId', 'expected a backup id');
  const optionalInteger = (field: string): number | null => (r.has(field) ? r.integer(field) : null);
  const optionalDate = (field: string): Date | null => (r.has(field) ? r.date(field) : null);
  return {
    id,
    backupId,
    backupStartLsn: r.optionalString('backupStartLsn') ?? null,
    major: optionalInteger('major'),
    startTime: r.date('startTime'),
    endTime: r.date('endTime'),
    result: r.oneOf('result', ['pass', 'fail'] as const),
    failedStep: r.optionalString('failedStep') ?? null,
    failure: r.optionalString('failure') ?? null,
    timedOut: r.boolean('timedOut'),
    restoreMs: r.integer('restoreMs'),
    replayMs: r.integer('replayMs'),
    recoveryMs: r.integer('recoveryMs'),
    walBytes: optionalInteger('walBytes'),
    replayLsn: r.optionalString('replayLsn') ?? null,
    lastTransactionTime: optionalDate('lastTransactionTime'),
    archiveEndTime: optionalDate('archiveEndTime'),
    // A lag may be negative: the last transaction can be stamped after the archive's clock said it stored it.
    recoveryPointLagMs: r.has('recoveryPointLagMs') ? r.integer('recoveryPointLagMs', Number.MIN_SAFE_INTEGER) : null,
    steps: r.array('steps').map((s) => ({
      name: s.string('name'),
      status: s.oneOf('status', ['passed', 'failed', 'skipped'] as const),
      durationMs: s.integer('durationMs'),
      detail: s.text('detail'),
      problems: s.has('problems') ? s.strings('problems') : [],
    })),
  };
}
