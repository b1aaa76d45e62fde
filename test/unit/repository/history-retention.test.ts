// Which history records expire removes: rehearsals of backups no longer kept and failures older than
// every kept backup, never the newest rehearsal, the newest passed one or the newest failure; and what
// `pgbb status` and `pgbb metrics` say about the history is the same before and after.
import { describe, expect, it } from 'vitest';
import type { UnreadableHistoryRecord } from '../../../src/repository/history.js';
import { planHistoryExpiry } from '../../../src/repository/history-retention.js';
import { failureKey, rehearsalKey } from '../../../src/repository/layout.js';
import { planExpiry } from '../../../src/repository/retention.js';
import { evaluateStatus } from '../../../src/status/evaluate.js';
import { repositoryMetrics } from '../../../src/status/metrics.js';
import type { RepositoryState } from '../../../src/status/state.js';
import { backup, DAY, failure, HOUR, NOW, rehearsal, SEG, state } from '../status/fixtures.js';

const b1 = backup(10 * DAY, 2);
const b2 = backup(5 * DAY, 5);
const b3 = backup(1 * DAY, 9);
const ids = (records: readonly { id: string }[]) => records.map((r) => r.id);

describe('planHistoryExpiry', () => {
  it('removes the rehearsals of backups no longer kept, keeps those of kept and outside backups', () => {
    const ofB1 = rehearsal(9 * DAY, 'pass', { backupId: b1.id });
    const ofB2 = rehearsal(4 * DAY, 'pass', { backupId: b2.id });
    const outside = rehearsal(3 * DAY, 'fail', { backupId: null });
    const ofB3 = rehearsal(HOUR, 'pass', { backupId: b3.id });
    const plan = planHistoryExpiry([b3], [ofB3, outside, ofB2, ofB1], []);
    expect(ids(plan.removeRehearsals)).toEqual([ofB1.id, ofB2.id]);
  });

  it('keeps the newest rehearsal and the newest passed one even when their backup goes', () => {
    const passed = rehearsal(4 * DAY, 'pass', { backupId: b1.id });
    const older = rehearsal(6 * DAY, 'pass', { backupId: b1.id });
    const failed = rehearsal(2 * DAY, 'fail', { backupId: b2.id });
    const plan = planHistoryExpiry([b3], [older, passed, failed], []);
    expect(ids(plan.removeRehearsals)).toEqual([older.id]);
  });

  it('removes the failures that started before the oldest kept backup, except the newest failure', () => {
    const old = failure(9 * DAY);
    const older = failure(11 * DAY);
    const recent = failure(3 * DAY);
    expect(ids(planHistoryExpiry([b2, b3], [], [recent, old, older]).removeFailures)).toEqual([older.id, old.id]);
    // The newest failure stays even when it is older than every kept backup.
    expect(ids(planHistoryExpiry([b3], [], [old, older]).removeFailures)).toEqual([older.id]);
  });

  it('removes nothing when no backup is kept', () => {
    const plan = planHistoryExpiry(
      [],
      [rehearsal(9 * DAY, 'pass', { backupId: b1.id }), rehearsal(HOUR, 'pass')],
      [failure(9 * DAY), failure(HOUR)],
    );
    expect(plan).toEqual({ removeRehearsals: [], removeFailures: [], removeUnreadable: [] });
  });
});

describe('planHistoryExpiry: records that could not be read', () => {
  const unreadable = (kind: 'failure' | 'rehearsal', id: string): UnreadableHistoryRecord => ({
    key: kind === 'failure' ? failureKey(id) : rehearsalKey(id),
    kind,
    id,
    reason: 'not valid JSON',
  });

  it('removes a failure record its key dates before the oldest kept backup, unless its key is the newest', () => {
    const old = unreadable('failure', failure(9 * DAY).id);
    const recent = unreadable('failure', failure(3 * DAY).id);
    const newest = unreadable('failure', failure(8 * DAY).id);
    const readable = failure(11 * DAY);
    // b2 started 5 days ago (plus its duration): `old` and `newest` started before it, `recent` after.
    const plan = planHistoryExpiry([b2, b3], [], [readable], [recent, old]);
    expect(plan.removeUnreadable).toEqual([old]);
    // The readable records are judged as before: the readable newest stays, whatever unreadable ones there are.
    expect(plan.removeFailures).toEqual([]);
    // Unreadable and older than every kept backup, but the newest failure key of all: kept.
    expect(planHistoryExpiry([b3], [], [readable], [old, newest]).removeUnreadable).toEqual([old]);
    expect(planHistoryExpiry([b3], [], [], [newest]).removeUnreadable).toEqual([]);
  });

  it('keeps every unreadable rehearsal record, however old: which backup it names is in its content', () => {
    const ancient = unreadable('rehearsal', rehearsal(30 * DAY, 'pass').id);
    const plan = planHistoryExpiry([b3], [rehearsal(HOUR, 'pass', { backupId: b3.id })], [], [ancient]);
    expect(plan.removeUnreadable).toEqual([]);
  });

  it('removes nothing unread when no backup is kept', () => {
    expect(planHistoryExpiry([], [], [], [unreadable('failure', failure(30 * DAY).id)]).removeUnreadable).toEqual([]);
  });
});

describe('planExpiry: history records', () => {
  it('plans them with the backups, and status and metrics read the same history afterwards', () => {
    const rehearsals = [
      rehearsal(9 * DAY, 'pass', { backupId: b1.id }),
      rehearsal(4 * DAY, 'pass', { backupId: b2.id }),
      rehearsal(2 * DAY, 'fail', { backupId: b2.id }),
    ];
    const failures = [failure(11 * DAY), failure(6 * DAY), failure(HOUR)];
    const plan = planExpiry({
      backups: [b1, b2, b3],
      walKeys: [],
      walSegmentSize: SEG,
      policy: { retainFull: 1 },
      now: NOW,
      rehearsals,
      failures,
    });
    expect(ids(plan.keep)).toEqual([b3.id]);
    expect(ids(plan.removeRehearsals)).toEqual([rehearsals[0]!.id]);
    expect(ids(plan.removeFailures)).toEqual([failures[0]!.id, failures[1]!.id]);
    // Without the records, none is removed.
    const bare = planExpiry({ backups: [b1, b2, b3], walKeys: [], walSegmentSize: SEG, policy: { retainFull: 1 }, now: NOW });
    expect(bare.removeRehearsals).toEqual([]);
    expect(bare.removeFailures).toEqual([]);

    const removed = new Set([...ids(plan.removeRehearsals), ...ids(plan.removeFailures)]);
    const before = state({ backups: [b1, b2, b3], rehearsals, failures });
    const after = state({
      backups: plan.keep,
      rehearsals: rehearsals.filter((r) => !removed.has(r.id)),
      failures: failures.filter((f) => !removed.has(f.id)),
    });
    const history = (s: RepositoryState) => ({
      checks: evaluateStatus(s, { maxRehearsalAgeMs: DAY }, NOW).checks.filter(
        (c) => c.name === 'rehearsal' || c.name === 'backup-failures',
      ),
      metrics: repositoryMetrics(s, NOW).filter(
        (m) => m.name.includes('rehearsal') || m.name.includes('failure') || m.name.startsWith('pgbb_last_success'),
      ),
    });
    expect(history(after)).toEqual(history(before));
    expect(history(before).checks.map((c) => c.state)).toEqual(['WARNING', 'CRITICAL']);
  });
});
