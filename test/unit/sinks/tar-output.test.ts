import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from 'node:fs/promises';
import { TarFileWalSink } from '../../../src/backup/tar-wal.js';
import { resolveCompression } from '../../../src/compress/spec.js';
import { IoError } from '../../../src/errors.js';
import { SyncFileWritable } from '../../../src/sinks/file-writer.js';
import { rewriteArchive } from '../../../src/sinks/inject.js';
import { TarWalSink } from '../../../src/wal/tar-sink.js';
import { TarFilesSink } from '../../../src/sinks/tar-files.js';
import { WritableSink } from '../../../src/sinks/writable.js';
import { splits } from '../helpers/splits.js';
import { collect, END, member, paxRecord, source, TAR_SPLITS } from '../tar/fixtures.js';
import { AUTO_CONF_TEXT, baseTar, feed, PG_CONTROL, RELATION, tablespaceTar, tempDir, TS_OID } from './fixtures.js';

const roots: string[] = [];
function scratch(): string {
  const d = tempDir();
  roots.push(d);
  return d;
}
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const BASE = { name: 'base.tar', tablespacePath: '', terminated: true };
const RECOVERY = {
  appendToAutoConf: "primary_conninfo = 'host=primary user=rep'\nprimary_slot_name = 's1'\n",
  addFiles: [{ name: 'standby.signal', content: Buffer.alloc(0) }],
};

function gnuExtract(archive: string): string {
  const dest = join(scratch(), 'x');
  mkdirSync(dest);
  execFileSync('tar', ['-xf', archive, '-C', dest]);
  return dest;
}

function gnuExtractBuffer(tar: Buffer): string {
  const file = join(scratch(), 'a.tar');
  writeFileSync(file, tar);
  return gnuExtract(file);
}

