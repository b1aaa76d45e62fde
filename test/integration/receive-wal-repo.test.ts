// `pgbb receive-wal --repo` (and RepositoryWalStore under receiveWal) against real servers (1 MB segments)
// into a local-directory repository and an S3 one on Swift: every stored segment is byte-identical to the
// server's; the slot's restart position never passes what is stored (a fault proxy failing the puts holds
// it at the last stored segment's end, and archiving completes once the puts pass again); a receiver
// killed with SIGKILL resumes with no gap and no segment stored twice (a backup into the same repository
// meanwhile, and the window from its end to the newest segment); another cluster is refused before
// anything is stored; `pgbb list --json` shows the WAL archive and the window's end; a promoted standby's
// history file and new timeline are stored; a segment the server already removed is refused as a hole.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { createReplicationSlot } from '../../src/entries/replication.js';
import { ReplicationConnection } from '../../src/entries/connection.js';
import { WalArchiveGapError } from '../../src/errors.js';
import { formatLsn, parseLsn, type Lsn } from '../../src/lsn.js';
import { receiveWal, runBackup, type ReceiveWalEvent } from '../../src/index.js';
import { RepositoryWalStore } from '../../src/repository/wal-store.js';
import { segmentStartLsn } from '../../src/wal-segments.js';
import { makeTempDir, startCluster, startFaultProxy, type Cluster } from '../harness/index.js';
import { pgbbForFile, spawnPgbb } from '../harness/pgbb-cli.js';
import { objectBytes, repositoryKeys, repositoryTarget, swiftBucketForFile, type RepositoryTarget } from '../harness/repositories.js';
import { describeEachMajor, trustTcp } from '../harness/suite.js';
import {
  EventLog,
  expectContiguous,
  makeWal,
  runOverWal,
  SEG,
  serverSegment,
  sha256,
  WAL_MAJORS_15_17,
  walTestMajors,
} from './receive-wal-helpers.js';

const s3 = swiftBucketForFile('pgbb-receive-wal-repo');
const pgbb = pgbbForFile();
const majors = walTestMajors(WAL_MAJORS_15_17);

const connArgs = (c: Cluster) => ['-d', `host=${c.host} port=${c.port} user=${trustTcp(c).user} sslmode=disable`];

async function createSlot(c: Cluster, name: string): Promise<void> {
  const conn = await ReplicationConnection.connect(trustTcp(c));
  try {
    await createReplicationSlot(conn, { name, reserveWal: true });
  } finally {
    await conn.close();
  }
}

async function slotRestart(c: Cluster, name: string): Promise<Lsn> {
  const [row] = await c.sql<{ l: string | null }>('select restart_lsn::text l from pg_replication_slots where slot_name = $1', [name]);
  return parseLsn(row!.l!);
}

/**
 * Waits until the walsender has applied a status report of at least `lsn` to the slot (PostgreSQL's own
 * tests poll the same way: nothing tells a client when the server processed its report).
 */
async function slotReaches(c: Cluster, name: string, lsn: Lsn, timeoutMs = 30_000): Promise<void> {
  await vi.waitFor(async () => expect(await slotRestart(c, name), `slot ${name} reaches ${formatLsn(lsn)}`).toBeGreaterThanOrEqual(lsn), {
    timeout: timeoutMs,
    interval: 20,
  });
}

/** Waits for the segment-completed event of the segment before the one `lsn` is in (after event `from`). */
async function storedThrough(log: EventLog, lsn: Lsn, from = 0): Promise<Extract<ReceiveWalEvent, { type: 'segment-completed' }>> {
  for (let i = from; ; ) {
    i = await log.waitFor('segment-completed', 1, i);
    const ev = log.events[i - 1]!;
    if (ev.type === 'segment-completed' && ev.endLsn >= lsn - (lsn % BigInt(SEG))) return ev;
  }
}

/** The segment names stored under wal/, without compression suffixes, and their keys. */
async function storedSegments(target: RepositoryTarget): Promise<{ names: string[]; keys: string[] }> {
  await using repo = await target.open();
  const keys = (await repositoryKeys(repo, 'wal/')).filter((k) => /^wal\/[0-9A-F]{24}/.test(k));
  return { keys, names: keys.map((k) => k.slice(4, 28)) };
}

/** The end of the newest stored segment (1 MB segments). */
function endOf(name: string): Lsn {
  return segmentStartLsn(
    BigInt(Number.parseInt(name.slice(8, 16), 16)) * 4096n + BigInt(Number.parseInt(name.slice(16, 24), 16)) + 1n,
    SEG,
  );
}

