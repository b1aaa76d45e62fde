// The streaming backup session against real servers of every major from testMajors():
// archive order and contents, raw tars GNU tar can read, manifest, progress, abort, page
// checksum failures, a server stopped mid-stream, and the three WAL methods.
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import type { BackupArchive } from '../../src/backup/archive.js';
import type { BackupProgress, ChecksumFailureEvent } from '../../src/backup/events.js';
import { startBackup, type BackupSession } from '../../src/backup/session.js';
import type { BaseBackupOptions } from '../../src/backup/options.js';
import type { ConnectionOptions } from '../../src/connection/types.js';
import { type ChecksumFailureError, PgBackupError } from '../../src/errors.js';
import { readBody } from '../../src/tar/extract.js';
import { debianBinDir, makeTempDir, ROLES, testMajors, type Cluster } from '../harness/index.js';
import { clustersForMajors, trustTcp } from '../harness/suite.js';
import { reloadSettings } from './backup-helpers.js';

const run = promisify(execFile);
const majors = testMajors();
const tablespaceOids = new Map<number, number>();
const clusters = clustersForMajors(majors, 'backup-session', async (c) => {
  const location = await makeTempDir(`ts${c.major}`);
  await c.sql(`CREATE TABLESPACE ts_backup LOCATION '${location}'`);
  await c.sql('CREATE TABLE in_ts (id int, payload text) TABLESPACE ts_backup');
  await c.sql("INSERT INTO in_ts SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g");
  const [row] = await c.sql<{ oid: number }>("SELECT oid::int AS oid FROM pg_tablespace WHERE spcname = 'ts_backup'");
  tablespaceOids.set(c.major, row!.oid);
});
const cluster = (major: number): Cluster => clusters.get(major);
const connection = (c: Cluster): ConnectionOptions => trustTcp(c);

function backup(c: Cluster, o: BaseBackupOptions = {}): Promise<BackupSession> {
  return startBackup({ connection: connection(c), checkpoint: 'fast', wal: 'none', ...o });
}

async function entryNames(archive: BackupArchive): Promise<string[]> {
  const names: string[] = [];
  for await (const e of archive.entries()) names.push(e.header.name);
  return names;
}

async function slotCount(c: Cluster): Promise<number> {
  const [r] = await c.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_replication_slots');
  return r!.n;
}

