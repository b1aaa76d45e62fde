// Backups that cannot finish fail cleanly: a typed error, nothing left that looks like a
// finished backup (the target is removed, or emptied when it existed before), and no
// replication slot left on the server (the temporary one, or one created with createSlot).
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { PgBackupError, runBackup, type RunBackupOptions } from '../../src/index.js';
import { freePort, makeTempDir, testMajors } from '../harness/index.js';
import { describeEachMajor } from '../harness/suite.js';
import { expectNoBackupLeft, slotsAfterSettling } from './backup-helpers.js';

/**
 * Resolves once archive data has reached the sink (not merely the directories created up
 * front): plain format has extracted backup_label (the server sends it first), tar format
 * has opened base.tar (created when its first bytes arrive).
 */
async function untilWriting(dir: string, format: 'plain' | 'tar'): Promise<void> {
  const probe = join(dir, format === 'plain' ? 'backup_label' : 'base.tar');
  // Tar output is written in large batches, which take a while at 32 kB/s: its creation is enough.
  await vi.waitFor(
    async () => {
      expect(existsSync(probe), `nothing was written to ${probe}`).toBe(true);
      if (format === 'plain') expect((await stat(probe)).size).toBeGreaterThan(0);
    },
    { timeout: 20_000, interval: 25 },
  );
}

/** Runs a backup that is expected to fail; returns its error. */
async function failing(options: RunBackupOptions): Promise<PgBackupError> {
  const err = await runBackup(options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PgBackupError);
  return err as PgBackupError;
}

describeEachMajor('failing backups', testMajors(), (_major, primary) => {
  it('refuses a non-empty target before connecting, and leaves it alone', async () => {
    const dir = await makeTempDir('nonempty');
    await writeFile(join(dir, 'keep.txt'), 'mine');
    for (const format of ['plain', 'tar'] as const) {
      const err = await failing({ connection: primary().connectionString(), checkpoint: 'fast', output: { format, directory: dir } });
      expect(err).toMatchObject({ code: 'ERR_PGBB_TARGET' });
      expect(err.message).toContain(dir);
      expect(await readdir(dir)).toEqual(['keep.txt']);
    }
    expect(primary().logText()).not.toMatch(/BASE_BACKUP/);
  });

  it('a missing slot (-S nonexistent) is a server error; nothing is left', async () => {
    const parent = await makeTempDir('noslot');
    const dir = join(parent, 'data');
    const err = await failing({
      connection: primary().connectionString(),
      checkpoint: 'fast',
      slot: 'nonexistent',
      output: { format: 'plain', directory: dir },
    });
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect(err.message).toMatch(/nonexistent/);
    await expectNoBackupLeft(dir, false);
    expect(await readdir(parent)).toEqual([]);
    expect(await slotsAfterSettling(primary())).toEqual([]);
  });

  it('an unreachable server is a connection error; nothing is left', async () => {
    const dir = join(await makeTempDir('unreachable'), 'data');
    const port = await freePort();
    const err = await failing({
      connection: `host=127.0.0.1 port=${port} user=x sslmode=disable connect_timeout=5`,
      output: { format: 'tar', directory: dir },
    });
    expect(err).toMatchObject({ code: 'ERR_PGBB_CONNECTION' });
    expect(err.message).toMatch(new RegExp(String(port)));
    await expectNoBackupLeft(dir, false);
  });

  for (const format of ['plain', 'tar'] as const) {
    it(`aborted mid-stream (${format}, -C -S permanent slot, existing empty target): AbortError, target emptied, slot dropped`, async () => {
      const dir = await makeTempDir(`abort-${format}`);
      const ac = new AbortController();
      const run = failing({
        connection: primary().connectionString(),
        checkpoint: 'fast',
        maxRateKBps: 32,
        slot: `pgbb_fail_${format}`,
        createSlot: true,
        signal: ac.signal,
        output: { format, directory: dir },
      });
      await untilWriting(dir, format);
      const slots = await primary().sql<{ slot_name: string; temporary: boolean }>('select slot_name, temporary from pg_replication_slots');
      expect(slots).toEqual([{ slot_name: `pgbb_fail_${format}`, temporary: false }]);
      ac.abort();
      const err = await run;
      expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
      await expectNoBackupLeft(dir, true);
      // Dropped before runBackup settled (DROP_REPLICATION_SLOT ... WAIT), not some time later.
      expect(await primary().sql('select slot_name from pg_replication_slots')).toEqual([]);
    });
  }

  it('aborted while the -C slot is being created: the slot is dropped all the same', async () => {
    const dir = join(await makeTempDir('abort-early'), 'data');
    for (const delayMs of [0, 5, 20, 60]) {
      const ac = new AbortController();
      const run = failing({
        connection: primary().connectionString(),
        checkpoint: 'fast',
        slot: 'pgbb_fail_early',
        createSlot: true,
        signal: ac.signal,
        output: { format: 'tar', directory: dir },
      });
      setTimeout(() => ac.abort(), delayMs);
      const err = await run;
      expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
      await expectNoBackupLeft(dir, false);
      expect(await primary().sql('select slot_name from pg_replication_slots where not temporary')).toEqual([]);
    }
  });

  it('the server stopped (immediate) in the middle of the data stream: typed error, nothing left, no slot', async () => {
    const parent = await makeTempDir('crash');
    const dir = join(parent, 'data');
    const waldir = join(parent, 'wal');
    const run = failing({
      connection: primary().connectionString(),
      checkpoint: 'fast',
      maxRateKBps: 32,
      output: { format: 'plain', directory: dir, waldir },
    });
    await untilWriting(dir, 'plain');
    const walSlots = await primary().sql<{ temporary: boolean }>('select temporary from pg_replication_slots');
    expect(walSlots).toEqual([{ temporary: true }]);
    await primary().stop('immediate');
    const err = await run;
    expect(err).not.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(err.message.length).toBeGreaterThan(10);
    await expectNoBackupLeft(dir, false);
    await expectNoBackupLeft(waldir, false);
    expect(await readdir(parent)).toEqual([]);
    await primary().start();
    // Temporary slots do not survive a restart; nothing else was created.
    expect(await slotsAfterSettling(primary())).toEqual([]);
  });

  it('still takes a backup afterwards (the failures left the server usable)', async () => {
    const dir = join(await makeTempDir('after'), 'out');
    await mkdir(dir);
    const r = await runBackup({
      connection: primary().connectionString(),
      checkpoint: 'fast',
      noSync: true,
      output: { format: 'tar', directory: dir },
    });
    expect(r.endLsn > r.startLsn).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['backup_manifest', 'base.tar', 'pg_wal.tar']);
    expect(await slotsAfterSettling(primary())).toEqual([]);
  });
});