describe('TarFilesSink', () => {
  it('writes each archive as received, mode 0600, appending the terminator only when missing', async () => {
    const root = scratch();
    const dir = join(root, 'out');
    const sink = new TarFilesSink({ directory: dir });
    await sink.verifyTarget();
    await sink.writeArchive({ name: `${TS_OID}.tar`, tablespacePath: '/srv/ts', terminated: false }, feed(tablespaceTar(false)));
    await sink.writeArchive(BASE, feed(baseTar()));
    await sink.writeManifest(feed(Buffer.from('{"Files": []}\n')));
    await sink.finish();
    expect(readdirSync(dir).sort()).toEqual(['16384.tar', 'backup_manifest', 'base.tar']);
    expect(readFileSync(join(dir, 'base.tar'))).toEqual(baseTar());
    expect(readFileSync(join(dir, '16384.tar'))).toEqual(tablespaceTar(true));
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const names = execFileSync('tar', ['-tf', join(dir, '16384.tar')], { encoding: 'utf8' });
    expect(names).toContain('PG_16_202307071/5/16385');
  });

  it('rewrites postgresql.auto.conf and adds standby.signal in base.tar (-R), readable by GNU tar', async () => {
    const dir = join(scratch(), 'out');
    const sink = new TarFilesSink({ directory: dir, injection: RECOVERY, noSync: true });
    // A 13/14-style archive: no terminator; the rewrite adds one.
    await sink.writeArchive({ ...BASE, terminated: false }, feed(baseTar({ terminated: false }), 777));
    await sink.finish();
    const file = join(dir, 'base.tar');
    const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.at(-1)).toBe('standby.signal');
    const x = gnuExtract(file);
    expect(readFileSync(join(x, 'postgresql.auto.conf'), 'utf8')).toBe(AUTO_CONF_TEXT + RECOVERY.appendToAutoConf);
    expect(readFileSync(join(x, 'standby.signal')).length).toBe(0);
    expect(readFileSync(join(x, 'base/1/1259'))).toEqual(RELATION);
    expect(readFileSync(join(x, 'global/pg_control'))).toEqual(PG_CONTROL);
    const { tar } = await collect([readFileSync(file)]);
    expect(tar.terminated).toBe(true);
  });

  it('refuses unsafe archive names and injection into a compressed archive', async () => {
    const sink = new TarFilesSink({ directory: join(scratch(), 'out'), injection: RECOVERY });
    for (const name of ['', '.hidden.tar', '../base.tar', 'a/b.tar', 'a\\b.tar']) {
      await expect(sink.writeArchive({ ...BASE, name }, feed(baseTar()))).rejects.toMatchObject({ code: 'ERR_PGBB_TAR' });
    }
    // Injection into a server-compressed base archive decompresses it first: garbage fails typed.
    await expect(sink.writeArchive({ ...BASE, name: 'base.tar.gz' }, feed(Buffer.alloc(10)))).rejects.toMatchObject({
      code: 'ERR_PGBB_COMPRESSION',
    });
  });

  it('-R into a server-compressed base.tar.gz: decompressed, rewritten, compressed again under the same name', async () => {
    const dir = join(scratch(), 'out');
    const sink = new TarFilesSink({ directory: dir, injection: RECOVERY, noSync: true });
    await sink.writeArchive({ ...BASE, name: 'base.tar.gz' }, feed(gzipSync(baseTar()), 333));
    await sink.finish();
    expect(readdirSync(dir)).toEqual(['base.tar.gz']);
    const tar = gunzipSync(readFileSync(join(dir, 'base.tar.gz')));
    const x = gnuExtractBuffer(tar);
    expect(readFileSync(join(x, 'postgresql.auto.conf'), 'utf8')).toBe(AUTO_CONF_TEXT + RECOVERY.appendToAutoConf);
    expect(existsSync(join(x, 'standby.signal'))).toBe(true);
  });

  it('client compression: every uncompressed archive stored compressed under its suffixed name, the terminator inside', async () => {
    const dir = join(scratch(), 'out');
    const sink = new TarFilesSink({ directory: dir, compression: 'gzip:1', noSync: true });
    await sink.writeArchive({ name: `${TS_OID}.tar`, tablespacePath: '/srv/ts', terminated: false }, feed(tablespaceTar(false), 500));
    await sink.writeArchive(BASE, feed(baseTar()));
    // Already compressed by the server: kept byte for byte.
    const serverBytes = gzipSync(Buffer.from('server bytes'));
    await sink.writeArchive({ name: 'pg_wal.tar.gz', tablespacePath: '', terminated: true }, feed(serverBytes));
    await sink.finish();
    expect(readdirSync(dir).sort()).toEqual(['16384.tar.gz', 'base.tar.gz', 'pg_wal.tar.gz']);
    expect(gunzipSync(readFileSync(join(dir, 'base.tar.gz')))).toEqual(baseTar());
    expect(gunzipSync(readFileSync(join(dir, '16384.tar.gz')))).toEqual(tablespaceTar(true));
    expect(readFileSync(join(dir, 'pg_wal.tar.gz'))).toEqual(serverBytes);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
  });

  it('client compression still checks the tar structure: a corrupt archive fails instead of being stored', async () => {
    const sink = new TarFilesSink({ directory: join(scratch(), 'out'), compression: 'gzip', noSync: true });
    const bad = Buffer.from(baseTar());
    bad.writeUInt8(bad.readUInt8(148) ^ 0xff, 148); // the first header's checksum
    await expect(sink.writeArchive(BASE, feed(bad))).rejects.toMatchObject({ code: 'ERR_PGBB_TAR' });
  });

  it('refuses server-side or invalid compression specs at construction', () => {
    expect(() => new TarFilesSink({ directory: scratch(), compression: 'server-gzip' })).toThrow(
      expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }),
    );
    expect(() => new TarFilesSink({ directory: scratch(), compression: 'gzip:99' })).toThrow(
      expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }),
    );
  });

  it('refuses a non-empty directory, and cleanup removes only what it created', async () => {
    const root = scratch();
    writeFileSync(join(root, 'stray'), 'x');
    await expect(new TarFilesSink({ directory: root }).writeArchive(BASE, feed(baseTar()))).rejects.toMatchObject({
      code: 'ERR_PGBB_TARGET',
    });

    const existing = join(root, 'empty-existing');
    mkdirSync(existing);
    const sink = new TarFilesSink({ directory: existing });
    await sink.writeArchive(BASE, feed(baseTar()));
    await sink.writeManifest(Buffer.from('{}'));
    expect(sink.created).toEqual([join(existing, 'base.tar'), join(existing, 'backup_manifest')]);
    await sink.cleanup();
    expect(readdirSync(existing)).toEqual([]);
    expect(readFileSync(join(root, 'stray'), 'utf8')).toBe('x');

    const fresh = new TarFilesSink({ directory: join(root, 'new/out') });
    await fresh.writeArchive(BASE, feed(baseTar()));
    await fresh.cleanup();
    expect(existsSync(join(root, 'new'))).toBe(false);
  });

  it('creates nothing when the archive has no bytes yet and fails', async () => {
    const dir = join(scratch(), 'out');
    // biome-ignore lint/correctness/useYield: an archive whose first read fails.
    async function* failing(): AsyncGenerator<Buffer> {
      throw new Error('connection lost');
    }
    const sink = new TarFilesSink({ directory: dir });
    await expect(sink.writeArchive(BASE, failing())).rejects.toThrow('connection lost');
    expect(existsSync(dir)).toBe(false);
  });
});

