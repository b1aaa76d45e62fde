import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Test files run in parallel worker processes. vitest's default is availableParallelism() - 1, which is ONE
// worker on the 2-core CI machine: every file then waits for the previous one, although integration files
// spend most of their time waiting on PostgreSQL (initdb/copies, fsync, checkpoints, child processes).
// Two workers on 2 cores measured 758 s for the whole suite under a shared machine's load; three were not
// faster there (CPU and disk saturate: per-file times grew 3-6x) and pushed a tsc check past its timeout.
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
