// WAL streaming against real servers of every major from testMajors(): a pg_wal directory through a
// temporary slot, pg_wal.tar through a permanent slot whose restart_lsn must follow our flush reports.
// Segments are checked page by page (magic, timeline, xlp_pageaddr, long header), and on 15 with
// Debian's pg_waldump too.
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReplicationConnection } from '../../src/connection/connection.js';
import type { ConnectionOptions } from '../../src/connection/types.js';
import { PgBackupError } from '../../src/errors.js';
import { formatLsn, lsn as lsnOf, parseLsn, type Lsn } from '../../src/lsn.js';
import { createReplicationSlot, identifySystem, show } from '../../src/replication/commands.js';
import { DirectoryWalSink } from '../../src/wal/directory-sink.js';
import { parseSegmentFileName, parseWalSegmentSize, segmentFileNameForLsn, segmentStartOf } from '../../src/wal/segments.js';
import type { WalSink } from '../../src/wal/sink.js';
import { startWalStream } from '../../src/wal/streamer.js';
import { TarWalSink } from '../../src/wal/tar-sink.js';
import { DEBIAN_BIN_DIR, testMajors, type Cluster } from '../harness/index.js';
import { clustersForMajors, trustTcp } from '../harness/suite.js';
import { reloadSettings } from './backup-helpers.js';

const majors = testMajors();
const clusters = clustersForMajors(majors, 'wal-stream');
const cluster = (major: number): Cluster => clusters.get(major);
const tcp = (c: Cluster): ConnectionOptions => trustTcp(c);

const XLOG_BLCKSZ = 8192;
const XLP_LONG_HEADER = 0x0002;

/**
 * Check every page of a segment file that holds streamed WAL (those starting before `validBytes`):
 * zero pages only after a WAL switch, else the same magic everywhere, our timeline, xlp_pageaddr = the page's own LSN, and on the first page
 * the long header (system identifier, segment size, block size). Bytes from `validBytes` on must be
 * zero. Returns the page magic.
 */
function checkSegment(
  file: Buffer,
  o: { segno: bigint; segmentSize: number; timeline: number; systemId: string; validBytes: number; pageTimelines?: number[] },
): number {
  expect(file.length).toBe(o.segmentSize);
  const magic = file.readUInt16LE(0);
  expect(magic & 0xff00).toBe(0xd100); // XLOG_PAGE_MAGIC is 0xD1xx in every supported version
  let switched = false;
  for (let page = 0; page * XLOG_BLCKSZ < o.validBytes; page++) {
    const at = page * XLOG_BLCKSZ;
    const where = `segment ${o.segno} page ${page}`;
    // After an XLOG SWITCH record the server sends the rest of the segment as zero pages.
    if (page > 0 && (switched || file.readUInt16LE(at) === 0)) {
      switched = true;
      expect(
        file.subarray(at, at + XLOG_BLCKSZ).every((b) => b === 0),
        `${where} after a switch`,
      ).toBe(true);
      continue;
    }
    expect(file.readUInt16LE(at), `${where} magic`).toBe(magic);
    // A new timeline's first segment starts with pages copied from the old one (their xlp_tli is the old one).
    expect(o.pageTimelines ?? [o.timeline], `${where} tli`).toContain(file.readUInt32LE(at + 4));
    expect(file.readBigUInt64LE(at + 8), `${where} pageaddr`).toBe(o.segno * BigInt(o.segmentSize) + BigInt(at));
    const info = file.readUInt16LE(at + 2);
    if (page === 0) {
      expect(info & XLP_LONG_HEADER, `${where} long header`).toBe(XLP_LONG_HEADER);
      expect(file.readBigUInt64LE(at + 24).toString(), `${where} sysid`).toBe(o.systemId);
      expect(file.readUInt32LE(at + 32), `${where} seg size`).toBe(o.segmentSize);
      expect(file.readUInt32LE(at + 36), `${where} block size`).toBe(XLOG_BLCKSZ);
    } else {
      expect(info & XLP_LONG_HEADER, `${where} long header`).toBe(0);
    }
  }
  expect(
    file.subarray(o.validBytes).every((b) => b === 0),
    `zeros after ${o.validBytes} in segment ${o.segno}`,
  ).toBe(true);
  return magic;
}

