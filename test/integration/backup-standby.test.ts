// -R output starts as a standby that streams from the primary, in plain and in tar format,
// and a standby built from our own -R backup can itself be backed up, and that backup
// restores.
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runBackup } from '../../src/index.js';
import { makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';
import { exec, expectRecovered, tarMembers } from './backup-helpers.js';

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  return vi.waitFor(
    async () => {
      const v = await fn();
      expect(v, `waiting for ${what}`).toBeDefined();
      return v!;
    },
    { timeout: timeoutMs, interval: 100 },
  );
}

/** The standby streams from the primary: its WAL receiver and the primary's walsender say so, and a new row arrives. */
async function expectStreamingStandby(primary: Cluster, standby: Cluster, marker: number): Promise<void> {
  const [rec] = await standby.sql<{ r: boolean }>('select pg_is_in_recovery() r');
  expect(rec!.r).toBe(true);
  const receiver = await poll("the standby's WAL receiver", async () => {
    const rows = await standby.sql<{ status: string; conninfo: string }>('select status, conninfo from pg_stat_wal_receiver');
    return rows[0]?.status === 'streaming' ? rows[0] : undefined;
  });
  expect(receiver.conninfo).toContain(`port=${primary.port}`);
  await poll("the primary's walsender for the standby", async () => {
    const rows = await primary.sql<{ n: number }>(`select count(*)::int n from pg_stat_replication where state = 'streaming'`);
    return rows[0]!.n > 0 ? true : undefined;
  });
  await primary.sql('insert into t values ($1)', [marker]);
  await poll(`row ${marker} on the standby`, async () => {
    const rows = await standby.sql<{ n: number }>('select count(*)::int n from t where i = $1', [marker]);
    return rows[0]!.n === 1 ? true : undefined;
  });
}

describe.concurrent('standbys', () => {
  for (const major of testMajors()) {
    describe.sequential(`PostgreSQL ${major}`, () => {
      let primary: Cluster;
      let plainStandby: Cluster | undefined;
      let plainStandbyDir = '';
      beforeAll(async () => {
        primary = await startCluster({ major, ssl: false });
        await primary.sql('create table t(i int)');
        await primary.sql('insert into t select generate_series(1, 1000)');
      });
      afterAll(async () => {
        await plainStandby?.destroy();
        await primary?.destroy();
      });

      it('plain -R output starts as a standby that streams from the primary', async () => {
        const dir = join(await makeTempDir('standby-plain'), 'data');
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          writeRecoveryConf: true,
          output: { format: 'plain', directory: dir },
        });
        expect(existsSync(join(dir, 'standby.signal'))).toBe(true);
        plainStandbyDir = dir;
        const auto = await readFile(join(dir, 'postgresql.auto.conf'), 'utf8');
        expect(auto).toMatch(/^primary_conninfo = '.*port=\d+.*'$/m);
        plainStandby = await startCluster({ major, dataDir: dir });
        await expectStreamingStandby(primary, plainStandby, 100_001);
      });

      it('tar -R output carries postgresql.auto.conf with primary_conninfo and standby.signal inside base.tar', async () => {
        const out = join(await makeTempDir('standby-tar'), 'out');
        await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          writeRecoveryConf: true,
          output: { format: 'tar', directory: out },
        });
        const base = join(out, 'base.tar');
        expect(await tarMembers(base)).toEqual(expect.arrayContaining(['standby.signal', 'postgresql.auto.conf']));
        const { stdout: auto } = await exec('tar', ['-xOf', base, 'postgresql.auto.conf']);
        expect(auto).toMatch(new RegExp(`^primary_conninfo = '.*port=${primary.port}.*'$`, 'm'));
        // The same settings as the plain backup, which the test above started as a standby.
        expect(auto).toBe(
          await readFile(join(plainStandbyDir, 'postgresql.auto.conf'), 'utf8').then((t) =>
            t.replace(/\n# pgbb test harness\n[\s\S]*$/, '\n'),
          ),
        );
      });

      it('a backup taken from the -R standby restores', async () => {
        const standby = plainStandby!;
        expect(standby).toBeDefined();
        await primary.sql('insert into t select generate_series(2001, 3000)');
        const [want] = await primary.sql<{ n: number; s: string }>('select count(*)::int n, sum(i)::text s from t');
        await poll('the standby to catch up', async () => {
          const [got] = await standby.sql<{ n: number }>('select count(*)::int n from t');
          return got!.n === want!.n ? true : undefined;
        });
        const dir = join(await makeTempDir('from-standby'), 'data');
        const result = await runBackup({
          connection: standby.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'plain', directory: dir },
        });
        expect(result.endLsn >= result.startLsn).toBe(true);
        const label = await readFile(join(dir, 'backup_label'), 'utf8');
        expect(label).toMatch(/^BACKUP FROM: standby$/m);
        expect((await readdir(join(dir, 'pg_wal'))).some((f) => /^[0-9A-F]{24}$/.test(f))).toBe(true);
        // The standby's own standby.signal and primary_conninfo come along (the server does not
        // exclude them): without the signal file the copy recovers and becomes a primary.
        expect(existsSync(join(dir, 'standby.signal'))).toBe(true);
        await rm(join(dir, 'standby.signal'));
        const restored = await startCluster({ major, dataDir: dir });
        try {
          await expectRecovered(restored);
          const [got] = await restored.sql<{ n: number; s: string }>('select count(*)::int n, sum(i)::text s from t');
          expect(got).toEqual(want);
        } finally {
          await restored.destroy();
        }
      });
    });
  }
});