/** A Writable that acknowledges each chunk only on a later turn of the event loop, to exercise backpressure. */
function slowWritable(): { writable: Writable; data: () => Buffer; maxBuffered: () => number } {
  const parts: Buffer[] = [];
  let maxBuffered = 0;
  const writable = new Writable({
    highWaterMark: 4096,
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      maxBuffered = Math.max(maxBuffered, writable.writableLength);
      setImmediate(cb);
    },
  });
  return { writable, data: () => Buffer.concat(parts), maxBuffered: () => maxBuffered };
}

describe('WritableSink', () => {
  it('writes one archive with backpressure, terminating a 13/14 archive', async () => {
    const out = slowWritable();
    let pulledAhead = 0;
    const archive = baseTar({ terminated: false });
    async function* counting(): AsyncGenerator<Buffer> {
      for await (const c of feed(archive, 1024)) {
        pulledAhead = Math.max(pulledAhead, out.writable.writableLength);
        yield c;
      }
    }
    const sink = new WritableSink(out.writable);
    await sink.writeArchive({ ...BASE, terminated: false }, counting());
    await sink.finish();
    expect(out.data()).toEqual(Buffer.concat([archive, END]));
    // The producer never ran more than one chunk ahead of the high-water mark.
    expect(pulledAhead).toBeLessThanOrEqual(4096 + 1024);
    expect(out.writable.writableFinished).toBe(true);
  });

  it('injects the manifest and -R files into the single tar, as pg_basebackup -D - does', async () => {
    const out = new PassThrough();
    const parts: Buffer[] = [];
    out.on('data', (c: Buffer) => parts.push(c));
    const sink = new WritableSink(out, { injectManifest: true, injection: RECOVERY });
    await sink.writeArchive(BASE, feed(baseTar()));
    const manifest = Buffer.from(`{"PostgreSQL-Backup-Manifest-Version": 1, "pad": "${'m'.repeat(700)}"}\n`);
    await sink.writeManifest(feed(manifest, 100));
    await sink.finish();
    const file = join(scratch(), 'stdout.tar');
    writeFileSync(file, Buffer.concat(parts));
    const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(names.slice(-2)).toEqual(['standby.signal', 'backup_manifest']);
    expect(execFileSync('tar', ['-xOf', file, 'backup_manifest'])).toEqual(manifest);
    expect(execFileSync('tar', ['-xOf', file, 'postgresql.auto.conf'], { encoding: 'utf8' })).toBe(
      AUTO_CONF_TEXT + RECOVERY.appendToAutoConf,
    );
    const { tar } = await collect([readFileSync(file)]);
    expect(tar.terminated).toBe(true);
  });

  it('injects the manifest without -R at every split: the archive passes through, only its end marker held back', async () => {
    const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n');
    const longName = member({ name: 'PaxHeader/x', typeflag: 'x' }, paxRecord('path', `base/${'d'.repeat(120)}/1`));
    const plain = baseTar({ terminated: false });
    const withPax = Buffer.concat([plain, longName, member({ name: 'x' }, 'y')]);
    for (const [content, archive, info] of [
      [plain, baseTar(), BASE],
      [plain, plain, { ...BASE, terminated: false }],
      // Zero padding after the marker (as GNU tar pads to its record size) is dropped with it.
      [withPax, Buffer.concat([withPax, END, Buffer.alloc(4096)]), BASE],
    ] as const) {
      for (const [how, chunks] of splits(archive, TAR_SPLITS)) {
        const out = new PassThrough();
        const parts: Buffer[] = [];
        out.on('data', (c: Buffer) => parts.push(c));
        const sink = new WritableSink(out, { injectManifest: true });
        await sink.writeArchive(info, source(chunks));
        await sink.writeManifest(manifest);
        await sink.finish();
        const got = Buffer.concat(parts);
        expect(got.subarray(0, content.length).equals(content), how).toBe(true);
        const { tar, entries } = await collect([got]);
        expect(entries.at(-1)?.header.name, how).toBe('backup_manifest');
        expect(entries.at(-1)?.data, how).toEqual(manifest);
        expect(tar.terminated, how).toBe(true);
        expect(got.length, how).toBe(content.length + 512 + 512 + END.length);
      }
    }
  });

  it('fails on a corrupt archive while injecting the manifest, and on one cut short inside a header', async () => {
    const bad = Buffer.from(baseTar());
    bad[1024 + 10] = (bad[1024 + 10] ?? 0) ^ 0xff; // in the second header
    const sink = new WritableSink(new PassThrough().resume(), { injectManifest: true });
    await expect(sink.writeArchive(BASE, feed(bad))).rejects.toMatchObject({ code: 'ERR_PGBB_TAR' });
    const cut = baseTar({ terminated: false }).subarray(0, 512 + 512 + 100);
    const sink2 = new WritableSink(new PassThrough().resume(), { injectManifest: true });
    await expect(sink2.writeArchive(BASE, feed(cut))).rejects.toMatchObject({ code: 'ERR_PGBB_TAR' });
  });

  it('terminates a held archive in finish() when no manifest came', async () => {
    const out = slowWritable();
    const sink = new WritableSink(out.writable, { injectManifest: true });
    await sink.writeArchive(BASE, feed(baseTar()));
    await sink.finish();
    expect(out.data()).toEqual(baseTar());
  });

  it('refuses a second archive', async () => {
    const sink = new WritableSink(new PassThrough().resume());
    await sink.writeArchive(BASE, feed(baseTar()));
    await expect(
      sink.writeArchive({ name: '16384.tar', tablespacePath: '/x', terminated: true }, feed(tablespaceTar())),
    ).rejects.toMatchObject({ code: 'ERR_PGBB_TARGET' });
  });

  it('client compression: one gzip stream holding the tar, manifest and -R files injected before compression', async () => {
    const out = slowWritable();
    const sink = new WritableSink(out.writable, { injectManifest: true, injection: RECOVERY, compression: 'gzip:1' });
    await sink.writeArchive(BASE, feed(baseTar(), 700));
    const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n');
    await sink.writeManifest(manifest);
    await sink.finish();
    expect(out.writable.writableFinished).toBe(true);
    const file = join(scratch(), 'stdout.tar');
    writeFileSync(file, gunzipSync(out.data()));
    expect(execFileSync('tar', ['-xOf', file, 'backup_manifest'])).toEqual(manifest);
    const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(names.slice(-2)).toEqual(['standby.signal', 'backup_manifest']);
    // A server-compressed archive is not compressed a second time.
    const again = new WritableSink(new PassThrough().resume(), { compression: 'gzip' });
    await expect(again.writeArchive({ ...BASE, name: 'base.tar.gz' }, feed(Buffer.alloc(1)))).rejects.toMatchObject({
      code: 'ERR_PGBB_TARGET',
    });
    await again.cleanup();
  });

  it('client compression with end: false leaves the destination open but flushed', async () => {
    const out = new PassThrough();
    const parts: Buffer[] = [];
    out.on('data', (c: Buffer) => parts.push(c));
    const sink = new WritableSink(out, { compression: 'gzip', end: false });
    await sink.writeArchive(BASE, feed(baseTar()));
    await sink.finish();
    expect(out.writableEnded).toBe(false);
    expect(gunzipSync(Buffer.concat(parts))).toEqual(baseTar());
  });

  it('with end: false, finish waits until a destination that gathers writes has written them (a zero-length write)', async () => {
    const written: Buffer[] = [];
    let gathered: Buffer[] = [];
    // Keeps chunks until a zero-length write, as pgbb's standard output gathers them into batches.
    const gathering = new Writable({
      write(chunk: Buffer, _e, cb) {
        if (chunk.length === 0) {
          written.push(...gathered);
          gathered = [];
        } else gathered.push(chunk);
        cb();
      },
    });
    const sink = new WritableSink(gathering, { injectManifest: true, end: false });
    await sink.writeArchive(BASE, feed(baseTar(), 1000));
    await sink.writeManifest(Buffer.from('{}'));
    await sink.finish();
    expect(gathering.writableEnded).toBe(false);
    expect(gathered).toEqual([]);
    const file = join(scratch(), 'gathered.tar');
    writeFileSync(file, Buffer.concat(written));
    const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(names.at(-1)).toBe('backup_manifest');
  });

  it('client compression: a failing destination rejects the writes with an IoError', async () => {
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(new Error('EPIPE: broken pipe'));
      },
    });
    const sink = new WritableSink(broken, { compression: 'gzip' });
    const big = Buffer.concat([baseTar({ terminated: false }), member({ name: 'big' }, Buffer.alloc(8 << 20, 7)), END]);
    const err = await (async () => {
      await sink.writeArchive(BASE, feed(big, 65536));
      await sink.finish();
    })().catch((e: unknown) => e);
    expect(String(err)).toMatch(/EPIPE/);
    expect((err as { code?: string }).code).toMatch(/^ERR_PGBB_/);
    await sink.cleanup();
  });

  it('turns a failing destination into an IoError instead of crashing', async () => {
    const broken = new Writable({
      highWaterMark: 16,
      write(_c, _e, cb) {
        cb(new Error('EPIPE: broken pipe'));
      },
    });
    const sink = new WritableSink(broken);
    const err = await sink.writeArchive(BASE, feed(baseTar(), 100)).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_PGBB_IO');
  });
});

