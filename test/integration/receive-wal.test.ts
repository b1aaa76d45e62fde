// receiveWal() against real servers with 1 MB segments: start positions (slot, server, archive),
// --endpos with one .partial, compression switching between runs with the names continuing,
// file modes, checksums equal to the server's pg_wal, the gap refusal, and a promoted standby
// followed onto timeline 2 with its history file.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { receiveWal, runBackup, type ReceiveWalEvent, type SegmentCompletedEvent, type StatusReportedEvent } from '../../src/index.js';
import { WalArchiveGapError } from '../../src/entries/errors.js';
import { ReplicationConnection } from '../../src/entries/connection.js';
import { createReplicationSlot, dropReplicationSlot } from '../../src/entries/replication.js';
import { parseLsn } from '../../src/lsn.js';
import { makeTempDir, startCluster, type Cluster } from '../harness/index.js';
import { trustTcp } from '../harness/suite.js';
import {
  archivedSegments,
  collect,
  EventLog,
  expectContiguous,
  expectSameAsServer,
  libraryRun,
  makeWal,
  modeOf,
  runOverWal,
  SEG,
  slotStartSupported,
  walCluster,
  walTestMajors,
} from './receive-wal-helpers.js';

const majors = walTestMajors();

const completed = (evs: ReceiveWalEvent[]): SegmentCompletedEvent[] =>
  evs.filter((e): e is SegmentCompletedEvent => e.type === 'segment-completed');

