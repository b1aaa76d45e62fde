// receiveWal under faults, on real servers with 1 MB segments and a pgbench load (Debian's pgbench 15,
// which drives every major): a server killed (immediate stop) and restarted, a connection cut by a TCP
// proxy, and a route that goes silent without closing. Each time the archiver reconnects and resumes
// where it stopped: the archive ends with every segment, byte-identical to the server's pg_wal (a large
// wal_keep_size keeps the server's copies until they are compared), each completed once; the segment
// that was .partial at the fault is completed later, and the last .partial agrees with the server.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receiveWal } from '../../src/index.js';
import { WalArchiveMismatchError } from '../../src/entries/errors.js';
import { parseLsn } from '../../src/lsn.js';
import { makeTempDir, startCluster, type Cluster } from '../harness/index.js';
import { trustTcp } from '../harness/suite.js';
import { initPgbench, startPgbench } from '../harness/pgbench.js';
import {
  EventLog,
  expectResumedSegment,
  expectWholeArchive,
  openSegment,
  startProxy,
  walCluster,
  WAL_MAJORS_15_17,
  walTestMajors,
} from './receive-wal-helpers.js';

const majors = walTestMajors(WAL_MAJORS_15_17);

describe.concurrent('receiveWal faults', () => {
  for (const major of majors) {
    describe.sequential(`PostgreSQL ${major}`, () => {
      let c: Cluster;
      let tmp: string;
      beforeAll(async () => {
        // The tests without a slot must find the WAL after a reconnection even under load.
        c = await walCluster(major, { wal_keep_size: '512MB' });
        initPgbench(c);
        tmp = await makeTempDir(`receive-wal-faults-${major}`);
      }, 300_000);
      afterAll(async () => {
        await c?.destroy();
      });

      it('resumes with no gap after the server is killed (immediate stop) and restarted under pgbench', async () => {
        await c.sql(`select pg_create_physical_replication_slot('fault_slot', true)`);
        const dir = join(tmp, 'restart');
        const receiver = receiveWal({
          connection: trustTcp(c),
          directory: dir,
          slotName: 'fault_slot',
          statusIntervalMs: 500,
          reconnectDelayMs: 200,
          maxReconnectDelayMs: 1000,
        });
        const log = new EventLog(receiver);
        const load = startPgbench(c);
        let cutOff: string | undefined;
        try {
          // The fault hits inside a segment: after a completion, once the next segment is open.
          await log.waitFor('segment-started', 1, await log.waitFor('segment-completed', 2));
          await c.stop('immediate');
          const down = await log.waitFor('reconnecting');
          cutOff = openSegment(log.events.slice(0, down));
          await c.start();
          const back = await log.waitFor('connected', 1, down);
          await log.waitFor('segment-completed', 2, back);
        } finally {
          await load.stop();
          await receiver.stop();
        }
        expect(await log.done).toBeUndefined();
        // pgbench ran before and after the restart.
        expect(load.runs).toBeGreaterThanOrEqual(2);
        expect(log.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'stopped' });
        const resumed = log.events.filter((e) => e.type === 'connected').at(-1);
        expect(resumed).toMatchObject({ startFrom: 'archive' });
        expectResumedSegment(log.events, cutOff);
        expectWholeArchive(c, dir, log.events);
        await c.sql(`select pg_drop_replication_slot('fault_slot')`);
      });

      it('resumes with no gap after a TCP proxy cuts the connection under pgbench', async () => {
        const proxy = await startProxy(c.port);
        const dir = join(tmp, 'cut');
        const receiver = receiveWal({
          connection: trustTcp(c, { port: proxy.port }),
          directory: dir,
          statusIntervalMs: 500,
          reconnectDelayMs: 100,
        });
        const log = new EventLog(receiver);
        const load = startPgbench(c);
        const cutOff: (string | undefined)[] = [];
        try {
          await log.waitFor('segment-started', 1, await log.waitFor('segment-completed', 2));
          proxy.cut();
          const down = await log.waitFor('reconnecting');
          cutOff.push(openSegment(log.events.slice(0, down)));
          await log.waitFor('segment-started', 1, await log.waitFor('segment-completed', 2, down));
          proxy.cut();
          const again = await log.waitFor('reconnecting', 1, down);
          cutOff.push(openSegment(log.events.slice(0, again)));
          await log.waitFor('segment-completed', 2, again);
        } finally {
          expect(await load.stop()).toBeGreaterThan(0);
          await receiver.stop();
          await proxy.close();
        }
        expect(await log.done).toBeUndefined();
        expect(proxy.connections).toBeGreaterThanOrEqual(3);
        for (const seg of cutOff) expectResumedSegment(log.events, seg);
        expectWholeArchive(c, dir, log.events);
      });

      it('detects a server that goes silent without closing (server timeout) and resumes through a new connection', async () => {
        const proxy = await startProxy(c.port);
        const dir = join(tmp, 'silent');
        const receiver = receiveWal({
          connection: trustTcp(c, { port: proxy.port }),
          directory: dir,
          statusIntervalMs: 300,
          serverTimeoutMs: 1500,
          reconnectDelayMs: 100,
        });
        const log = new EventLog(receiver);
        const load = startPgbench(c);
        try {
          await log.waitFor('segment-completed', 1);
          proxy.stall();
          const down = await log.waitFor('reconnecting');
          const ev = log.events[down - 1];
          expect(ev?.type === 'reconnecting' && ev.error.message).toMatch(/sent nothing for 2 s/);
          await log.waitFor('segment-completed', 2, down);
        } finally {
          await load.stop();
          await receiver.stop();
          await proxy.close();
        }
        expect(await log.done).toBeUndefined();
        expectWholeArchive(c, dir, log.events);
      });
    });
  }
});