describe.each(majors)('PostgreSQL %i', (major) => {
  it('yields the tablespace archive, then base.tar with backup_label first and pg_control last', async () => {
    const c = cluster(major);
    const oid = tablespaceOids.get(major)!;
    const session = await backup(c);
    expect(session.serverVersionNum).toBe(c.versionNum);
    expect(session.systemIdentifier).toMatch(/^\d+$/);
    expect(session.walSegmentSize).toBe(16 * 1024 * 1024);
    expect(session.tablespaces.map((t) => t.oid)).toEqual([oid, null]);
    expect(session.tablespaces[1]!.estimatedBytes).toBeGreaterThan(1_000_000);
    const seen: { name: string; kind: string; terminated: boolean; entries: string[] }[] = [];
    let pgVersion = '';
    let link: { type: string; linkname: string } | undefined;
    for await (const archive of session.archives()) {
      const names: string[] = [];
      for await (const e of archive.entries()) {
        names.push(e.header.name);
        if (e.header.name === 'PG_VERSION') pgVersion = (await readBody(e.body, 64)).toString().trim();
        if (e.header.name.replace(/\/$/, '') === `pg_tblspc/${oid}`) link = { type: e.header.type, linkname: e.header.linkname };
      }
      seen.push({ name: archive.name, kind: archive.kind, terminated: archive.serverTerminated, entries: names });
    }
    expect(seen.map((s) => s.name)).toEqual([`${oid}.tar`, 'base.tar']);
    expect(seen.every((s) => s.terminated === major >= 15)).toBe(true);
    const ts = seen[0]!.entries;
    expect(ts[0]).toMatch(new RegExp(`^PG_${major}_\\d+/$`));
    const base = seen[1]!.entries;
    expect(base[0]).toBe('backup_label');
    expect(base.at(-1)).toBe('global/pg_control');
    expect(base).toContain('PG_VERSION');
    // Without TABLESPACE_MAP the tablespace is a symlink entry pointing at its location.
    expect(link).toEqual({ type: 'symlink', linkname: session.tablespaces[0]!.location });
    expect(pgVersion).toBe(String(major));
    const result = await session.result();
    expect(result.endLsn).toBeGreaterThanOrEqual(result.startLsn);
    expect(result.stats.archives.map((a) => a.name)).toEqual([`${oid}.tar`, 'base.tar']);
    const manifest = JSON.parse(result.manifest!.toString()) as { 'PostgreSQL-Backup-Manifest-Version': number; Files: { Path: string }[] };
    expect(manifest['PostgreSQL-Backup-Manifest-Version']).toBe(major >= 17 ? 2 : 1);
    expect(manifest.Files.map((f) => f.Path)).toContain('PG_VERSION');
    expect(manifest.Files.some((f) => f.Path.startsWith(`pg_tblspc/${oid}/`))).toBe(true);
    expect(session.state).toBe('done');
  });

  it('raw bytes are complete tars that GNU tar lists; progress ends at the total', async () => {
    const c = cluster(major);
    const session = await backup(c, { progressIntervalMs: 0 });
    const progress: BackupProgress[] = [];
    session.on('progress', (p) => progress.push(p));
    const files: string[] = [];
    for await (const archive of session.archives()) {
      const file = join(clusters.tmp, `${major}-${archive.name}`);
      await archive.pipeTo(createWriteStream(file));
      files.push(file);
      const size = (await stat(file)).size;
      expect(size).toBe(archive.bytesReceived + (archive.serverTerminated ? 0 : 1024));
      expect(size % 512).toBe(0);
      const tail = await open(file, 'r');
      const buf = Buffer.alloc(1024);
      await tail.read(buf, 0, 1024, size - 1024);
      await tail.close();
      expect(buf.every((b) => b === 0)).toBe(true);
    }
    const result = await session.result();
    for (const file of files) {
      const { stdout } = await run('tar', ['-tf', file]);
      expect(stdout.length).toBeGreaterThan(0);
      if (file.endsWith('base.tar')) {
        expect(stdout.split('\n')[0]).toBe('backup_label');
        expect(stdout).toContain('global/pg_control');
      }
    }
    expect(progress.length).toBeGreaterThan(1);
    const last = progress.at(-1)!;
    expect(last.finished).toBe(true);
    expect(last.bytesDone).toBe(result.stats.totalBytes);
    expect(last.totalBytes).toBe(last.bytesDone);
    expect(progress.slice(0, -1).every((p) => p.totalBytes !== undefined && p.bytesDone <= p.totalBytes)).toBe(true);
    expect(result.stats.totalBytes).toBe(result.stats.archives.reduce((n, a) => n + a.bytes, 0));
    // 15+ also reports its own count ('p' messages, one at each archive end): the same bytes.
    expect(last.serverBytesDone).toBe(major >= 15 ? result.stats.totalBytes : undefined);
  });

  it('wal=fetch: the WAL segments arrive inside base.tar', async () => {
    const c = cluster(major);
    const session = await backup(c, { wal: 'fetch' });
    let base: string[] = [];
    for await (const archive of session.archives()) {
      const names = await entryNames(archive);
      if (archive.name === 'base.tar') base = names;
    }
    await session.result();
    const segments = base.filter((n) => /^pg_wal\/[0-9A-F]{24}$/.test(n));
    expect(segments.length).toBeGreaterThan(0);
    expect(base).toContain(`pg_wal/archive_status/${segments[0]!.slice(7)}.done`);
  });

  it('wal=stream: a temporary slot while streaming, pg_wal.tar last, no slot left', async () => {
    const c = cluster(major);
    const before = await slotCount(c);
    const session = await backup(c, { wal: 'stream' });
    expect(session.slotName).toMatch(/^pg_basebackup_\d+$/);
    const [slot] = await c.sql<{ temporary: boolean }>('SELECT temporary FROM pg_replication_slots WHERE slot_name = $1', [
      session.slotName,
    ]);
    expect(slot?.temporary).toBe(true);
    const archives: [string, string[]][] = [];
    for await (const archive of session.archives()) archives.push([archive.name, await entryNames(archive)]);
    expect(archives.map(([n]) => n)).toEqual([`${tablespaceOids.get(major)}.tar`, 'base.tar', 'pg_wal.tar']);
    const wal = archives[2]![1];
    const startSegment = wal[0]!;
    expect(startSegment).toMatch(/^[0-9A-F]{24}$/);
    const result = await session.result();
    expect(result.stats.walBytes).toBeGreaterThan(16 * 1024 * 1024);
    // The start segment streamed is the one holding the start LSN.
    expect(BigInt(`0x${startSegment.slice(16)}`)).toBe((result.startLsn / BigInt(16 * 1024 * 1024)) % 0x100000000n);
    await vi.waitFor(async () => expect(await slotCount(c)).toBe(before), { timeout: 10_000, interval: 100 });
  });

  it('abort mid-archive: AbortError everywhere, no slot left behind', async () => {
    const c = cluster(major);
    const before = await slotCount(c);
    const ac = new AbortController();
    const session = await backup(c, { wal: 'stream', signal: ac.signal, maxRateKBps: 1024 });
    expect(await slotCount(c)).toBe(before + 1);
    const it = session.archives();
    await it.next(); // tablespace archive
    const base = (await it.next()).value!;
    const chunks = base.chunks();
    await chunks.next();
    ac.abort();
    const err = await chunks.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect(session.result()).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await session.close();
    await vi.waitFor(async () => expect(await slotCount(c)).toBe(before), { timeout: 10_000, interval: 100 });
  });

  it('a permanent slot created with createSlot is dropped when the backup is aborted', async () => {
    const c = cluster(major);
    const name = `pgbb_drop_${major}`;
    const ac = new AbortController();
    const session = await backup(c, { wal: 'stream', slot: name, createSlot: true, signal: ac.signal, maxRateKBps: 1024 });
    const warnings: Error[] = [];
    session.on('warning', (w) => warnings.push(w));
    const it = session.archives();
    await it.next();
    ac.abort();
    await expect(it.next()).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await session.close();
    expect(warnings).toEqual([]);
    const rows = await c.sql('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name]);
    expect(rows).toEqual([]);
  });

  it('a permanent slot created with createSlot is kept after success', async () => {
    const c = cluster(major);
    const name = `pgbb_keep_${major}`;
    const session = await backup(c, { wal: 'stream', slot: name, createSlot: true });
    await session.result();
    const rows = await c.sql<{ temporary: boolean }>('SELECT temporary FROM pg_replication_slots WHERE slot_name = $1', [name]);
    expect(rows).toEqual([{ temporary: false }]);
    await c.sql('SELECT pg_drop_replication_slot($1)', [name]);
  });

  it('server stopped (immediate) mid-stream: a typed error', async () => {
    const c = cluster(major);
    const session = await backup(c, { maxRateKBps: 32 });
    const it = session.archives();
    await it.next();
    const base = (await it.next()).value!;
    const chunks = base.chunks();
    await chunks.next();
    await c.stop('immediate');
    let err: unknown;
    try {
      for (;;) if ((await chunks.next()).done) break;
    } catch (e) {
      err = e;
    }
    await c.start();
    expect(err).toBeInstanceOf(PgBackupError);
    expect(['ERR_PGBB_CONNECTION_CLOSED', 'ERR_PGBB_CONNECTION', 'ERR_PGBB_SERVER']).toContain((err as PgBackupError).code);
    await expect(session.result()).rejects.toBe(err);
    expect(session.state).toBe('failed');
  });

  it('a corrupted heap page: checksum-failure events naming the file, ChecksumFailureError', async () => {
    const c = cluster(major);
    await c.sql('CREATE TABLE corrupt_me (id int, payload text)');
    await c.sql("INSERT INTO corrupt_me SELECT g, repeat('y', 200) FROM generate_series(1, 200) g");
    await c.sql('CHECKPOINT');
    const [row] = await c.sql<{ path: string }>("SELECT pg_relation_filepath('corrupt_me') AS path");
    const relPath = row!.path;
    await c.stop('fast');
    // Flip a byte in the tuple area of block 0 (not the page LSN, which would make the page
    // look newer than the backup and be skipped).
    const fh = await open(join(c.dataDir, relPath), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 8000);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, 8000);
    await fh.close();
    await c.start();
    try {
      const session = await backup(c);
      const events: ChecksumFailureEvent[] = [];
      session.on('checksum-failure', (e) => events.push(e));
      for await (const archive of session.archives()) await archive.skip();
      const err = await session.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'ERR_PGBB_CHECKSUM_FAILURE' });
      const cf = err as ChecksumFailureError;
      expect(cf.code).toBe('ERR_PGBB_CHECKSUM_FAILURE');
      expect(cf.failures).toHaveLength(1);
      expect(cf.failures[0]!.file.endsWith(relPath)).toBe(true);
      expect(cf.failures[0]!.blocks).toEqual([0]);
      expect(cf.message).toMatch(/must not be trusted/);
      expect(events).toEqual([{ file: cf.failures[0]!.file, block: 0 }]);
    } finally {
      await c.sql('DROP TABLE corrupt_me');
    }
  });
});

