import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Test files run in parallel worker processes. vitest's default is availableParallelism() - 1, which is ONE
// worker on the 2-core CI machine: every file then waits for the previous one, although integration files
// spend most of their time waiting on PostgreSQL (initdb/copies, fsync, checkpoints, child processes).
// Measured on 2 cores (a shared, loaded machine: load average 10-17), 7 integration-heavy files: 1 worker 728 s,
// 2 workers 301 s, 3 workers 323 s. The whole suite took 758 s with 2 workers; with 3 it was not faster (CPU and
// disk saturate: per-file times grew 3-6x) and a tsc check went past its timeout.
// PGBB_TEST_WORKERS overrides it (e.g. 1 to debug, or to measure).
const workers = Number(process.env.PGBB_TEST_WORKERS) || Math.max(2, availableParallelism() - 1);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: workers,
    teardownTimeout: 30_000,
  },
});
