// The history records beside the catalog: rehearsal records (from a rehearsal's result, and their JSON)
// and failed-run records, their keys, and the rehearsals in the listing.
import { describe, expect, it } from 'vitest';
import { RepositoryError } from '../../../src/errors.js';
import { rehearsalRecord } from '../../../src/rehearse/record.js';
import type { RehearsalResult } from '../../../src/rehearse/types.js';
import { decodeBackupFailureRecord, encodeBackupFailureRecord } from '../../../src/repository/failure-record.js';
import { failureKey, idOfRecordKey, REHEARSALS_PREFIX, rehearsalKey } from '../../../src/repository/layout.js';
import { repositoryListing } from '../../../src/repository/listing.js';
import { decodeRehearsalRecord, encodeRehearsalRecord, isRehearsalId, rehearsalIdFor } from '../../../src/repository/rehearsal-record.js';
import { failure, rehearsal } from '../status/fixtures.js';

const result: RehearsalResult = {
  ok: false,
  major: 17,
  startedAt: '2026-12-06T04:15:00.250Z',
  durationMs: 93_456.7,
  steps: [
    { name: 'restore', status: 'passed', durationMs: 20_000.4, detail: 'plain backup restored' },
    { name: 'recovery', status: 'passed', durationMs: 40_000, detail: 'recovered' },
    { name: 'amcheck', status: 'failed', durationMs: 1500, detail: '1 index damaged', problems: ['public.t_pkey: bad'] },
    { name: 'cleanup', status: 'passed', durationMs: 12, detail: 'removed' },
  ],
  figures: {
    restoreMs: 20_000.4,
    replayMs: 40_000.2,
    recoveryMs: 60_000.6,
    walBytes: 50_331_648,
    replayLsn: '0/5000110',
    lastTransactionTime: '2026-12-06T04:00:00.000000Z',
    backupStartLsn: '0/2000028',
  },
  keptDir: undefined,
  timedOut: false,
};

describe('rehearsal records', () => {
  it('are made from a rehearsal result: the first failed step, rounded figures, the recovery point lag', () => {
    const r = rehearsalRecord(result, { backupId: '20261206-033800.123F', archiveEndTime: new Date('2026-12-06T04:10:00Z') });
    expect(r).toMatchObject({
      id: '20261206-041500.250R',
      backupId: '20261206-033800.123F',
      backupStartLsn: '0/2000028',
      major: 17,
      result: 'fail',
      failedStep: 'amcheck',
      failure: '1 index damaged',
      restoreMs: 20_000,
      replayMs: 40_000,
      recoveryMs: 60_001,
      walBytes: 50_331_648,
      recoveryPointLagMs: 600_000,
    });
    expect(r.endTime.toISOString()).toBe('2026-12-06T04:16:33.707Z');
    expect(r.steps[2]).toEqual({
      name: 'amcheck',
      status: 'failed',
      durationMs: 1500,
      detail: '1 index damaged',
      problems: ['public.t_pkey: bad'],
    });
    expect(rehearsalRecord({ ...result, ok: true, steps: [] }, { backupId: null })).toMatchObject({
      result: 'pass',
      failedStep: null,
      archiveEndTime: null,
      recoveryPointLagMs: null,
    });
  });

  it('round-trip through their JSON, with the documented fields', () => {
    const r = rehearsal(3_600_000, 'fail', { backupId: '20261206-033800.123F' });
    const bytes = encodeRehearsalRecord(r);
    expect(Object.keys(JSON.parse(bytes.toString('utf8')) as object)).toEqual([
      'formatVersion',
      'id',
      'backupId',
      'backupStartLsn',
      'major',
      'startTime',
      'endTime',
      'result',
      'failedStep',
      'failure',
      'timedOut',
      'restoreMs',
      'replayMs',
      'recoveryMs',
      'walBytes',
      'replayLsn',
      'lastTransactionTime',
      'archiveEndTime',
      'recoveryPointLagMs',
      'steps',
    ]);
    expect(decodeRehearsalRecord(bytes, r.id)).toEqual(r);
    const nulls = { ...r, backupId: null, lastTransactionTime: null, archiveEndTime: null, recoveryPointLagMs: null, walBytes: null };
    expect(decodeRehearsalRecord(encodeRehearsalRecord(nulls), r.id)).toEqual(nulls);
  });

  it('refuse a record under another id, a newer format, a bad result', () => {
    const r = rehearsal(0, 'pass');
    expect(() => decodeRehearsalRecord(encodeRehearsalRecord(r), '20261206-000000.000R')).toThrow(RepositoryError);
    const newer = JSON.stringify({ ...JSON.parse(encodeRehearsalRecord(r).toString('utf8')), formatVersion: 2 });
    expect(() => decodeRehearsalRecord(newer, r.id)).toThrow(/newer than this pg-basebackup reads/);
    const bad = JSON.stringify({ ...JSON.parse(encodeRehearsalRecord(r).toString('utf8')), result: 'maybe' });
    expect(() => decodeRehearsalRecord(bad, r.id)).toThrow(/invalid "result"/);
  });

  it('ids and keys', () => {
    expect(rehearsalIdFor(new Date('2026-12-06T04:15:00.250Z'))).toBe('20261206-041500.250R');
    expect(isRehearsalId('20261206-041500.250R')).toBe(true);
    expect(isRehearsalId('20261206-041500.250F')).toBe(false);
    expect(rehearsalKey('20261206-041500.250R')).toBe('rehearsals/20261206-041500.250R.json');
    expect(idOfRecordKey(REHEARSALS_PREFIX, 'rehearsals/20261206-041500.250R.json')).toBe('20261206-041500.250R');
    expect(idOfRecordKey(REHEARSALS_PREFIX, 'rehearsals/x/y.json')).toBeUndefined();
    expect(failureKey('20261206-033800.123F')).toBe('failures/20261206-033800.123F.json');
  });

  it('appear in the listing without their steps', () => {
    const r = rehearsal(0, 'pass');
    const listing = repositoryListing('/r', null, [], undefined, [r]);
    expect(listing.rehearsals).toHaveLength(1);
    expect(listing.rehearsals[0]).toMatchObject({ id: r.id, result: 'pass', recoveryMs: 60_000 });
    expect(listing.rehearsals[0]).not.toHaveProperty('steps');
  });
});

describe('failed backup run records', () => {
  it('round-trip through their JSON', () => {
    const f = failure(60_000);
    const bytes = encodeBackupFailureRecord(f);
    expect(Object.keys(JSON.parse(bytes.toString('utf8')) as object)).toEqual([
      'formatVersion',
      'id',
      'type',
      'startTime',
      'endTime',
      'error',
    ]);
    expect(decodeBackupFailureRecord(bytes, f.id)).toEqual(f);
    expect(() => decodeBackupFailureRecord(bytes, '20260101-000000.000F')).toThrow(/is not the id its key names/);
  });
});
