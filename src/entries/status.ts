/**
 * Monitoring a backup repository: {@link readRepositoryState} reads what monitoring needs in one
 * snapshot; {@link evaluateStatus} turns it into Nagios/Icinga checks (OK, WARNING, CRITICAL, UNKNOWN;
 * what `pgbb status` prints); {@link repositoryMetrics} and {@link collectRepositoryMetrics} give the
 * Prometheus gauges (what `pgbb metrics` prints with {@link formatPrometheus}), registered on a
 * prom-client registry when the application passes one. The checks and metric names are documented in
 * docs/operations.md.
 *
 * @example
 * ```ts
 * import { openRepository } from 'pg-basebackup/repository';
 * import { evaluateStatus, formatStatusReport, readRepositoryState } from 'pg-basebackup/status';
 *
 * await using repo = await openRepository('/backups/db1');
 * const report = evaluateStatus(await readRepositoryState(repo), { maxBackupAgeMs: 2 * 86_400_000 }, new Date());
 * process.stdout.write(formatStatusReport(report));
 * process.exitCode = report.exitCode;
 * ```
 * @module pg-basebackup/status
 */
export {
  readRepositoryState,
  type ArchivedSegmentInfo,
  type ReadRepositoryStateOptions,
  type RepositoryState,
  type ServerWalPosition,
} from '../status/state.js';
export {
  CHECK_EXIT_CODE,
  DEFAULT_MAX_BACKUP_AGE_MS,
  evaluateStatus,
  failuresSinceLastSuccess,
  formatAge,
  formatStatusReport,
  type CheckState,
  type StatusCheck,
  type StatusCheckName,
  type StatusReport,
  type StatusThresholds,
} from '../status/evaluate.js';
export { statusWindow, summarizeWalArchive, type StatusWindow, type WalArchiveHole, type WalArchiveSummary } from '../status/archive.js';
export { repositoryMetrics, type MetricFamily, type MetricSample } from '../status/metrics.js';
export { formatPrometheus, registerMetrics, type PromMetricLike, type PromRegistryLike } from '../status/prometheus.js';
export { collectRepositoryMetrics, type CollectRepositoryMetricsOptions } from '../status/collect.js';
export type { WalGap, WalTimelineExtent } from '../repository/wal-keys.js';