describe('rewriteArchive', () => {
  it('passes other entries through byte for byte and replaces a server standby.signal', async () => {
    const withSignal = Buffer.concat([baseTar({ terminated: false }), member({ name: 'standby.signal' }, 'old'), END]);
    const out: Buffer[] = [];
    for await (const c of rewriteArchive(
      feed(withSignal, 333),
      { addFiles: [{ name: 'standby.signal', content: Buffer.from('') }] },
      { mtime: 1 },
    )) {
      out.push(Buffer.from(c));
    }
    const rewritten = Buffer.concat(out);
    // Everything up to the replaced entry is identical.
    expect(rewritten.subarray(0, baseTar({ terminated: false }).length)).toEqual(baseTar({ terminated: false }));
    const { entries, tar } = await collect([rewritten]);
    expect(entries.filter((e) => e.header.name === 'standby.signal').map((e) => e.data.length)).toEqual([0]);
    expect(tar.terminated).toBe(true);
  });

  it('adds postgresql.auto.conf when the archive has none', async () => {
    const out: Buffer[] = [];
    for await (const c of rewriteArchive(feed(Buffer.concat([member({ name: 'PG_VERSION' }, '16\n'), END])), {
      appendToAutoConf: 'x = 1\n',
    }))
      out.push(Buffer.from(c));
    const { entries } = await collect([Buffer.concat(out)]);
    expect(entries.map((e) => [e.header.name, e.data.toString()])).toEqual([
      ['PG_VERSION', '16\n'],
      ['postgresql.auto.conf', 'x = 1\n'],
    ]);
  });
});

