import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { debianBinDir, startCluster, testMajors, type Cluster } from '../harness/index.js';

describe.each(testMajors())('harness: PostgreSQL %i', (major) => {
  it('starts a configured cluster', async () => {
    const c: Cluster = await startCluster({ major });
    expect(c.major).toBe(major);
    const [v] = await c.sql<{ version: string }>('select version()');
    expect(v!.version).toContain(`PostgreSQL ${major}.`);
    const [w] = await c.sql<{ wal_level: string }>('show wal_level');
    expect(w!.wal_level).toBe('replica');
    const [k] = await c.sql<{ data_checksums: string }>('show data_checksums');
    expect(k!.data_checksums).toBe('on');
    console.log(major, c.timings);
    await c.destroy();
  });
});
