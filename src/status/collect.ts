/**
 * The metrics of a repository for a Node service, in one call: read the snapshot, compute the gauges,
 * and register them on the application's prom-client registry when it passes one.
 * @module
 */
import type { Repository } from '../repository/repository.js';
import { repositoryMetrics, type MetricFamily } from './metrics.js';
import { registerMetrics, type PromRegistryLike } from './prometheus.js';
import { readRepositoryState, type ReadRepositoryStateOptions } from './state.js';

/** Options of {@link collectRepositoryMetrics}. */
export interface CollectRepositoryMetricsOptions extends ReadRepositoryStateOptions {
  /** A prom-client registry (`register`, or a `new Registry()`) to register the gauges on; each call updates them. @default none */
  registry?: PromRegistryLike | undefined;
  /** The time ages are measured at. @default now */
  now?: Date | undefined;
}

/**
 * Reads `repository` and resolves to its metrics (and registers them on `registry` when given).
 *
 * @example
 * ```ts
 * import { register } from 'prom-client';
 * import { openRepository } from 'pg-basebackup/repository';
 * import { collectRepositoryMetrics } from 'pg-basebackup/status';
 *
 * const repo = await openRepository('s3://backups/db1');
 * // Refresh before each scrape, or on a timer.
 * await collectRepositoryMetrics(repo, { registry: register });
 * ```
 */
export async function collectRepositoryMetrics(
  repository: Repository,
  options: CollectRepositoryMetricsOptions = {},
): Promise<MetricFamily[]> {
  const { registry, now, ...read } = options;
  const families = repositoryMetrics(await readRepositoryState(repository, read), now ?? new Date());
  if (registry !== undefined) registerMetrics(registry, families);
  return families;
}
