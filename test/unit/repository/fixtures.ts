// A catalog record for the repository's unit tests: the fields a test is about, the rest filled with
// values no test looks at (the type follows the parent, the end timeline the start one).
import type { BackupRecord } from '../../../src/repository/record.js';

type RecordCore = Pick<BackupRecord, 'id' | 'startTime' | 'endTime' | 'startLsn' | 'endLsn'>;

export function backupRecord(core: RecordCore & Partial<BackupRecord>): BackupRecord {
  const parent = core.parent ?? null;
  const timeline = core.timeline ?? 1;
  return {
    type: parent === null ? 'full' : 'incremental',
    parent,
    status: 'complete',
    timeline,
    endTimeline: timeline,
    postgresVersion: '17.2',
    systemIdentifier: '1',
    originalSize: 1,
    storedSize: 1,
    compression: 'none',
    durationMs: 1,
    wal: 'stream',
    label: 'x',
    objects: [],
    ...core,
  };
}