/** Check the segment files (complete or .partial) of `dir` covering [start, end) and return their names. */
function checkWalDirectory(
  dir: string,
  o: { start: Lsn; end: Lsn; segmentSize: number; timeline: number; systemId: string; pageTimelines?: number[] },
): string[] {
  const first = segmentStartOf(o.start, o.segmentSize) / BigInt(o.segmentSize);
  const last = (o.end - 1n) / BigInt(o.segmentSize);
  const names = readdirSync(dir)
    .filter((n) => /^[0-9A-F]{24}(\.partial)?$/.test(n))
    .filter((n) => {
      const p = parseSegmentFileName(n.slice(0, 24), o.segmentSize);
      return p?.timeline === o.timeline && p.segno >= first && p.segno <= last;
    })
    .sort();
  expect(names.length).toBe(Number(last - first + 1n));
  const magics = new Set<number>();
  for (const name of names) {
    const parsed = parseSegmentFileName(name.slice(0, 24), o.segmentSize)!;
    expect(parsed.timeline).toBe(o.timeline);
    const segStart = parsed.segno * BigInt(o.segmentSize);
    const valid = Number(o.end - segStart < BigInt(o.segmentSize) ? o.end - segStart : BigInt(o.segmentSize));
    magics.add(
      checkSegment(readFileSync(join(dir, name)), {
        segno: parsed.segno,
        segmentSize: o.segmentSize,
        timeline: o.timeline,
        systemId: o.systemId,
        validBytes: valid,
        ...(o.pageTimelines ? { pageTimelines: o.pageTimelines } : {}),
      }),
    );
  }
  expect(magics.size).toBe(1);
  return names;
}

function segName(timeline: number, position: Lsn, segmentSize: number): string {
  return segmentFileNameForLsn(timeline, position, segmentSize);
}

/** Inserts and WAL switches: several segments' worth of records and switch points. */
async function generateWal(c: Cluster, table: string): Promise<Lsn> {
  await c.sql(`create table if not exists ${table} (i int, t text)`);
  for (let i = 0; i < 3; i++) {
    await c.sql(`insert into ${table} select g, repeat('x', 300) from generate_series(1, 3000) g`);
    await c.sql('select pg_switch_wal()');
  }
  await c.sql(`insert into ${table} values (0, 'last')`);
  const rows = await c.sql<{ lsn: string }>('select pg_current_wal_flush_lsn()::text as lsn');
  return parseLsn(rows[0]!.lsn);
}