// pg_basebackup 15 (Debian's, the oracle) can back up servers 13 to 15: the server logs the
// command it receives (log_replication_commands), and ours must be the same text.
describe.each(majors.filter((m) => m <= 15))('BASE_BACKUP text matches pg_basebackup 15 against PostgreSQL %i', (major) => {
  const cases: [string, string[], BaseBackupOptions][] = [
    ['defaults, tar format', [], { wal: 'stream', tablespaceMap: true }],
    [
      '-X fetch -c fast -r -l --no-verify-checksums --manifest-checksums',
      ['-X', 'fetch', '-c', 'fast', '-r', '32768', '-l', "it's pgbb", '--no-verify-checksums', '--manifest-checksums=SHA256'],
      {
        wal: 'fetch',
        checkpoint: 'fast',
        maxRateKBps: 32768,
        label: "it's pgbb",
        verifyChecksums: false,
        manifestChecksums: 'SHA256',
        tablespaceMap: true,
      },
    ],
    [
      '-X none --no-estimate-size --no-manifest',
      ['-X', 'none', '--no-estimate-size', '--no-manifest'],
      { wal: 'none', estimateSize: false, manifest: false, tablespaceMap: true },
    ],
  ];

  function loggedCommands(c: Cluster): string[] {
    return [...c.logText().matchAll(/received replication command: (BASE_BACKUP.*)$/gm)].map((m) => m[1]!);
  }

  it.each(cases)('%s', async (_label, flags, options) => {
    const bin = debianBinDir();
    expect(bin, 'Debian postgresql-15 must be installed (.ci/run installs it)').toBeDefined();
    const c = cluster(major);
    await reloadSettings(c, { log_replication_commands: 'on' });
    const dir = join(clusters.tmp, `oracle-${major}-${Math.random().toString(36).slice(2)}`);
    await run(
      join(bin!, 'pg_basebackup'),
      ['-D', dir, '-F', 't', '-h', c.host, '-p', String(c.port), '-U', ROLES.trust, '-w', '-c', 'fast', ...flags],
      { env: { ...process.env, PGSSLMODE: 'disable' } },
    );
    const before = loggedCommands(c);
    const session = await backup(c, { checkpoint: 'fast', ...options });
    await session.result();
    const after = loggedCommands(c);
    expect(after).toHaveLength(before.length + 1);
    expect(before.at(-1)).toMatch(/^BASE_BACKUP /);
    expect(after.at(-1)).toBe(before.at(-1));
  });
});