/** Every stored segment equals the server's file (all still on the server: the slot rw_hold holds them). */
async function expectStoredAsServer(c: Cluster, target: RepositoryTarget): Promise<string[]> {
  const { keys, names } = await storedSegments(target);
  expect(names.length).toBeGreaterThan(0);
  expect(new Set(names).size, 'each segment stored once').toBe(names.length);
  expectContiguous(names);
  await using repo = await target.open();
  for (const key of keys) {
    const server = serverSegment(c, key.slice(4, 28));
    expect(server, `${key} still on the server`).toBeDefined();
    expect(sha256(await objectBytes(repo, key)), key).toBe(sha256(server!));
  }
  return names;
}

/** --json lines of a run. */
const jsonEvents = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Each reported flush is at most the end of the last segment completed (stored) before it. */
function expectFlushNeverAhead(events: readonly ReceiveWalEvent[]): void {
  let stored = 0n;
  for (const ev of events) {
    if (ev.type === 'segment-completed') stored = ev.endLsn;
    if (ev.type === 'status-reported')
      expect(ev.flush <= stored, `flush ${formatLsn(ev.flush)} past the stored ${formatLsn(stored)}`).toBe(true);
  }
}

describeEachMajor(
  'pgbb receive-wal --repo',
  majors,
  (major, primary) => {
    beforeAll(async () => {
      await primary().sql('create table if not exists t(i int, pad text)');
      // Holds every segment written from here on, which the tests compare what they stored with. Each
      // test's own slot moves on with its receiver, and a backup's checkpoint then removes what is behind
      // it, so without this a test run alone could find its first stored segment gone from the server.
      await createSlot(primary(), 'rw_hold');
    });

    for (const kind of ['local', 's3'] as const) {
      describe(kind === 'local' ? 'local directory' : 's3 (Swift)', () => {
        const compress = kind === 'local' ? ['-Z', 'lz4'] : [];

        it('-E under writes: segments byte-identical to the server, the slot at the stored end, list --json', async () => {
          const c = primary();
          const target = await repositoryTarget(kind, `rw${major}`, s3);
          const spool = join(await makeTempDir('rw-spool'), 'spool');
          const slot = `rw_e_${kind}`;
          await createSlot(c, slot);
          const run = await runOverWal(c, 3, false, (endLsn) => {
            const p = spawnPgbb(
              pgbb(),
              [
                'receive-wal',
                ...connArgs(c),
                '--repo',
                target.address,
                '-S',
                slot,
                '--spool',
                spool,
                '-E',
                formatLsn(endLsn),
                '--json',
                ...compress,
              ],
              target.env,
            );
            return { connected: new Promise((resolve) => p.child.stdout.once('data', resolve)), done: p.exited };
          });
          expect(run.stderr).toBe('');
          expect(run.code).toBe(0);
          const names = await expectStoredAsServer(c, target);
          expect(names.length).toBeGreaterThanOrEqual(3);
          const { keys } = await storedSegments(target);
          for (const k of keys) expect(k.endsWith(kind === 'local' ? '.lz4' : k.slice(4, 28))).toBe(true);
          const end = endOf(names.at(-1)!);
          // The last status update reported the end of the last stored segment as flushed: the slot is there.
          expect(formatLsn(await slotRestart(c, slot))).toBe(formatLsn(end));
          // The spool holds the segment in progress only, private.
          expect(statSync(spool).mode & 0o777).toBe(0o700);
          const spooled = readdirSync(spool);
          expect(spooled.length).toBeLessThanOrEqual(1);
          for (const f of spooled) {
            expect(f).toMatch(/^[0-9A-F]{24}\.partial$/);
            expect(statSync(join(spool, f)).mode & 0o777).toBe(0o600);
            expectContiguous([...names, f.slice(0, 24)]);
          }
          if (kind === 'local') expect(statSync(join(target.address, 'wal', keys[0]!.slice(4))).mode & 0o777).toBe(0o600);

          const listed = await spawnPgbb(pgbb(), ['list', '--repo', target.address, '--json'], target.env).exited;
          expect(listed.code).toBe(0);
          const listing = JSON.parse(listed.stdout) as {
            cluster: { walSegmentSize: number; majorVersion: number };
            walArchive: {
              segmentSize: number;
              timelines: { timeline: number; firstSegment: string; lastSegment: string; gaps: unknown[] }[];
            };
            pitrWindow: { from: unknown; to: { lsn: string; timeline: number; time: string } };
          };
          expect(listing.cluster).toMatchObject({ walSegmentSize: SEG, majorVersion: major });
          expect(listing.walArchive.segmentSize).toBe(SEG);
          expect(listing.walArchive.timelines).toEqual([
            expect.objectContaining({ timeline: 1, firstSegment: names[0], lastSegment: names.at(-1), gaps: [], history: false }),
          ]);
          expect(listing.pitrWindow.from).toBeNull();
          expect(listing.pitrWindow.to).toMatchObject({ lsn: formatLsn(end), timeline: 1 });
          expect(Date.now() - Date.parse(listing.pitrWindow.to.time)).toBeLessThan(10 * 60_000);
          const text = await spawnPgbb(pgbb(), ['list'], { ...target.env, PGBB_REPO: target.address }).exited;
          expect(text.stdout).toContain(`WAL archive, timeline 1: ${names[0]} to ${names.at(-1)}`);
        });

        it('SIGKILL mid-run, then a restart: it resumes after the stored segments, no gap, nothing stored twice', async () => {
          const c = primary();
          const target = await repositoryTarget(kind, `rk${major}`, s3);
          const spool = join(await makeTempDir('rk-spool'), 'spool');
          const slot = `rw_kill_${kind}`;
          await createSlot(c, slot);
          // On S3 the first receiver goes through a proxy that holds its next segment's put (below). A put
          // already sent when the process dies can still complete on the server afterwards, so killing it
          // at any other moment would leave the listing taken after the kill racing that put.
          const proxy = kind === 's3' ? await startFaultProxy(s3.swift.endpoint) : undefined;
          const args = (repo: string) => ['receive-wal', ...connArgs(c), '--repo', repo, '-S', slot, '--spool', spool, '--json', '-s', '1'];
          const completedIn = (out: string) =>
            jsonEvents(out)
              .filter((e) => e['event'] === 'segment-completed')
              .map((e) => String(e['segment']));
          let before: { names: string[] };
          try {
            const first = spawnPgbb(
              pgbb(),
              [...args(proxy ? target.addressVia(proxy.endpoint) : target.address), ...(kind === 's3' ? ['-Z', 'gzip'] : [])],
              target.env,
            );
            const running = async (): Promise<void> => {
              if (first.child.exitCode !== null) throw new Error(`the receiver exited: ${(await first.exited).stderr}`);
            };
            while (completedIn(first.stdout()).length < 2) {
              await running();
              await makeWal(c, 1);
            }
            // A backup into the same repository while the receiver runs: neither locks the other out.
            const backup = await spawnPgbb(pgbb(), ['backup', ...connArgs(c), '--repo', target.address, '-c', 'fast'], target.env).exited;
            expect(backup.code, backup.stderr).toBe(0);
            if (proxy) {
              // Killed while the next segment's put is in flight: the proxy holds it, so it never reaches Swift.
              proxy.inject({ method: 'PUT', url: /\/wal\/[0-9A-F]{24}/, times: 1_000_000, action: { kind: 'stall' } });
              while (!proxy.requests.some((r) => r.fault === 'stall')) {
                await running();
                await makeWal(c, 1);
              }
            } else {
              // Killed while it streams the next segment (a local put is a rename: it happened or it did not).
              await c.sql(`insert into t select g, repeat('k', 200) from generate_series(1, 300) g`);
            }
            first.child.kill('SIGKILL');
            const killed = await first.exited;
            expect(killed.signal).toBe('SIGKILL');
            before = await storedSegments(target);
          } finally {
            await proxy?.close();
          }
          expect(await slotRestart(c, slot)).toBeLessThanOrEqual(endOf(before.names.at(-1)!));

          const endLsn = await makeWal(c, 2);
          const second = await spawnPgbb(pgbb(), [...args(target.address), '-E', formatLsn(endLsn)], target.env).exited;
          expect(second.stderr).toBe('');
          expect(second.code).toBe(0);
          const events = jsonEvents(second.stdout);
          expect(events[0]).toMatchObject({ event: 'connected', startFrom: 'archive' });
          // It starts right after the newest stored segment (or at the spool's .partial of that segment).
          expect(events[0]!['startLsn']).toBe(formatLsn(endOf(before.names.at(-1)!)));
          const again = completedIn(second.stdout).filter((s) => before.names.includes(s));
          expect(again, 'segments stored twice').toEqual([]);
          const names = await expectStoredAsServer(c, target);
          expect(names.length).toBeGreaterThan(before.names.length);
          // The window runs from the backup's end to the end of the newest stored segment.
          const listed = await spawnPgbb(pgbb(), ['list', '--repo', target.address, '--json'], target.env).exited;
          const listing = JSON.parse(listed.stdout) as { backups: unknown[]; pitrWindow: { from: { lsn: string }; to: { lsn: string } } };
          expect(listing.backups).toHaveLength(1);
          expect(listing.pitrWindow.to.lsn).toBe(formatLsn(endOf(names.at(-1)!)));
          expect(parseLsn(listing.pitrWindow.from.lsn)).toBeLessThan(parseLsn(listing.pitrWindow.to.lsn));
        });
      });
    }

    it('s3: puts failing past the retries hold the slot at the last stored segment; archiving completes once they pass', async () => {
      const c = primary();
      const target = await repositoryTarget('s3', `rf${major}`, s3);
      const proxy = await startFaultProxy(s3.swift.endpoint);
      const slot = 'rw_fault';
      await createSlot(c, slot);
      await using repo = await target.open({ endpoint: proxy.endpoint, maxAttempts: 2 });
      const store = new RepositoryWalStore(repo, { spoolDirectory: join(await makeTempDir('rf-spool'), 'spool') });
      const receiver = receiveWal({
        connection: trustTcp(c),
        slotName: slot,
        store,
        statusIntervalMs: 100,
        reconnectDelayMs: 100,
        maxReconnectDelayMs: 300,
      });
      const log = new EventLog(receiver);
      try {
        await log.waitFor('connected');
        const reported = await storedThrough(log, await makeWal(c, 2));
        // The report of the newest stored segment reached the server before the puts start failing. Without
        // this the failing put could break the stream before the report went out (the status interval is a
        // timer), and the slot would rightly stay further back.
        await slotReaches(c, slot, reported.endLsn);
        proxy.inject({
          method: 'PUT',
          url: /\/wal\/[0-9A-F]{24}(\?|$)/,
          times: 1_000_000,
          action: { kind: 'status', status: 503, code: 'SlowDown' },
        });
        const marker = log.events.length;
        await makeWal(c, 2);
        await log.waitFor('reconnecting', 2, marker);
        const stuck = await storedSegments(target);
        const storedEnd = endOf(stuck.names.at(-1)!);
        expect(proxy.hits()).toBeGreaterThan(0);
        expect(log.count('segment-completed', marker)).toBe(0);
        expect(formatLsn(storedEnd)).toBe(formatLsn(reported.endLsn));
        // Held exactly at the stored end through the reconnections: not moved past it, and not moved back
        // by a reconnected session's reports.
        expect(formatLsn(await slotRestart(c, slot))).toBe(formatLsn(storedEnd));

        proxy.clear();
        const resumed = log.events.length;
        // Every segment up to the WAL written is stored once the puts pass.
        await storedThrough(log, await makeWal(c, 1), resumed);
      } finally {
        await receiver.stop();
        await log.done;
        await proxy.close();
      }
      expectFlushNeverAhead(log.events);
      const names = await expectStoredAsServer(c, target);
      expect(await slotRestart(c, slot)).toBeLessThanOrEqual(endOf(names.at(-1)!));
      expect(await slotRestart(c, slot)).toBeGreaterThan(segmentStartLsn(0n, SEG));
    });

    it('a promoted standby: the history file stored, timeline 2 archived, the old timeline left out', async () => {
      const c = primary();
      const standbyDir = join(await makeTempDir(`rw-standby-${major}`), 'data');
      await runBackup({
        connection: trustTcp(c),
        checkpoint: 'fast',
        noSync: true,
        writeRecoveryConf: true,
        output: { format: 'plain', directory: standbyDir },
      });
      const standby = await startCluster({ major, dataDir: standbyDir, ssl: false });
      try {
        await makeWal(c, 1);
        // WAL after the switch: the standby's last timeline-1 segment is incomplete at the promotion.
        await c.sql(`insert into t select g, 'w' from generate_series(1, 200) g`);
        const [p] = await c.sql<{ l: string }>('select pg_current_wal_lsn()::text l');
        await vi.waitFor(
          async () => {
            const [r] = await standby.sql<{ ok: boolean }>(`select pg_last_wal_replay_lsn() >= '${p!.l}'::pg_lsn ok`);
            expect(r!.ok).toBe(true);
          },
          { timeout: 30_000, interval: 100 },
        );
        const target = await repositoryTarget('local', `rp${major}`);
        const spool = join(await makeTempDir('rp-spool'), 'spool');
        await using repo = await target.open();
        const receiver = receiveWal({
          connection: trustTcp(standby),
          store: new RepositoryWalStore(repo, { spoolDirectory: spool }),
          statusIntervalMs: 500,
        });
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
        expect(events.find((e) => e.type === 'timeline-switch')).toMatchObject({ from: 1, to: 2 });
        expect(await objectBytes(repo, 'wal/00000002.history')).toEqual(readFileSync(join(standbyDir, 'pg_wal', '00000002.history')));
        const keys = await repositoryKeys(repo, 'wal/');
        const tli2 = keys.filter((k) => k.startsWith('wal/00000002') && !k.endsWith('.history'));
        expect(tli2.length).toBeGreaterThan(0);
        for (const k of tli2) expect(sha256(await objectBytes(repo, k)), k).toBe(sha256(serverSegment(standby, k.slice(4))!));
        // The old timeline's incomplete last segment was never stored, and its .partial is gone from the spool.
        const switched = events.find((e) => e.type === 'segment-partial' && e.timeline === 1);
        expect(switched).toBeDefined();
        expect(keys).not.toContain(`wal/${switched?.type === 'segment-partial' ? switched.segment : ''}`);
        expect(readdirSync(spool).filter((f) => f.startsWith('00000001'))).toEqual([]);
        const archive = await repo.walArchive();
        expect(archive?.timelines.map((t) => [t.timeline, t.history])).toEqual([[2, true]]);
        expect(archive?.newest.timeline).toBe(2);
      } finally {
        await standby.destroy();
      }
    });

    it('another cluster is refused before anything is stored', async () => {
      const other = await startCluster({ major, ssl: false, template: false, walSegmentSizeMb: 1 });
      try {
        await other.sql('create table t(i int, pad text)');
        await createSlot(other, 'rw_other');
        for (const kind of ['local', 's3'] as const) {
          const target = await repositoryTarget(kind, `ro${major}`, s3);
          await createSlot(primary(), `rw_first_${kind}`);
          const endLsn = await makeWal(primary(), 1);
          const first = await spawnPgbb(
            pgbb(),
            ['receive-wal', ...connArgs(primary()), '--repo', target.address, '-S', `rw_first_${kind}`, '-E', formatLsn(endLsn)],
            target.env,
          ).exited;
          expect(first.code, first.stderr).toBe(0);
          const before = await storedSegments(target);
          await makeWal(other, 1);
          const refused = await spawnPgbb(
            pgbb(),
            ['receive-wal', ...connArgs(other), '--repo', target.address, '-S', 'rw_other', '-n'],
            target.env,
          ).exited;
          expect(refused.code).toBe(1);
          expect(refused.stderr).toMatch(/belongs to another cluster: this server has system identifier \d+/);
          expect((await storedSegments(target)).keys).toEqual(before.keys);
        }
      } finally {
        await other.destroy();
      }
    });

    // Last: it drops every slot of the primary and lets the server recycle its WAL.
    it('refuses to leave a hole when the server already removed the segment after the stored ones', async () => {
      const c = primary();
      const target = await repositoryTarget('local', `rg${major}`);
      await createSlot(c, 'rw_gap');
      const endLsn = await makeWal(c, 2);
      const first = await spawnPgbb(
        pgbb(),
        ['receive-wal', ...connArgs(c), '--repo', target.address, '-S', 'rw_gap', '-E', formatLsn(endLsn)],
        target.env,
      ).exited;
      expect(first.code, first.stderr).toBe(0);
      const before = await storedSegments(target);
      for (const { s: slot } of await c.sql<{ s: string }>('select slot_name s from pg_replication_slots')) {
        await c.sql('select pg_drop_replication_slot($1)', [slot]);
      }
      await c.sql('alter system set wal_keep_size = 0');
      await c.sql('select pg_reload_conf()');
      try {
        for (let i = 0; i < 4; i++) {
          await makeWal(c, 3);
          await c.sql('checkpoint');
        }
        const [oldest] = await c.sql<{ n: string }>(`select min(name) n from pg_ls_waldir() where name ~ '^[0-9A-F]{24}$'`);
        expect(oldest!.n > before.names.at(-1)!).toBe(true);
        await using repo = await target.open();
        const store = new RepositoryWalStore(repo, { spoolDirectory: join(await makeTempDir('rg-spool'), 'spool') });
        const log = new EventLog(receiveWal({ connection: trustTcp(c), store }));
        const err = await log.done;
        expect(err).toBeInstanceOf(WalArchiveGapError);
        expect((err as Error).message).toMatch(/the archive in repository .* has a gap: segment [0-9A-F]{24} \(from /);
        expect((await storedSegments(target)).keys).toEqual(before.keys);
      } finally {
        await c.sql('alter system reset wal_keep_size');
        await c.sql('select pg_reload_conf()');
      }
    });
  },
  { ssl: false, walSegmentSizeMb: 1 },
);
