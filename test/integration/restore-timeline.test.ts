// Archiving and restoring across a timeline switch with receive-wal alone (no archive_command): a
// primary archived by receiveWal through a slot, a tar backup with -X none, a restore that recovers to the
// end of the archive (its last segment a .partial) and promotes onto timeline 2; receiveWal then archives
// the promoted server into the same archive: it resumes at the .partial on timeline 1, follows the switch
// and stores 00000002.history; a second restore with --target-timeline latest replays across the switch.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { receiveWal, runBackup, type ReceiveWalEvent, type SegmentCompletedEvent } from '../../src/index.js';
import { parseLsn } from '../../src/lsn.js';
import { chownToServer, makeTempDir, startCluster, type Cluster } from '../harness/index.js';
import { pgbbForServer, runPgbb, type ServerPgbb } from '../harness/pgbb-cli.js';
import { trustTcp } from '../harness/suite.js';
import { EventLog, expectSameAsServer, walCluster, walTestMajors } from './receive-wal-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
let runnable: ServerPgbb;

beforeAll(async () => {
  runnable = await pgbbForServer(root);
}, 180_000);

const completed = (evs: ReceiveWalEvent[]): SegmentCompletedEvent[] =>
  evs.filter((e): e is SegmentCompletedEvent => e.type === 'segment-completed');

describe.concurrent('receive-wal and restore across a promotion', () => {
  for (const major of walTestMajors()) {
    describe.sequential(`PostgreSQL ${major}`, () => {
      let c: Cluster;
      let archive: string;
      let backupDir: string;
      const servers: Cluster[] = [];

      beforeAll(async () => {
        c = await walCluster(major);
        archive = join(await makeTempDir(`tl-archive-${major}`), 'wal');
        backupDir = await makeTempDir(`tl-backup-${major}`);
      }, 300_000);
      afterAll(async () => {
        await Promise.allSettled([c, ...servers].filter(Boolean).map((s) => s.destroy()));
      });

      async function batchesIn(s: Cluster): Promise<number[]> {
        const rows = await s.sql<{ batch: number; n: string }>('SELECT batch, count(*)::text AS n FROM b GROUP BY batch ORDER BY batch');
        for (const row of rows) expect(row.n).toBe('100');
        return rows.map((row) => row.batch);
      }

      async function insertBatch(s: Cluster, batch: number): Promise<bigint> {
        await s.sql(`INSERT INTO b SELECT ${batch}, g FROM generate_series(1, 100) g`);
        const [row] = await s.sql<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
        return parseLsn(row!.l);
      }

      /** Restore the backup from the archive (the server user must read it) and start it; waits for promotion. */
      async function restoreAndStart(extra: string[], timeline: number): Promise<Cluster> {
        await chownToServer(archive, { recursive: true });
        const dataDir = await makeTempDir(`tl-restored-${major}`);
        const r = await runPgbb(runnable, ['restore', backupDir, '-D', dataDir, '--wal-archive', archive, '-N', ...extra]);
        expect(r.stderr).toMatch(new RegExp(`recovery will stop at [0-9A-F]+/[0-9A-F]+ on timeline ${timeline}`));
        expect(r.code, r.stderr).toBe(0);
        const s = await startCluster({ major, dataDir, conf: { archive_mode: 'off' } });
        servers.push(s);
        await vi.waitFor(
          async () =>
            expect((await s.sql<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec'))[0]!.rec, s.logText().slice(-2000)).toBe(false),
          { timeout: 90_000, interval: 200 },
        );
        return s;
      }

      it('receive-wal follows the promoted restore onto timeline 2; --target-timeline latest replays across it', async () => {
        await c.sql('CREATE TABLE b (batch int, n int)');
        await c.sql(`SELECT pg_create_physical_replication_slot('tl_slot', true)`);
        // Running before the backup: on 13 and 14 an empty archive starts at the server's current segment.
        const first = receiveWal({ connection: trustTcp(c), directory: archive, slotName: 'tl_slot', statusIntervalMs: 200 });
        const firstLog = new EventLog(first);
        let lastPrimaryLsn: bigint;
        try {
          await insertBatch(c, 0);
          await runBackup({
            connection: trustTcp(c),
            checkpoint: 'fast',
            wal: 'none',
            noSync: true,
            output: { format: 'tar', directory: backupDir },
          });
          await insertBatch(c, 1);
          await c.sql('SELECT pg_switch_wal()');
          lastPrimaryLsn = await insertBatch(c, 2);
          // Flushed (reported after fsync) up to batch 2's commit: the archive ends there, in a .partial.
          await vi.waitFor(
            () => expect(firstLog.events.some((e) => e.type === 'status-reported' && e.flush >= lastPrimaryLsn)).toBe(true),
            { timeout: 30_000, interval: 100 },
          );
        } finally {
          await first.stop();
        }
        expect(await firstLog.done).toBeUndefined();
        const tl1Partial = readdirSync(archive).filter((f) => f.endsWith('.partial'));
        expect(tl1Partial).toHaveLength(1);
        expect(tl1Partial[0]!.startsWith('00000001')).toBe(true);
        await c.stop();

        // Restore 1: to the end of the archive, then promotion (no target).
        const promoted = await restoreAndStart([], 1);
        expect(await batchesIn(promoted)).toEqual([0, 1, 2]);
        const [tli] = await promoted.sql<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
        expect(tli!.f.slice(0, 8)).toBe('00000002');

        // Keep archiving from the promoted server into the same archive.
        await insertBatch(promoted, 9);
        await promoted.sql('SELECT pg_switch_wal()');
        // WAL past the switch, outside table b: the archive then ends inside a timeline 2 segment.
        await promoted.sql('CREATE TABLE after_switch AS SELECT 1 AS i');
        const [end] = await promoted.sql<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
        const endLsn = parseLsn(end!.l);
        const second = receiveWal({ connection: trustTcp(promoted), directory: archive, endLsn, statusIntervalMs: 500 });
        const events: ReceiveWalEvent[] = [];
        for await (const ev of second) events.push(ev);
        expect(events.find((e) => e.type === 'connected')).toMatchObject({ startFrom: 'archive', startTimeline: 1 });
        expect(events.find((e) => e.type === 'timeline-switch')).toMatchObject({ from: 1, to: 2 });
        expect(events.some((e) => e.type === 'history-file' && e.name === '00000002.history')).toBe(true);
        expect(events.at(-1)).toMatchObject({ type: 'stopped', reason: 'end-lsn' });
        const files = readdirSync(archive);
        expect(readFileSync(join(archive, '00000002.history'))).toEqual(readFileSync(join(promoted.dataDir, 'pg_wal', '00000002.history')));
        // Timeline 1's last segment stays .partial (as pg_receivewal leaves it); timeline 2 has complete segments.
        expect(files.filter((f) => f.startsWith('00000001') && f.endsWith('.partial'))).toEqual(tl1Partial);
        const tl2 = completed(events).filter((e) => e.timeline === 2);
        expect(tl2.length).toBeGreaterThan(0);
        expect(expectSameAsServer(promoted, tl2)).toBe(tl2.length);
        await promoted.stop();

        // Restore 2: latest follows 00000002.history across the switch, to the batch written on timeline 2.
        const again = await restoreAndStart(['--target-timeline', 'latest'], 2);
        expect(await batchesIn(again)).toEqual([0, 1, 2, 9]);
        expect(existsSync(join(again.dataDir, 'recovery.signal'))).toBe(false);
      }, 150_000); // a backup, two restores and three servers: near a minute on a loaded machine
    });
  }
});
