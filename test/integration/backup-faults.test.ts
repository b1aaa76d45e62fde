// Fault injection against real servers (13, the old BASE_BACKUP protocol, and the newest
// major): the data connection cut by a proxy, the WAL walsender terminated, a full disk, and
// aborts at several points. Each time: a typed error, nothing that looks like a finished
// backup left behind, no replication slot left on the server.
// (Non-empty target, missing slot, unreachable server, immediate shutdown and CLI signals are
// in backup-failures.test.ts and cli-backup.test.ts.)
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync, watch } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PgBackupError, type ServerError, runBackup, type RunBackupOptions } from '../../src/index.js';
import type { IoError } from '../../src/errors.js';
import { makeTempDir, startCluster, testMajors, type Cluster } from '../harness/index.js';
import { slotsAfterSettling } from './backup-helpers.js';

const exec = promisify(execFile);
const NEWEST = 18;
const MAJORS = [13, NEWEST].filter((m) => testMajors().includes(m));

/** A TCP proxy in front of the server that cuts the `cutIndex`-th connection after `cutAfterBytes` from the server. */
class CuttingProxy {
  connections = 0;
  cut = false;
  readonly #sockets = new Set<Socket>();
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(upstreamPort: number, cutIndex: number, cutAfterBytes: number): Promise<CuttingProxy> {
    let proxy!: CuttingProxy;
    const server = createServer((client) => {
      const index = proxy.connections++;
      const upstream = connect(upstreamPort, '127.0.0.1');
      proxy.#sockets.add(client).add(upstream);
      let fromServer = 0;
      upstream.on('data', (chunk: Buffer) => {
        fromServer += chunk.length;
        if (index === cutIndex && fromServer >= cutAfterBytes && !proxy.cut) {
          proxy.cut = true;
          // Both ends at once, mid-stream, as a dead link or a killed middlebox would.
          client.destroy();
          upstream.destroy();
          return;
        }
        if (!client.write(chunk)) upstream.pause();
      });
      client.on('drain', () => upstream.resume());
      client.pipe(upstream);
      for (const s of [client, upstream]) {
        s.on('error', () => {});
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    proxy = new CuttingProxy(server, addr.port);
    return proxy;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Runs a backup expected to fail; returns its error and how long it took. */
async function failing(options: RunBackupOptions): Promise<{ err: PgBackupError; ms: number }> {
  const t0 = performance.now();
  const err = await runBackup(options).then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = performance.now() - t0;
  expect(err).toBeInstanceOf(PgBackupError);
  return { err: err as PgBackupError, ms };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  await vi.waitFor(async () => expect(await check(), what).toBe(true), { timeout: timeoutMs, interval: 20 });
}

/** The directory holds something: the data stream has reached the sink. */
async function hasFiles(dir: string): Promise<boolean> {
  return existsSync(dir) && (await readdir(dir)).length > 0;
}

/** Nothing of the run is left: `parent` is empty again. */
async function expectNothingLeft(parent: string): Promise<void> {
  expect(await readdir(parent)).toEqual([]);
}

const timings: string[] = [];
afterAll(() => {
  if (timings.length > 0) process.stdout.write(`backup-faults timings:\n  ${timings.join('\n  ')}\n`);
});

describe.concurrent('backup faults', () => {
  for (const major of MAJORS) {
    describe.sequential(`PostgreSQL ${major}`, () => {
      let primary: Cluster;
      let tmpfs: string | undefined;
      beforeAll(async () => {
        primary = await startCluster({ major, ssl: false });
        // Enough rows that the backup is not over in a blink, and that a spread checkpoint has
        // dirty buffers to pace.
        await primary.sql('create table filler as select g, md5(g::text) m from generate_series(1, 200000) g');
        const root = await makeTempDir(`tmpfs-${major}`);
        // Root in this environment: a real full file system rather than an injected write error.
        await exec('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', root]);
        tmpfs = root;
      });
      afterAll(async () => {
        if (tmpfs) await exec('umount', [tmpfs]).catch(() => exec('umount', ['-l', tmpfs!]));
        await primary?.destroy();
      });

      const note = (what: string, ms: number, err: Error): void => {
        timings.push(`${major} ${what}: ${Math.round(ms)} ms, ${err.constructor.name}: ${err.message.slice(0, 300)}`);
      };

      for (const format of ['plain', 'tar'] as const) {
        it(`${format}: the data connection cut mid-stream → ConnectionClosedError, target removed, no slot`, async () => {
          // The first connection runs BASE_BACKUP; the second (WAL) and the one that drops a
          // created slot pass untouched.
          const proxy = await CuttingProxy.start(primary.port, 0, 2 * 1024 * 1024);
          try {
            const parent = await makeTempDir(`cut-${format}`);
            const { err, ms } = await failing({
              connection: primary.connectionString({ port: String(proxy.port) }),
              checkpoint: 'fast',
              noSync: true,
              // The tar run also checks that a slot created with -C is dropped after the cut.
              ...(format === 'tar' ? { slot: `pgbb_cut_${major}`, createSlot: true } : {}),
              output: { format, directory: join(parent, 'backup') },
            });
            note(`${format} cut after 2 MiB`, ms, err);
            expect(proxy.cut).toBe(true);
            expect(err).toMatchObject({ code: 'ERR_PGBB_CONNECTION_CLOSED' });
            expect(err.message).toMatch(new RegExp(`port ${proxy.port} closed the connection unexpectedly`));
            await expectNothingLeft(parent);
            expect(await slotsAfterSettling(primary)).toEqual([]);
          } finally {
            await proxy.close();
          }
        });

        it(`${format}: the WAL connection cut mid-stream → WalStreamError, target removed, no slot`, async () => {
          // The second connection streams WAL; the data connection is slowed so the cut lands mid-backup.
          const proxy = await CuttingProxy.start(primary.port, 1, 64 * 1024);
          try {
            const parent = await makeTempDir(`walcut-${format}`);
            const run = failing({
              connection: primary.connectionString({ port: String(proxy.port) }),
              checkpoint: 'fast',
              noSync: true,
              maxRateKBps: 256,
              output: { format, directory: join(parent, 'backup') },
            });
            await until(
              'the WAL walsender',
              async () => (await primary.sql("select 1 from pg_stat_replication where state in ('streaming', 'catchup')")).length > 0,
            );
            // WAL for the stream to carry past the cut.
            await primary.sql(`create table walgen_${format} as select g from generate_series(1, 100000) g`);
            const { err, ms } = await run;
            note(`${format} WAL connection cut after 64 KiB`, ms, err);
            expect(proxy.cut).toBe(true);
            expect(err).toMatchObject({ code: 'ERR_PGBB_WAL_STREAM' });
            expect(err.message).toMatch(
              /^the WAL streaming connection of the backup failed \(the server at .* closed the connection unexpectedly/,
            );
            expect(err.cause).toMatchObject({ code: 'ERR_PGBB_CONNECTION_CLOSED' });
            await expectNothingLeft(parent);
            expect(await slotsAfterSettling(primary)).toEqual([]);
          } finally {
            await proxy.close();
          }
        });

        it(`${format}: the WAL walsender terminated mid-backup → a WAL stream error, target removed, no slot`, async () => {
          const parent = await makeTempDir(`walkill-${format}`);
          const dir = join(parent, 'backup');
          // A walsender of an earlier test (one whose connection a proxy cut) can still be listed until
          // the server notices: only a walsender that appears after this backup starts is its own.
          const earlier = (await primary.sql<{ pid: number }>('select pid from pg_stat_replication')).map((r) => r.pid);
          const run = failing({
            connection: primary.connectionString(),
            checkpoint: 'fast',
            noSync: true,
            maxRateKBps: 32,
            output: { format, directory: dir },
          });
          let pid = 0;
          await until('the WAL walsender', async () => {
            const rows = await primary.sql<{ pid: number }>(
              "select pid from pg_stat_replication where state in ('streaming', 'catchup') and pid <> all($1::int[])",
              [earlier],
            );
            pid = rows[0]?.pid ?? 0;
            return pid !== 0;
          });
          await until('data in the target', () => hasFiles(dir));
          await primary.sql('select pg_terminate_backend($1)', [pid]);
          const { err, ms } = await run;
          note(`${format} WAL walsender terminated`, ms, err);
          expect(err).toMatchObject({ code: 'ERR_PGBB_WAL_STREAM' });
          expect(err.message).toMatch(
            /^the WAL streaming connection of the backup failed \(FATAL: terminating connection due to administrator command\)/,
          );
          expect(err.cause).toMatchObject({ code: 'ERR_PGBB_SERVER' });
          expect((err.cause as ServerError).sqlState).toBe('57P01');
          await expectNothingLeft(parent);
          expect(await slotsAfterSettling(primary)).toEqual([]);
        });
      }

      it('plain: the data directory on a full disk (8 MB tmpfs) → IoError naming the file, target removed, no slot', async () => {
        const walParent = await makeTempDir('full-waldir');
        const { err, ms } = await failing({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'plain', directory: join(tmpfs!, 'data'), waldir: join(walParent, 'wal') },
        });
        note('plain data on a full disk', ms, err);
        expect(err).toMatchObject({ code: 'ERR_PGBB_IO' });
        expect((err as IoError).syscallCode).toBe('ENOSPC');
        expect((err as IoError).path).toContain(join(tmpfs!, 'data'));
        expect(err.message).toContain(join(tmpfs!, 'data'));
        await expectNothingLeft(tmpfs!);
        await expectNothingLeft(walParent);
        expect(await slotsAfterSettling(primary)).toEqual([]);
      });

      it('plain: pg_wal on a full disk (--waldir on an 8 MB tmpfs, segments are 16 MB) → IoError from the WAL writer, all removed', async () => {
        const parent = await makeTempDir('full-wal');
        const { err, ms } = await failing({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'plain', directory: join(parent, 'data'), waldir: join(tmpfs!, 'wal') },
        });
        note('plain pg_wal on a full disk', ms, err);
        expect(err).toMatchObject({ code: 'ERR_PGBB_IO' });
        expect((err as IoError).syscallCode).toBe('ENOSPC');
        expect(err.message).toMatch(/^could not zero-fill WAL file ".*\/pg_wal\/0{7}\w{17}\.partial": ENOSPC/);
        await expectNothingLeft(tmpfs!);
        await expectNothingLeft(parent);
        expect(await slotsAfterSettling(primary)).toEqual([]);
      });

      it('tar: the output directory on a full disk → IoError naming base.tar, all removed, no slot', async () => {
        const { err, ms } = await failing({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          slot: `pgbb_full_${major}`,
          createSlot: true,
          output: { format: 'tar', directory: join(tmpfs!, 'out') },
        });
        note('tar on a full disk', ms, err);
        expect(err).toMatchObject({ code: 'ERR_PGBB_IO' });
        expect((err as IoError).syscallCode).toBe('ENOSPC');
        expect(err.message).toContain(join(tmpfs!, 'out', 'base.tar'));
        await expectNothingLeft(tmpfs!);
        expect(await slotsAfterSettling(primary)).toEqual([]);
      });

      it('tar-stream: a Writable on /dev/full → IoError ENOSPC, stream not ended, no slot', async () => {
        const stream = createWriteStream('/dev/full');
        const streamErrors: Error[] = [];
        stream.on('error', (e) => streamErrors.push(e));
        const { err, ms } = await failing({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          wal: 'fetch',
          output: { format: 'tar-stream', stream, end: true },
        });
        note('tar-stream to /dev/full', ms, err);
        expect(err).toMatchObject({ code: 'ERR_PGBB_IO' });
        expect((err as IoError).syscallCode).toBe('ENOSPC');
        // The failed write's callback can reject the backup before the stream emits 'error' (a tick later).
        await vi.waitFor(() => expect(streamErrors.length).toBeGreaterThan(0), { timeout: 2000 });
        expect(await slotsAfterSettling(primary)).toEqual([]);
      });

      it('abort during the spread checkpoint → AbortError at once, nothing left, no slot', async () => {
        // Dirty buffers for the checkpoint to pace over checkpoint_timeout.
        await primary.sql('update filler set m = md5(m)');
        const parent = await makeTempDir('abort-ckpt');
        const ac = new AbortController();
        const run = failing({
          connection: primary.connectionString(),
          checkpoint: 'spread',
          noSync: true,
          signal: ac.signal,
          output: { format: 'plain', directory: join(parent, 'backup') },
        });
        await until('the checkpoint wait', async () =>
          (await primary.sql<{ phase: string }>('select phase from pg_stat_progress_basebackup')).some(
            (r) => r.phase === 'waiting for checkpoint to finish',
          ),
        );
        const t0 = performance.now();
        ac.abort();
        const { err } = await run;
        const ms = performance.now() - t0;
        note('abort in the spread checkpoint (from abort())', ms, err);
        expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
        expect(ms).toBeLessThan(5000);
        await expectNothingLeft(parent);
        expect(await slotsAfterSettling(primary)).toEqual([]);
        // Let the walsender that still waits for the checkpoint go before the next test.
        await primary.sql('checkpoint');
      });

      it('tar-stream: abort mid-archive → AbortError, the stream destroyed, not ended, no walsender left', async () => {
        const ac = new AbortController();
        let bytes = 0;
        let ended = false;
        const stream = new Writable({
          write(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            if (bytes > 256 * 1024) ac.abort();
            cb();
          },
          final(cb) {
            ended = true;
            cb();
          },
        });
        const { err, ms } = await failing({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          wal: 'fetch',
          signal: ac.signal,
          maxRateKBps: 1024,
          output: { format: 'tar-stream', stream, end: true },
        });
        note('tar-stream abort mid-archive', ms, err);
        expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
        // Not ended (it would look complete to whoever reads it): destroyed, a premature close.
        expect(ended).toBe(false);
        expect(stream.destroyed).toBe(true);
        await until('the walsender to exit', async () => (await primary.sql('select 1 from pg_stat_replication')).length === 0, 10_000);
      });

      for (const format of ['plain', 'tar'] as const) {
        it(`${format}: abort while the manifest is written → AbortError, nothing left, created slot dropped`, async () => {
          const parent = await makeTempDir(`abort-manifest-${format}`);
          const dir = join(parent, 'backup');
          await mkdir(dir);
          const ac = new AbortController();
          const warnings: Error[] = [];
          const watcher = watch(dir, (_event, name) => {
            if (name === 'backup_manifest.tmp' || name === 'backup_manifest') ac.abort();
          });
          try {
            const { err, ms } = await failing({
              connection: primary.connectionString(),
              checkpoint: 'fast',
              signal: ac.signal,
              slot: `pgbb_man_${format}_${major}`,
              createSlot: true,
              output: { format, directory: dir },
              onWarning: (w) => warnings.push(w),
            });
            note(`${format} abort in the manifest`, ms, err);
            expect(ac.signal.aborted).toBe(true);
            expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
          } finally {
            watcher.close();
          }
          // The slot was dropped by runBackup itself, before it rejected.
          expect(warnings).toEqual([]);
          expect(await primary.sql('select slot_name from pg_replication_slots')).toEqual([]);
          // The directory existed before: it is emptied, not removed.
          expect(await readdir(dir)).toEqual([]);
          expect(await slotsAfterSettling(primary)).toEqual([]);
          await rm(dir, { recursive: true });
        });
      }

      it('tar-stream: abort while the manifest goes into the stream → AbortError, the tar is not ended', async () => {
        const ac = new AbortController();
        let ended = false;
        const stream = new Writable({
          write(chunk: Buffer, _enc, cb) {
            if (chunk.includes('PostgreSQL-Backup-Manifest-Version')) ac.abort();
            cb();
          },
          final(cb) {
            ended = true;
            cb();
          },
        });
        const { err, ms } = await failing({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          wal: 'fetch',
          signal: ac.signal,
          output: { format: 'tar-stream', stream, end: true },
        });
        note('tar-stream abort in the manifest', ms, err);
        expect(ac.signal.aborted).toBe(true);
        expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
        expect(ended).toBe(false);
      });

      it('the server is still usable: a backup now succeeds and leaves no slot', async () => {
        const dir = join(await makeTempDir('after-faults'), 'out');
        const r = await runBackup({
          connection: primary.connectionString(),
          checkpoint: 'fast',
          noSync: true,
          output: { format: 'tar', directory: dir },
        });
        expect(r.endLsn > r.startLsn).toBe(true);
        expect(await slotsAfterSettling(primary)).toEqual([]);
      });
    });
  }
});