describe('TarFilesSink.openArchiveStream', () => {
  it('gives a tracked Writable for pushed archives such as pg_wal.tar', async () => {
    const { TarWriter } = await import('../../../src/tar/writer.js');
    const dir = join(scratch(), 'out');
    const sink = new TarFilesSink({ directory: dir });
    const { output, sync } = await sink.openArchiveStream('pg_wal.tar');
    const w = new TarWriter(output);
    await w.addEntry({ name: '000000010000000000000002', size: 4096 }, Buffer.alloc(4096, 5));
    await w.addEntry({ name: 'archive_status/000000010000000000000002.done' }, '');
    await w.finish({ end: true });
    await sync();
    await sink.finish();
    expect(statSync(join(dir, 'pg_wal.tar')).mode & 0o777).toBe(0o600);
    expect(
      execFileSync('tar', ['-tf', join(dir, 'pg_wal.tar')], { encoding: 'utf8' })
        .trim()
        .split('\n'),
    ).toEqual(['000000010000000000000002', 'archive_status/000000010000000000000002.done']);
    expect(sink.created).toEqual([dir]);
    await sink.cleanup();
    expect(existsSync(dir)).toBe(false);
  });

  it('writes each chunk before write() returns, so the producer may reuse it at once', async () => {
    const dir = join(scratch(), 'out');
    const sink = new TarFilesSink({ directory: dir, noSync: true });
    const { output } = await sink.openArchiveStream('pg_wal.tar');
    const chunk = Buffer.alloc(1000, 7);
    output.write(chunk);
    chunk.fill(9); // reused at once, as the WAL streamer's receive buffer is
    output.write(chunk);
    expect(readFileSync(join(dir, 'pg_wal.tar'))).toEqual(Buffer.concat([Buffer.alloc(1000, 7), Buffer.alloc(1000, 9)]));
    await new Promise<void>((resolve) => output.end(resolve));
    await sink.finish();
  });

  it('a failed write fails the stream with an IoError naming the file', async () => {
    // Writing to /dev/full fails with ENOSPC, as a full disk does.
    const full = new SyncFileWritable(await open('/dev/full', 'w'), '/dev/full');
    const failed = new Promise<Error>((resolve) => full.on('error', resolve));
    full.write(Buffer.alloc(10));
    const err = await failed;
    expect(err).toBeInstanceOf(IoError);
    expect(err.message).toMatch(/could not write to "\/dev\/full"/);
    expect((err as IoError).syscallCode).toBe('ENOSPC');
  });
});

