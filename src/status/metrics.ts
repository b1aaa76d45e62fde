/**
 * The repository's figures as Prometheus gauges: {@link repositoryMetrics} computes them from a
 * {@link RepositoryState} (pure), {@link formatPrometheus} writes the text exposition format (for
 * node_exporter's textfile collector), {@link registerMetrics} puts them on a prom-client registry.
 * The names and meanings are listed in docs/operations.md. A value that is not known (no rehearsal
 * yet, no server position) has no sample: absent, not zero.
 * @module
 */
import { newestFullBackup } from '../repository/catalog.js';
import { statusWindow, summarizeWalArchive } from './archive.js';
import { ageMs, failuresSinceLastSuccess } from './evaluate.js';
import type { RepositoryState } from './state.js';

/** One sample of a metric. */
export interface MetricSample {
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A metric and its samples. All of this module's metrics are gauges. */
export interface MetricFamily {
  /** `pgbb_...`. */
  name: string;
  /** One line saying what it measures, with its unit. */
  help: string;
  type: 'gauge';
  samples: MetricSample[];
}

const seconds = (ms: number): number => ms / 1000;
const epochSeconds = (d: Date): number => d.getTime() / 1000;

/** The kinds of runs whose last success is reported. */
const KINDS = ['full', 'incremental', 'rehearsal'] as const;

/** The metrics of the repository in `state` at `now`. */
export function repositoryMetrics(state: RepositoryState, now: Date): MetricFamily[] {
  const families: MetricFamily[] = [];
  const gauge = (name: string, help: string, samples: MetricSample[]): void => {
    families.push({ name, help, type: 'gauge', samples });
  };
  const one = (value: number | undefined | null, labels: Record<string, string> = {}): MetricSample[] =>
    value === undefined || value === null || Number.isNaN(value) ? [] : [{ labels, value }];

  const lastOf = KINDS.map((kind) => {
    if (kind === 'rehearsal') {
      const r = [...state.rehearsals].reverse().find((x) => x.result === 'pass');
      return { kind, end: r?.endTime, durationMs: r === undefined ? undefined : r.endTime.getTime() - r.startTime.getTime() };
    }
    const b = kind === 'full' ? newestFullBackup(state.backups) : state.backups.filter((x) => x.type === kind).at(-1);
    return { kind, end: b?.endTime, durationMs: b?.durationMs, originalSize: b?.originalSize, storedSize: b?.storedSize };
  });
  gauge(
    'pgbb_last_success_timestamp_seconds',
    'End of the last successful run of each kind (full, incremental backup; rehearsal), Unix time',
    lastOf.flatMap((l) => one(l.end === undefined ? undefined : epochSeconds(l.end), { kind: l.kind })),
  );
  gauge(
    'pgbb_last_success_duration_seconds',
    'Duration of the last successful run of each kind, seconds',
    lastOf.flatMap((l) => one(l.durationMs === undefined ? undefined : seconds(l.durationMs), { kind: l.kind })),
  );
  gauge(
    'pgbb_last_backup_original_bytes',
    'Bytes the server sent for the last backup of each type, before compression',
    lastOf.flatMap((l) => ('originalSize' in l ? one(l.originalSize, { kind: l.kind }) : [])),
  );
  gauge(
    'pgbb_last_backup_stored_bytes',
    'Bytes stored in the repository for the last backup of each type',
    lastOf.flatMap((l) => ('storedSize' in l ? one(l.storedSize, { kind: l.kind }) : [])),
  );
  gauge(
    'pgbb_backups',
    'Committed backups in the repository, by type',
    (['full', 'incremental'] as const).map((t) => ({ labels: { type: t }, value: state.backups.filter((b) => b.type === t).length })),
  );
  gauge('pgbb_backups_stored_bytes', 'Bytes stored by all committed backups (WAL archive excluded)', [
    { labels: {}, value: state.backups.reduce((n, b) => n + b.storedSize, 0) },
  ]);
  gauge('pgbb_backup_failures_since_success', 'Failed backup runs recorded since the start of the last successful one', [
    { labels: {}, value: failuresSinceLastSuccess(state).length },
  ]);

  const archive = summarizeWalArchive(state);
  gauge('pgbb_wal_archive_segments', 'Distinct WAL segments archived in the repository', [
    { labels: {}, value: archive?.wal.timelines.reduce((n, e) => n + e.segments, 0) ?? 0 },
  ]);
  gauge('pgbb_wal_archive_gaps', 'Runs of missing WAL segments in the archive (including between the newest backup and the archive)', [
    { labels: {}, value: archive?.holes.length ?? 0 },
  ]);
  gauge(
    'pgbb_wal_archive_last_timestamp_seconds',
    'When the newest archived WAL segment was stored, Unix time',
    one(archive === undefined ? undefined : epochSeconds(archive.wal.newest.storedAt)),
  );
  gauge(
    'pgbb_wal_archive_lag_seconds',
    'Age of the newest archived WAL segment, seconds',
    one(archive === undefined ? undefined : seconds(ageMs(now, archive.wal.newest.storedAt))),
  );
  gauge(
    'pgbb_wal_archive_lag_bytes',
    "The server's current WAL position minus the end of the archive, bytes (only when the server was asked)",
    one(archive?.lagBytes),
  );

  const window = statusWindow(state, archive);
  gauge(
    'pgbb_pitr_window_start_timestamp_seconds',
    'Earliest point a restore can reach (end of the oldest backup), Unix time',
    one(window.from === null ? undefined : epochSeconds(window.from.time)),
  );
  gauge(
    'pgbb_pitr_window_end_timestamp_seconds',
    'Latest point a restore can reach (end of the unbroken archive after the newest backup, or its end), Unix time',
    one(window.to === null ? undefined : epochSeconds(window.to.time)),
  );

  const last = state.rehearsals.at(-1);
  gauge(
    'pgbb_rehearsal_last_timestamp_seconds',
    'End of the last rehearsal, passed or not, Unix time',
    one(last === undefined ? undefined : epochSeconds(last.endTime)),
  );
  gauge(
    'pgbb_rehearsal_last_success',
    'Whether the last rehearsal passed (1) or failed (0)',
    one(last === undefined ? undefined : last.result === 'pass' ? 1 : 0),
  );
  const passed = last?.result === 'pass' ? last : undefined;
  gauge(
    'pgbb_rehearsal_recovery_seconds',
    'Recovery time measured by the last rehearsal (restore plus replay), seconds',
    one(passed === undefined ? undefined : seconds(passed.recoveryMs)),
  );
  gauge(
    'pgbb_rehearsal_restore_seconds',
    'Restore (fetch and lay out) time of the last rehearsal, seconds',
    one(passed === undefined ? undefined : seconds(passed.restoreMs)),
  );
  gauge(
    'pgbb_rehearsal_replay_seconds',
    'WAL replay time of the last rehearsal, seconds',
    one(passed === undefined ? undefined : seconds(passed.replayMs)),
  );
  gauge('pgbb_rehearsal_wal_replayed_bytes', 'WAL replayed by the last rehearsal, bytes', one(passed?.walBytes));
  gauge(
    'pgbb_rehearsal_recovery_point_timestamp_seconds',
    'Commit time of the last transaction the last rehearsal replayed (its recovery point), Unix time',
    one(passed?.lastTransactionTime == null ? undefined : epochSeconds(passed.lastTransactionTime)),
  );
  gauge(
    'pgbb_rehearsal_recovery_point_lag_seconds',
    "How far the last rehearsal's recovery point is behind the newest archived data, seconds",
    one(passed?.recoveryPointLagMs == null ? undefined : seconds(passed.recoveryPointLagMs)),
  );
  return families;
}