describe.each(majors)('PostgreSQL %i', (major) => {
  it('streams into a pg_wal directory through a temporary slot and stops at the target LSN', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c));
    try {
      const sys = await identifySystem(conn);
      const segmentSize = parseWalSegmentSize(await show(conn, 'wal_segment_size'));
      const slotName = `pgbb_wal_tmp_${major}`;
      await createReplicationSlot(conn, { name: slotName, temporary: true, reserveWal: true });
      const dir = join(clusters.tmp, `pg_wal_${major}`);
      const completed: string[] = [];
      const wal = startWalStream({
        connection: conn,
        startLsn: sys.xlogPos,
        timeline: sys.timeline,
        segmentSize,
        slotName,
        sink: new DirectoryWalSink({ directory: dir, partialSuffix: '', markDone: true }),
        finalizeLastSegment: 'rename-padded',
        statusIntervalMs: 500,
        onSegment: (s) => completed.push(s.name),
      });
      const target = await generateWal(c, 'wal_dir_test');
      wal.setEndLsn(target);
      const result = await wal.done;

      expect(result.reason).toBe('end-lsn');
      expect(result.position).toBeGreaterThanOrEqual(target);
      expect(result.timelines).toEqual([sys.timeline]);
      expect(wal.position).toBe(result.position);
      // Three pg_switch_wal() calls: at least three segments were completed.
      expect(result.segmentsCompleted).toBeGreaterThanOrEqual(3);
      const names = checkWalDirectory(dir, {
        start: sys.xlogPos,
        end: result.position,
        segmentSize,
        timeline: sys.timeline,
        systemId: sys.systemId,
      });
      // Complete segments are marked done; the last one (padded, incomplete) is not, as pg_basebackup.
      const done = readdirSync(join(dir, 'archive_status')).sort();
      expect(done).toEqual(completed.map((n) => `${n}.done`).sort());
      const lastName = names.at(-1)!;
      const endsOnBoundary = result.position % BigInt(segmentSize) === 0n;
      expect(done.includes(`${lastName}.done`)).toBe(endsOnBoundary);
      for (const n of names) expect(statSync(join(dir, n)).mode & 0o777).toBe(0o600);

      if (major === 15 && existsSync(join(DEBIAN_BIN_DIR, 'pg_waldump'))) {
        // pg_waldump 15 decodes every record from the start position to the target.
        const out = spawnSync(
          join(DEBIAN_BIN_DIR, 'pg_waldump'),
          [
            '--path',
            dir,
            '--timeline',
            String(sys.timeline),
            '--start',
            formatLsn(sys.xlogPos, { padded: false }),
            '--end',
            formatLsn(target, { padded: false }),
          ],
          { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
        );
        expect(out.error).toBeUndefined();
        expect(out.stderr).not.toMatch(/error/i);
        expect(out.status).toBe(0);
        expect(out.stdout).toMatch(/desc: SWITCH/);
        expect(out.stdout).toMatch(/rmgr: Heap .*desc: INSERT/);
      }
    } finally {
      await conn.close();
    }
  });

  it('streams pg_wal.tar through a permanent slot whose restart_lsn follows the flush feedback', async () => {
    const c = cluster(major);
    const slotName = `pgbb_wal_perm_${major}`;
    await c.sql('select pg_create_physical_replication_slot($1, true)', [slotName]);
    try {
      const before = parseLsn(
        (await c.sql<{ r: string }>('select restart_lsn::text as r from pg_replication_slots where slot_name = $1', [slotName]))[0]!.r,
      );
      const conn = await ReplicationConnection.connect(tcp(c));
      const tarPath = join(clusters.tmp, `pg_wal_${major}.tar`);
      let sys;
      let segmentSize;
      let result;
      let target;
      try {
        sys = await identifySystem(conn);
        segmentSize = parseWalSegmentSize(await show(conn, 'wal_segment_size'));
        const wal = startWalStream({
          connection: conn,
          startLsn: before,
          timeline: sys.timeline,
          segmentSize,
          slotName,
          sink: new TarWalSink({ output: createWriteStream(tarPath, { mode: 0o600 }), markDone: true }),
          finalizeLastSegment: 'rename-padded',
          statusIntervalMs: 200,
        });
        target = await generateWal(c, 'wal_tar_test');
        wal.setEndLsn(target);
        result = await wal.done;
      } finally {
        await conn.close();
      }
      expect(result.position).toBeGreaterThanOrEqual(target);
      // The last status update before CopyDone reported everything as flushed; the walsender moves
      // a physical slot's restart_lsn to the reported flush position.
      expect(result.flushed).toBe(result.position);
      const after = parseLsn(
        (await c.sql<{ r: string }>('select restart_lsn::text as r from pg_replication_slots where slot_name = $1', [slotName]))[0]!.r,
      );
      expect(after).toBeGreaterThan(before);
      expect(after).toBe(result.position);

      const out = join(clusters.tmp, `tar_${major}`);
      mkdirSync(out);
      execFileSync('tar', ['-xf', tarPath, '-C', out]);
      const names = checkWalDirectory(out, {
        start: before,
        end: result.position,
        segmentSize,
        timeline: sys.timeline,
        systemId: sys.systemId,
      });
      expect(names.length).toBeGreaterThanOrEqual(4);
      expect(readdirSync(join(out, 'archive_status')).length).toBe(result.segmentsCompleted);
    } finally {
      await c.sql('select pg_drop_replication_slot($1)', [slotName]);
    }
  });

  it('a start position whose WAL was removed fails with a ServerError advising a slot', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c));
    try {
      const sys = await identifySystem(conn);
      const segmentSize = parseWalSegmentSize(await show(conn, 'wal_segment_size'));
      // Make the server drop initdb's first segment: no WAL kept, switch, checkpoint.
      await reloadSettings(c, { wal_keep_size: '0' });
      for (let i = 0; i < 3; i++) {
        await c.sql('select pg_switch_wal()');
        await c.sql('checkpoint');
      }
      const first = parseLsn('0/1000000');
      const wal = startWalStream({
        connection: conn,
        startLsn: first,
        timeline: sys.timeline,
        segmentSize,
        endLsn: parseLsn('0/1000001'),
        sink: new DirectoryWalSink({ directory: join(clusters.tmp, `removed_${major}`) }),
      });
      const err = await wal.done.catch((e: unknown) => e as Error);
      expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
      expect((err as Error).message).toMatch(/has already been removed/);
      expect((err as Error).message).toMatch(/replication slot/);
    } finally {
      conn.destroy();
      await c.sql('alter system reset wal_keep_size');
      await c.sql('select pg_reload_conf()');
    }
  });

  it('follows a promotion: streams timeline 1 to its end, stores 00000002.history, continues on timeline 2, and resumes a .partial', async () => {
    const c = cluster(major);
    await c.sql('create table if not exists wal_tli_test (i int, t text)');
    await c.sql("insert into wal_tli_test select g, repeat('y', 300) from generate_series(1, 2000) g");
    const before = parseLsn((await c.sql<{ l: string }>('select pg_current_wal_flush_lsn()::text as l'))[0]!.l);
    const tli0 = Number((await c.sql<{ t: string }>('select timeline_id::text as t from pg_control_checkpoint()'))[0]!.t);
    // Restart as a standby (no primary: it replays its own pg_wal) and promote it: a new timeline.
    await c.stop('fast');
    writeFileSync(join(c.dataDir, 'standby.signal'), '');
    await c.start();
    expect((await c.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r).toBe(true);
    await c.sql('select pg_promote(true, 60)');
    await c.sql("insert into wal_tli_test select g, repeat('z', 300) from generate_series(1, 2000) g");
    const target = parseLsn((await c.sql<{ l: string }>('select pg_current_wal_flush_lsn()::text as l'))[0]!.l);

    const conn = await ReplicationConnection.connect(tcp(c));
    const dir = join(clusters.tmp, `archive_${major}`);
    try {
      const sys = await identifySystem(conn);
      expect(sys.timeline).toBe(tli0 + 1);
      const segmentSize = parseWalSegmentSize(await show(conn, 'wal_segment_size'));
      const switches: { from: number; to: number; switchLsn: Lsn; restartLsn: Lsn }[] = [];
      // pg_receivewal's way: .partial names, incomplete segments kept partial.
      const wal = startWalStream({
        connection: conn,
        startLsn: before,
        timeline: tli0,
        segmentSize,
        endLsn: target,
        sink: new DirectoryWalSink({ directory: dir }),
        statusIntervalMs: 1000,
        onTimelineSwitch: (s) => switches.push(s),
      });
      const result = await wal.done;
      expect(result.timelines).toEqual([tli0, tli0 + 1]);
      expect(result.timeline).toBe(tli0 + 1);
      expect(switches).toHaveLength(1);
      const sw = switches[0]!;
      expect(sw).toMatchObject({ from: tli0, to: tli0 + 1, restartLsn: segmentStartOf(sw.switchLsn, segmentSize) });
      const historyName = `${(tli0 + 1).toString(16).toUpperCase().padStart(8, '0')}.history`;
      const history = readFileSync(join(dir, historyName), 'utf8');
      expect(history).toContain(`${tli0}\t${formatLsn(sw.switchLsn, { padded: false })}`);
      const files = readdirSync(dir).sort();
      // The old timeline's switch segment stays partial; so does the new timeline's last one.
      const oldSwitchSeg = `${segName(tli0, sw.switchLsn, segmentSize)}.partial`;
      const newLast = `${segName(tli0 + 1, result.position, segmentSize)}.partial`;
      expect(files).toContain(oldSwitchSeg);
      expect(files).toContain(newLast);
      checkWalDirectory(dir, { start: before, end: sw.switchLsn, segmentSize, timeline: tli0, systemId: sys.systemId });
      checkWalDirectory(dir, {
        start: sw.restartLsn,
        end: result.position,
        segmentSize,
        timeline: tli0 + 1,
        systemId: sys.systemId,
        pageTimelines: [tli0, tli0 + 1],
      });

      // An archiver restarting: stream the new timeline again from the start of its .partial segment;
      // the full-size .partial is reused and completed once the segment is.
      await c.sql('select pg_switch_wal()');
      await c.sql("insert into wal_tli_test values (0, 'after')");
      const target2 = parseLsn((await c.sql<{ l: string }>('select pg_current_wal_flush_lsn()::text as l'))[0]!.l);
      const resumeAt = segmentStartOf(result.position, segmentSize);
      const again = startWalStream({
        connection: conn,
        startLsn: resumeAt,
        timeline: tli0 + 1,
        segmentSize,
        endLsn: target2,
        sink: new DirectoryWalSink({ directory: dir }),
        fetchTimelineHistory: false,
      });
      const r2 = await again.done;
      expect(r2.timelines).toEqual([tli0 + 1]);
      const files2 = readdirSync(dir);
      expect(files2).toContain(newLast.slice(0, 24));
      expect(files2).not.toContain(newLast);
      checkWalDirectory(dir, {
        start: resumeAt,
        end: lsnOf(resumeAt + BigInt(segmentSize)),
        segmentSize,
        timeline: tli0 + 1,
        systemId: sys.systemId,
        pageTimelines: [tli0, tli0 + 1],
      });
    } finally {
      await conn.close();
    }
  });

  it('a sink stalled longer than wal_sender_timeout survives thanks to timer updates, and is dropped without them', async () => {
    const c = cluster(major);
    await c.sql('create table if not exists wal_stall_test (i int, t text)');
    await reloadSettings(c, { wal_sender_timeout: '1s' });
    try {
      for (const statusIntervalMs of [200, 0]) {
        const conn = await ReplicationConnection.connect(tcp(c));
        try {
          const sys = await identifySystem(conn);
          const segmentSize = parseWalSegmentSize(await show(conn, 'wal_segment_size'));
          const inner = new DirectoryWalSink({ directory: join(clusters.tmp, `stall_${major}_${statusIntervalMs}`), fsync: false });
          let stalled = false;
          const sink: WalSink = {
            openSegment: (t) => inner.openSegment(t),
            // The first write takes 3 s: three times wal_sender_timeout.
            write: async (d) => {
              if (!stalled) {
                stalled = true;
                await new Promise((r) => setTimeout(r, 3000));
              }
              await inner.write(d);
            },
            flush: () => inner.flush(),
            closeSegment: (m) => inner.closeSegment(m),
            writeHistoryFile: (n, b) => inner.writeHistoryFile(n, b),
            finish: () => inner.finish(),
            abort: (r) => inner.abort(r),
          };
          const wal = startWalStream({
            connection: conn,
            startLsn: sys.xlogPos,
            timeline: sys.timeline,
            segmentSize,
            sink,
            statusIntervalMs,
          });
          await c.sql("insert into wal_stall_test select g, 'stall' from generate_series(1, 100) g");
          const target = parseLsn((await c.sql<{ l: string }>('select pg_current_wal_flush_lsn()::text as l'))[0]!.l);
          wal.setEndLsn(target);
          if (statusIntervalMs > 0) {
            const result = await wal.done;
            expect(result.position).toBeGreaterThanOrEqual(target);
          } else {
            // Nothing answers the walsender's reply requests while the sink is stuck: it drops us.
            const err = await wal.done.catch((e: unknown) => e as PgBackupError);
            expect(err).toBeInstanceOf(PgBackupError);
            expect(['ERR_PGBB_CONNECTION_CLOSED', 'ERR_PGBB_CONNECTION']).toContain((err as PgBackupError).code);
          }
        } finally {
          conn.destroy();
        }
      }
    } finally {
      await c.sql('alter system reset wal_sender_timeout');
      await c.sql('select pg_reload_conf()');
    }
  });
});