describe('which WAL sinks let the streamer reuse its receive buffers', () => {
  it('pg_wal.tar uncompressed (written synchronously) does; compressed (a compressor holds bytes) does not', async () => {
    const settings = { groupReadable: false, segmentSize: 16 * 1024 * 1024 };
    const prepared = async (wal: TarFileWalSink): Promise<boolean> => {
      await wal.prepare(settings);
      const atOnce = wal.writesDataAtOnce;
      await wal.abort();
      return atOnce;
    };
    const plain = new TarFilesSink({ directory: join(scratch(), 'out'), noSync: true });
    expect(await prepared(new TarFileWalSink({ sink: plain, compression: undefined, durableFlush: false }))).toBe(true);
    const gz = new TarFilesSink({ directory: join(scratch(), 'gz'), noSync: true });
    expect(await prepared(new TarFileWalSink({ sink: gz, compression: resolveCompression('gzip'), durableFlush: false }))).toBe(false);
    // A sink whose stream queues (an upload) does not, even uncompressed.
    const queued = { openArchiveStream: async () => ({ output: new PassThrough(), sync: undefined, writesAtOnce: false }) };
    expect(await prepared(new TarFileWalSink({ sink: queued, compression: undefined, durableFlush: false }))).toBe(false);
    // A permanent slot's flushes must be durable: a stream that cannot sync is refused.
    await expect(new TarFileWalSink({ sink: queued, compression: undefined, durableFlush: true }).prepare(settings)).rejects.toThrow(
      /pg_wal\.tar cannot be made durable while it is written/,
    );
    expect(new TarWalSink({ output: new PassThrough() }).writesDataAtOnce).toBe(false);
    expect(new TarWalSink({ output: new PassThrough(), outputWritesAtOnce: true }).writesDataAtOnce).toBe(true);
  });
});