describe('receiveWal on a reconnection to another cluster', () => {
  const major = majors[0]!;
  let a: Cluster;
  let b: Cluster;
  beforeAll(async () => {
    // template: false gives the second cluster its own system identifier.
    [a, b] = await Promise.all([walCluster(major), startCluster({ major, ssl: false, template: false, walSegmentSizeMb: 1 })]);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([a?.destroy(), b?.destroy()]);
  });

  it("stops with WalArchiveMismatchError instead of archiving another system's WAL", async () => {
    const proxy = await startProxy(a.port);
    const dir = join(await makeTempDir(`receive-wal-mismatch-${major}`), 'wal');
    const receiver = receiveWal({ connection: trustTcp(a, { port: proxy.port }), directory: dir, reconnectDelayMs: 50 });
    const log = new EventLog(receiver);
    try {
      await log.waitFor('connected');
      proxy.retarget(b.port);
      proxy.cut();
      const err = await log.done;
      expect(err).toBeInstanceOf(WalArchiveMismatchError);
      expect((err as Error).message).toMatch(/system identifier changed/);
      expect(log.count('reconnecting')).toBe(1);
      expect(log.count('connected')).toBe(1);
    } finally {
      await receiver.stop();
      await proxy.close();
    }
  });

  it("refuses to add a second cluster's WAL to an archive (system identifier in the first page)", async () => {
    const dir = join(await makeTempDir(`receive-wal-other-${major}`), 'wal');
    await a.sql(`insert into t select g, 'o' from generate_series(1, 300) g`);
    const [cur] = await a.sql<{ l: string }>('select pg_current_wal_lsn()::text l');
    const endLsn = parseLsn(cur!.l);
    const first = new EventLog(receiveWal({ connection: trustTcp(a), directory: dir, endLsn, compression: 'gzip' }));
    expect(await first.done).toBeUndefined();
    expect(first.count('segment-started')).toBeGreaterThan(0);
    const other = new EventLog(receiveWal({ connection: trustTcp(b), directory: dir, compression: 'gzip' }));
    const err = await other.done;
    expect(err).toBeInstanceOf(WalArchiveMismatchError);
    expect((err as Error).message).toMatch(/holds WAL of another cluster/);
    expect(other.count('segment-started')).toBe(0);
  });
});