async function withConn<T>(c: Cluster, fn: (conn: ReplicationConnection) => Promise<T>): Promise<T> {
  const conn = await ReplicationConnection.connect(trustTcp(c));
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

describe.concurrent('receiveWal', () => {
  for (const major of majors) {
    describe.sequential(`PostgreSQL ${major}`, () => {
      let c: Cluster;
      let tmp: string;
      beforeAll(async () => {
        c = await walCluster(major);
        tmp = await makeTempDir(`receive-wal-${major}`);
      }, 300_000);
      afterAll(async () => {
        await c?.destroy();
      });

      it("archives from the slot's restart position (15+; 13/14: the server's segment) up to --endpos, leaving one .partial, byte-identical to pg_wal", async () => {
        const dir = join(tmp, 'slot');
        await withConn(c, (conn) => createReplicationSlot(conn, { name: 'arch_slot' }));
        const [slot] = await c.sql<{ r: string }>(`select restart_lsn::text r from pg_replication_slots where slot_name = 'arch_slot'`);
        const restart = parseLsn(slot!.r);
        // The end position lies in the middle of a segment.
        const evs = await runOverWal(c, 3, slotStartSupported(major), (endLsn) =>
          libraryRun(receiveWal({ connection: trustTcp(c), directory: dir, slotName: 'arch_slot', endLsn, statusIntervalMs: 1000 })),
        );
        const connected = evs.find((e) => e.type === 'connected');
        if (slotStartSupported(major)) {
          expect(connected).toMatchObject({ startFrom: 'slot', startLsn: restart - (restart % BigInt(SEG)), startTimeline: 1 });
        } else {
          // No READ_REPLICATION_SLOT: as pg_receivewal 13/14, the server's flush position rounded down to a segment.
          expect(connected).toMatchObject({ startFrom: 'server', startTimeline: 1 });
          expect(connected?.type === 'connected' && connected.startLsn % BigInt(SEG)).toBe(0n);
        }
        const last = evs.at(-1);
        expect(last).toMatchObject({ type: 'stopped', reason: 'end-lsn' });
        const done = completed(evs);
        expect(done.length).toBeGreaterThanOrEqual(3);
        expect(expectSameAsServer(c, done)).toBe(done.length);
        const files = readdirSync(dir);
        const partials = files.filter((f) => f.endsWith('.partial'));
        expect(partials).toHaveLength(1);
        expect(statSync(join(dir, partials[0]!)).size).toBe(SEG);
        expectContiguous(archivedSegments(dir));
        expect(modeOf(dir)).toBe(0o700);
        for (const f of files) expect(modeOf(join(dir, f)), f).toBe(0o600);
        // The slot moved to what we flushed.
        const [after] = await c.sql<{ r: string }>(`select restart_lsn::text r from pg_replication_slots where slot_name = 'arch_slot'`);
        expect(parseLsn(after!.r)).toBeGreaterThan(restart);
        await withConn(c, (conn) => dropReplicationSlot(conn, 'arch_slot'));
      });

      it('continues the same names with gzip, then lz4, then none; completed files pass gzip -t / lz4 -t', async () => {
        const dir = join(tmp, 'compress');
        // A slot keeps the WAL of each run from its first segment on, whatever runs before.
        await withConn(c, (conn) => createReplicationSlot(conn, { name: 'comp_slot' }));
        // Each run ends in the middle of a segment, leaving a .partial that the next one rewrites.
        let archiveEmpty = true;
        const run = async (compression: string | undefined, segments: number) => {
          const writtenAhead = !archiveEmpty || slotStartSupported(major);
          archiveEmpty = false;
          return runOverWal(c, segments, writtenAhead, (endLsn) =>
            libraryRun(
              receiveWal({
                connection: trustTcp(c),
                directory: dir,
                endLsn,
                statusIntervalMs: 1000,
                slotName: 'comp_slot',
                ...(compression !== undefined ? { compression } : {}),
              }),
            ),
          );
        };
        try {
          const first = await run('gzip', 2);
          expect(first.find((e) => e.type === 'connected')).toMatchObject({ startFrom: slotStartSupported(major) ? 'slot' : 'server' });
          const gz = readdirSync(dir).filter((f) => f.endsWith('.gz'));
          expect(gz.length).toBeGreaterThanOrEqual(2);
          for (const f of gz) execFileSync('gzip', ['-t', join(dir, f)]);
          for (const f of gz) expect(execFileSync('gzip', ['-dc', join(dir, f)], { maxBuffer: 4 * SEG }).length).toBe(SEG);
          expect(expectSameAsServer(c, completed(first))).toBeGreaterThan(0);
          expect(readdirSync(dir).filter((f) => f.endsWith('.gz.partial'))).toHaveLength(1);

          const second = await run('lz4', 2);
          expect(second.find((e) => e.type === 'connected')).toMatchObject({ startFrom: 'archive' });
          const lz = readdirSync(dir).filter((f) => f.endsWith('.lz4'));
          expect(lz.length).toBeGreaterThanOrEqual(2);
          for (const f of lz) execFileSync('lz4', ['-t', join(dir, f)]);
          for (const f of lz) expect(execFileSync('lz4', ['-dc', join(dir, f)], { maxBuffer: 4 * SEG }).length).toBe(SEG);
          expect(expectSameAsServer(c, completed(second))).toBeGreaterThan(0);

          const third = await run(undefined, 2);
          expect(third.find((e) => e.type === 'connected')).toMatchObject({ startFrom: 'archive' });
          const all = readdirSync(dir);
          expectContiguous(all.filter((f) => /^[0-9A-F]{24}(\.gz|\.lz4)?$/.test(f)).map((f) => f.slice(0, 24)));
          // One .partial remains, and no stale partial of a segment that is complete.
          const partials = all.filter((f) => f.endsWith('.partial'));
          expect(partials).toHaveLength(1);
          const complete = new Set(all.filter((f) => !f.endsWith('.partial')).map((f) => f.slice(0, 24)));
          expect(complete.has(partials[0]!.slice(0, 24))).toBe(false);
          expect(expectSameAsServer(c, completed(third))).toBeGreaterThan(0);
          for (const f of all) expect(modeOf(join(dir, f)), f).toBe(0o600);
        } finally {
          await withConn(c, (conn) => dropReplicationSlot(conn, 'comp_slot'));
        }
      });

      it('reports flush only with a slot or --synchronous; --synchronous reports every write as flushed at once', async () => {
        const statusEvents = async (synchronous: boolean) => {
          const receiver = receiveWal({
            connection: trustTcp(c),
            directory: join(tmp, `report-${synchronous}`),
            synchronous,
            statusIntervalMs: synchronous ? 0 : 200,
          });
          const log = new EventLog(receiver);
          try {
            await log.waitFor('connected');
            await c.sql(`insert into t select g, 'r' from generate_series(1, 500) g`);
            const started = await log.waitFor('segment-started');
            await c.sql(`insert into t select g, 'r' from generate_series(1, 500) g`);
            await log.waitFor('status-reported', 3, started);
          } finally {
            await receiver.stop();
          }
          expect(await log.done).toBeUndefined();
          return log.events.filter((e): e is StatusReportedEvent => e.type === 'status-reported');
        };
        const plain = await statusEvents(false);
        expect(plain.every((e) => e.flush === 0n)).toBe(true);
        const sync = await statusEvents(true);
        expect(sync.length).toBeGreaterThanOrEqual(3);
        for (const e of sync) expect(e.flush).toBe(e.write);
        expect(sync.at(-1)!.write).toBeGreaterThan(sync[0]!.write);
      });

      it("refuses to leave a hole when the server already removed the archive's next segment", async () => {
        const dir = join(tmp, 'gap');
        await withConn(c, (conn) => createReplicationSlot(conn, { name: 'gap_slot' }));
        const first = await runOverWal(c, 2, slotStartSupported(major), (endLsn) =>
          libraryRun(receiveWal({ connection: trustTcp(c), directory: dir, endLsn, slotName: 'gap_slot', segmentChecksums: false })),
        );
        await withConn(c, (conn) => dropReplicationSlot(conn, 'gap_slot'));
        expect(archivedSegments(dir).length).toBeGreaterThan(0);
        // segmentChecksums: false: the segments are completed without a checksum.
        expect(completed(first).length).toBeGreaterThan(0);
        for (const e of completed(first)) expect(e.sha256).toBeUndefined();
        // Let the server recycle what follows the archive.
        await c.sql(`alter system set wal_keep_size = 0`);
        await c.sql('select pg_reload_conf()');
        try {
          for (let i = 0; i < 4; i++) {
            await makeWal(c, 3);
            await c.sql('checkpoint');
          }
          const [oldest] = await c.sql<{ n: string }>(`select min(name) n from pg_ls_waldir() where name ~ '^[0-9A-F]{24}$'`);
          const archived = archivedSegments(dir).at(-1)!;
          const [ks] = await c.sql<{ k: string }>(`select setting k from pg_settings where name = 'wal_keep_size'`);
          const slots = await c.sql<{ s: string }>('select slot_name s from pg_replication_slots');
          expect(oldest!.n > archived, `${oldest!.n} ${archived} keep=${ks!.k} slots=${slots.map((x) => x.s).join()}`).toBe(true);
          const err = await collect(receiveWal({ connection: trustTcp(c), directory: dir })).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(WalArchiveGapError);
          expect((err as Error).message).toContain(`segment ${nextSegment(archived)}`);
          // With a slot created since, its restart position (READ_REPLICATION_SLOT, 15+) bounds the hole.
          await withConn(c, (conn) => createReplicationSlot(conn, { name: 'late_slot' }));
          try {
            const [slot] = await c.sql<{ r: string }>(`select restart_lsn::text r from pg_replication_slots where slot_name = 'late_slot'`);
            const withSlot = await collect(receiveWal({ connection: trustTcp(c), directory: dir, slotName: 'late_slot' })).catch(
              (e: unknown) => e,
            );
            expect(withSlot).toBeInstanceOf(WalArchiveGapError);
            const gap = withSlot as WalArchiveGapError;
            if (slotStartSupported(major)) {
              expect(gap.message).toContain(`segments ${nextSegment(archived)} to `);
              const restart = parseLsn(slot!.r);
              expect(gap.missingTo).toBe(restart - (restart % BigInt(SEG)));
            } else {
              expect(gap.message).toContain(`segment ${nextSegment(archived)} (from `);
            }
            expect(archivedSegments(dir).at(-1)).toBe(archived);
          } finally {
            await withConn(c, (conn) => dropReplicationSlot(conn, 'late_slot'));
          }
        } finally {
          await c.sql(`alter system reset wal_keep_size`);
          await c.sql('select pg_reload_conf()');
        }
      });

      it("follows a promoted standby onto timeline 2 and stores its history file; the old timeline's last segment stays .partial", async () => {
        const standbyDir = join(await makeTempDir(`receive-wal-standby-${major}`), 'data');
        await runBackup({
          connection: trustTcp(c),
          checkpoint: 'fast',
          noSync: true,
          writeRecoveryConf: true,
          output: { format: 'plain', directory: standbyDir },
        });
        const standby = await startCluster({ major, dataDir: standbyDir, ssl: false });
        try {
          await makeWal(c, 2);
          // WAL after the switch: the standby's last timeline-1 segment is then incomplete at promotion.
          await c.sql(`insert into t select g, 'w' from generate_series(1, 200) g`);
          const [p] = await c.sql<{ l: string }>('select pg_current_wal_lsn()::text l');
          // Wait for the standby to replay what the primary has.
          await waitUntil(async () => {
            const [r] = await standby.sql<{ ok: boolean }>(`select pg_last_wal_replay_lsn() >= '${p!.l}'::pg_lsn ok`);
            return r!.ok;
          });
          const dir = join(tmp, 'promote');
          const receiver = receiveWal({ connection: trustTcp(standby), directory: dir, statusIntervalMs: 500 });
          const events: ReceiveWalEvent[] = [];
          let promoted = false;
          for await (const ev of receiver) {
            events.push(ev);
            if (ev.type === 'connected' && !promoted) {
              promoted = true;
              await standby.sql('select pg_promote()');
              await standby.sql(`insert into t select g, 'z' from generate_series(1, 1000) g`);
              await standby.sql('select pg_switch_wal()');
            }
            if (ev.type === 'segment-completed' && ev.timeline === 2) break;
          }
          const sw = events.find((e) => e.type === 'timeline-switch');
          expect(sw).toMatchObject({ from: 1, to: 2 });
          expect(events.some((e) => e.type === 'history-file' && e.name === '00000002.history')).toBe(true);
          const files = readdirSync(dir);
          expect(files).toContain('00000002.history');
          expect(readFileSync(join(dir, '00000002.history'))).toEqual(readFileSync(join(standbyDir, 'pg_wal', '00000002.history')));
          const oldPartial = files.filter((f) => f.startsWith('00000001') && f.endsWith('.partial'));
          expect(oldPartial, files.join(' ')).toHaveLength(1);
          expect(events.some((e) => e.type === 'segment-partial' && e.timeline === 1)).toBe(true);
          expect(
            expectSameAsServer(
              standby,
              completed(events).filter((e) => e.timeline === 2),
            ),
          ).toBeGreaterThan(0);
        } finally {
          await standby.destroy();
        }
      });
    });
  }
});

function nextSegment(name: string): string {
  const lo = Number.parseInt(name.slice(16, 24), 16) + 1;
  const hi = Number.parseInt(name.slice(8, 16), 16) + Math.floor(lo / 4096);
  return name.slice(0, 8) + hi.toString(16).toUpperCase().padStart(8, '0') + (lo % 4096).toString(16).toUpperCase().padStart(8, '0');
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await check())) throw new Error('not yet');
    },
    { timeout: timeoutMs, interval: 100 },
  );
}
