// Builders of repository snapshots for the status and metrics tests: a backup, a rehearsal, archived
// segments named from positions, with one clock (NOW) the ages are measured against.
import { parseLsn } from '../../../src/lsn.js';
import { backupIdFor } from '../../../src/repository/backup-id.js';
import type { BackupFailureRecord } from '../../../src/repository/failure-record.js';
import type { BackupRecord } from '../../../src/repository/record.js';
import { rehearsalIdFor, type RehearsalRecord } from '../../../src/repository/rehearsal-record.js';
import type { RepositoryState } from '../../../src/status/state.js';
import { segmentFileName } from '../../../src/wal-segments.js';

export const NOW = new Date('2026-12-06T12:00:00.000Z');
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const SEG = 16 * 1024 * 1024;

/** A time `ms` before NOW. */
export const ago = (ms: number): Date => new Date(NOW.getTime() - ms);

/** A full backup that ended `endedAgoMs` before NOW and spans segments `startSeg`..`endSeg` on timeline 1. */
export function backup(endedAgoMs: number, startSeg: number, endSeg = startSeg, over: Partial<BackupRecord> = {}): BackupRecord {
  const end = ago(endedAgoMs);
  const start = new Date(end.getTime() - 60_000);
  return {
    id: backupIdFor(start, 'full'),
    type: 'full',
    parent: null,
    status: 'complete',
    startTime: start,
    endTime: end,
    startLsn: parseLsn(`0/${(startSeg * SEG + 0x28).toString(16)}`),
    endLsn: parseLsn(`0/${(endSeg * SEG + 0x138).toString(16)}`),
    timeline: 1,
    endTimeline: 1,
    postgresVersion: '17.2',
    systemIdentifier: '7443990000000000001',
    originalSize: 30_000_000,
    storedSize: 4_000_000,
    compression: 'gzip',
    durationMs: 60_000,
    wal: 'stream',
    label: 'pg_basebackup base backup',
    objects: [],
    ...over,
  };
}

/** A rehearsal that ended `endedAgoMs` before NOW. */
export function rehearsal(endedAgoMs: number, result: 'pass' | 'fail', over: Partial<RehearsalRecord> = {}): RehearsalRecord {
  const end = ago(endedAgoMs);
  const start = new Date(end.getTime() - 90_000);
  return {
    id: rehearsalIdFor(start),
    backupId: null,
    backupStartLsn: '0/2000028',
    major: 17,
    startTime: start,
    endTime: end,
    result,
    failedStep: result === 'pass' ? null : 'amcheck',
    failure: result === 'pass' ? null : '1 index damaged',
    timedOut: false,
    restoreMs: 20_000,
    replayMs: 40_000,
    recoveryMs: 60_000,
    walBytes: 50_331_648,
    replayLsn: '0/5000000',
    lastTransactionTime: new Date(end.getTime() - 3_600_000),
    archiveEndTime: new Date(end.getTime() - 3_000_000),
    recoveryPointLagMs: 600_000,
    steps: [{ name: 'restore', status: 'passed', durationMs: 20_000, detail: 'restored', problems: [] }],
    ...over,
  };
}

/** Archived segments `from`..`to` of timeline 1 (skipping `missing`), the last stored `lastAgoMs` before NOW. */
export function segments(from: number, to: number, lastAgoMs: number, missing: number[] = []): RepositoryState['walSegments'] {
  const out: RepositoryState['walSegments'] = [];
  for (let n = from; n <= to; n++) {
    if (missing.includes(n)) continue;
    out.push({ name: segmentFileName(1, BigInt(n), SEG), storedAt: ago(lastAgoMs + (to - n) * 60_000) });
  }
  return out;
}

/** A failed backup run that started `agoMs` before NOW. */
export function failure(agoMs: number): BackupFailureRecord {
  const start = ago(agoMs);
  return {
    id: backupIdFor(start, 'full'),
    type: 'full',
    startTime: start,
    endTime: new Date(start.getTime() + 5000),
    error: { code: 'ERR_PGBB_STORAGE', message: 'put failed: 500' },
  };
}

/** A repository snapshot: by default one fresh backup (segments 2..2), no WAL, no rehearsal. */
export function state(over: Partial<RepositoryState> = {}): RepositoryState {
  return {
    location: '/r',
    info: {
      formatVersion: 1,
      cluster: { systemIdentifier: '7443990000000000001', majorVersion: 17, walSegmentSize: SEG },
      createdAt: ago(30 * DAY),
    },
    backups: [backup(HOUR, 2)],
    failures: [],
    rehearsals: [],
    walSegments: [],
    server: undefined,
    ...over,
  };
}
