import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { TargetError } from '../../../src/errors.js';
import { DirectorySink } from '../../../src/sinks/directory.js';
import { parseTablespaceMapping, tablespaceMappingFrom } from '../../../src/sinks/tablespace-mapping.js';
import { deferred, settle } from '../helpers/deferred.js';
import { END, member } from '../tar/fixtures.js';
import { AUTO_CONF_TEXT, baseTar, feed, PG_CONTROL, RELATION, SERVER_TS, tablespaceTar, tempDir, TS_DIR, TS_OID } from './fixtures.js';

const roots: string[] = [];
function scratch(): string {
  const d = tempDir();
  roots.push(d);
  return d;
}
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const mode = (p: string): number => statSync(p).mode & 0o777;
const BASE = { name: 'base.tar', tablespacePath: '', terminated: true };
const TS = { name: `${TS_OID}.tar`, tablespacePath: SERVER_TS, terminated: true };

describe('DirectorySink', () => {
  it('extracts base.tar and a mapped tablespace like pg_basebackup -Fp', async () => {
    const root = scratch();
    const target = join(root, 'data');
    const tsNew = join(root, 'ts-new');
    const sink = new DirectorySink({ directory: target, tablespaceMapping: tablespaceMappingFrom([`${SERVER_TS}=${tsNew}`]) });
    await sink.verifyTarget();
    await sink.verifyTablespaces([SERVER_TS]);
    // Tablespaces come first, then base.tar (BASE_BACKUP's row order).
    await sink.writeArchive(TS, feed(tablespaceTar()));
    await sink.writeArchive(BASE, feed(baseTar({ tablespaceLink: true }), 1000));
    await sink.writeManifest(Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n'));
    await sink.finish();

    expect(readFileSync(join(target, 'base/1/1259'))).toEqual(RELATION);
    expect(readFileSync(join(target, 'global/pg_control'))).toEqual(PG_CONTROL);
    expect(readFileSync(join(target, 'postgresql.auto.conf'), 'utf8')).toBe(AUTO_CONF_TEXT);
    expect(readFileSync(join(tsNew, TS_DIR, '5/16385'))).toEqual(RELATION);
    const link = join(target, 'pg_tblspc', TS_OID);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(tsNew);
    expect(readFileSync(join(link, TS_DIR, '5/16385'))).toEqual(RELATION);
    expect(readFileSync(join(target, 'backup_manifest'), 'utf8')).toContain('Manifest-Version');
    expect(existsSync(join(target, 'backup_manifest.tmp'))).toBe(false);
    expect(mode(target)).toBe(0o700);
    expect(mode(join(target, 'base/1'))).toBe(0o700);
    expect(mode(join(target, 'base/1/1259'))).toBe(0o600);
    expect(mode(join(target, 'backup_manifest'))).toBe(0o600);
    expect(mode(join(tsNew, TS_DIR))).toBe(0o700);
    expect(statSync(join(target, 'pg_wal/archive_status')).isDirectory()).toBe(true);
  });

  it('uses 0640 / 0750 for a group-readable cluster, whatever the umask', async () => {
    const root = scratch();
    const target = join(root, 'data');
    const old = process.umask(0o077);
    try {
      const sink = new DirectorySink({ directory: target, groupReadable: true, noSync: true });
      await sink.writeArchive(BASE, feed(baseTar()));
      await sink.writeManifest(Buffer.from('{}'));
      await sink.finish();
    } finally {
      process.umask(old);
    }
    expect(mode(target)).toBe(0o750);
    expect(mode(join(target, 'base/1'))).toBe(0o750);
    expect(mode(join(target, 'global'))).toBe(0o750);
    expect(mode(join(target, 'base/1/1259'))).toBe(0o640);
    expect(mode(join(target, 'backup_manifest'))).toBe(0o640);
  });

  it('keeps the server location for unmapped tablespaces and extracts there', async () => {
    const root = scratch();
    const serverLoc = join(root, 'same-path-as-server');
    const sink = new DirectorySink({ directory: join(root, 'data'), noSync: true });
    await sink.writeArchive({ ...TS, tablespacePath: serverLoc }, feed(tablespaceTar()));
    const base = Buffer.concat([member({ name: `pg_tblspc/${TS_OID}`, typeflag: '2', linkname: serverLoc }), END]);
    await sink.writeArchive(BASE, feed(base));
    expect(readlinkSync(join(root, 'data/pg_tblspc', TS_OID))).toBe(serverLoc);
    expect(readFileSync(join(serverLoc, TS_DIR, '5/16385'))).toEqual(RELATION);
  });

  it('extracts an in-place tablespace (relative location) inside the data directory', async () => {
    const root = scratch();
    const target = join(root, 'data');
    const sink = new DirectorySink({ directory: target, noSync: true });
    await sink.writeArchive({ ...TS, tablespacePath: `pg_tblspc/${TS_OID}` }, feed(tablespaceTar()));
    await sink.writeArchive(
      BASE,
      feed(Buffer.concat([member({ name: 'pg_tblspc/', typeflag: '5' }), member({ name: `pg_tblspc/${TS_OID}/`, typeflag: '5' }), END])),
    );
    expect(readFileSync(join(target, 'pg_tblspc', TS_OID, TS_DIR, '5/16385'))).toEqual(RELATION);
    await expect(sink.writeArchive({ ...TS, tablespacePath: '../escape' }, feed(tablespaceTar()))).rejects.toMatchObject({
      code: 'ERR_PGBB_TAR',
    });
  });

  it('extracts an unterminated archive (PostgreSQL 13/14)', async () => {
    const root = scratch();
    const sink = new DirectorySink({ directory: join(root, 'data'), noSync: true });
    await sink.writeArchive({ ...BASE, terminated: false }, feed(baseTar({ terminated: false }), 4096));
    expect(readFileSync(join(root, 'data/global/pg_control'))).toEqual(PG_CONTROL);
  });

  it('refuses a non-empty tablespace target and creates nothing', async () => {
    const root = scratch();
    const ts = join(root, 'ts');
    mkdirSync(ts);
    writeFileSync(join(ts, 'stray'), 'x');
    const sink = new DirectorySink({ directory: join(root, 'data'), tablespaceMapping: new Map([[SERVER_TS, ts]]) });
    await expect(sink.verifyTablespaces([SERVER_TS])).rejects.toMatchObject({ code: 'ERR_PGBB_TARGET' });
    const err = await sink.writeArchive(TS, feed(tablespaceTar())).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_TARGET' });
    expect((err as TargetError).path).toBe(ts);
    expect(readdirSync(ts)).toEqual(['stray']);
    expect(existsSync(join(root, 'data'))).toBe(false);
    expect(sink.created).toEqual([]);
  });

  it('refuses a non-empty data directory', async () => {
    const root = scratch();
    writeFileSync(join(root, 'something'), 'x');
    const sink = new DirectorySink({ directory: root });
    await expect(sink.verifyTarget()).rejects.toMatchObject({ code: 'ERR_PGBB_TARGET' });
    await expect(sink.writeArchive(BASE, feed(baseTar()))).rejects.toThrow(/exists but is not empty/);
  });

  for (const [label, entries] of [
    ['a ".." component', [member({ name: 'base/../../evil' }, 'x')]],
    ['an absolute path', [member({ name: '/tmp/pgbb-evil' }, 'x')]],
    [
      'a path through a symlink from the archive',
      [member({ name: 'link', typeflag: '2', linkname: '/tmp' }), member({ name: 'link/pgbb-evil' }, 'x')],
    ],
    ['a symlink named with ".."', [member({ name: '../link', typeflag: '2', linkname: '/tmp' })]],
  ] as const) {
    it(`refuses an entry with ${label} (TarError) and writes nothing outside`, async () => {
      const root = scratch();
      const target = join(root, 'data');
      const sink = new DirectorySink({ directory: target, noSync: true });
      const err = await sink.writeArchive(BASE, feed(Buffer.concat([...entries, END]))).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_PGBB_TAR' });
      expect(readdirSync(root)).toEqual(readdirSync(root).filter((n) => n === 'data'));
      expect(existsSync('/tmp/pgbb-evil')).toBe(false);
    });
  }

  it('refuses entry types a backup never holds', async () => {
    const root = scratch();
    const sink = new DirectorySink({ directory: join(root, 'data'), noSync: true });
    await expect(sink.writeArchive(BASE, feed(Buffer.concat([member({ name: 'fifo', typeflag: '6' }), END])))).rejects.toThrow(
      /typeflag '6'/,
    );
  });

  it('cleanup() removes what it created and only that', async () => {
    const root = scratch();
    const target = join(root, 'data'); // exists, empty: must survive cleanup
    mkdirSync(target);
    const tsExisting = join(root, 'ts-existing'); // exists, empty: must survive
    mkdirSync(tsExisting);
    const tsNew = join(root, 'deep/ts-new'); // created: removed with its created parent
    writeFileSync(join(root, 'bystander'), 'keep me');
    const sink = new DirectorySink({
      directory: target,
      tablespaceMapping: new Map([
        [SERVER_TS, tsExisting],
        ['/srv/pg/ts2', tsNew],
      ]),
    });
    await sink.writeArchive(TS, feed(tablespaceTar()));
    await sink.writeArchive({ name: '16390.tar', tablespacePath: '/srv/pg/ts2', terminated: true }, feed(tablespaceTar()));
    // A failure in the middle of base.tar.
    const broken = baseTar({ tablespaceLink: true }).subarray(0, 5000);
    await expect(sink.writeArchive(BASE, feed(broken))).rejects.toMatchObject({ code: 'ERR_PGBB_TAR' });
    expect(sink.created).toContain(join(root, 'deep'));
    await sink.cleanup();
    expect(readdirSync(target)).toEqual([]);
    expect(readdirSync(tsExisting)).toEqual([]);
    expect(existsSync(join(root, 'deep'))).toBe(false);
    expect(readFileSync(join(root, 'bystander'), 'utf8')).toBe('keep me');
    expect(readdirSync(root).sort()).toEqual(['bystander', 'data', 'ts-existing']);
    await sink.cleanup(); // idempotent
  });

  it('cleanup() removes a target it created entirely', async () => {
    const root = scratch();
    const sink = new DirectorySink({ directory: join(root, 'a/b/data') });
    await sink.writeArchive(BASE, feed(baseTar()));
    expect(sink.created).toEqual([join(root, 'a')]);
    await sink.cleanup();
    expect(readdirSync(root)).toEqual([]);
  });

  it('creates nothing before the first byte is ready', async () => {
    const root = scratch();
    const target = join(root, 'data');
    const pulled = deferred();
    const gate = deferred();
    let existedAtFirstPull: boolean | undefined;
    async function* late(): AsyncGenerator<Buffer> {
      existedAtFirstPull = existsSync(target);
      pulled.resolve();
      await gate.promise;
      yield* feed(baseTar());
    }
    const sink = new DirectorySink({ directory: target, noSync: true });
    const done = sink.writeArchive(BASE, late());
    await pulled.promise;
    expect(existedAtFirstPull).toBe(false);
    await settle();
    expect(existsSync(target)).toBe(false);
    gate.resolve();
    await done;
    expect(existsSync(join(target, 'PG_VERSION'))).toBe(true);
  });

  it('appends to postgresql.auto.conf and adds standby.signal after base.tar (-R)', async () => {
    const root = scratch();
    const target = join(root, 'data');
    const sink = new DirectorySink({
      directory: target,
      noSync: true,
      injection: {
        appendToAutoConf: "primary_conninfo = 'host=primary port=5432'\n",
        addFiles: [{ name: 'standby.signal', content: Buffer.alloc(0) }],
      },
    });
    await sink.writeArchive(BASE, feed(baseTar()));
    expect(readFileSync(join(target, 'postgresql.auto.conf'), 'utf8')).toBe(
      `${AUTO_CONF_TEXT}primary_conninfo = 'host=primary port=5432'\n`,
    );
    expect(readFileSync(join(target, 'standby.signal')).length).toBe(0);
    expect(mode(join(target, 'standby.signal'))).toBe(0o600);
  });

  it('makes pg_wal a symlink to --waldir and extracts WAL through it', async () => {
    const root = scratch();
    const target = join(root, 'data');
    const waldir = join(root, 'wal');
    const sink = new DirectorySink({ directory: target, waldir });
    // A WAL writer streaming during the backup asks for pg_wal before base.tar arrives.
    const pgWal = await sink.walDirectory();
    expect(pgWal).toBe(join(target, 'pg_wal'));
    writeFileSync(join(pgWal, '000000010000000000000001'), 'streamed');
    await sink.writeArchive(BASE, feed(baseTar({ walSegment: true })));
    await sink.finish();
    expect(readlinkSync(join(target, 'pg_wal'))).toBe(waldir);
    expect(readFileSync(join(waldir, '000000010000000000000001'), 'utf8')).toBe('streamed');
    expect(readFileSync(join(waldir, '000000010000000000000002'))).toEqual(Buffer.alloc(4096, 9));
    expect(statSync(join(waldir, 'archive_status')).isDirectory()).toBe(true);
    await sink.cleanup();
    expect(readdirSync(root)).toEqual([]);
  });

  it('makes the --waldir symlink from base.tar when nothing streamed (-Xfetch)', async () => {
    const root = scratch();
    const target = join(root, 'data');
    const waldir = join(root, 'wal');
    const sink = new DirectorySink({ directory: target, waldir, noSync: true });
    await sink.writeArchive(BASE, feed(baseTar({ walSegment: true })));
    expect(readlinkSync(join(target, 'pg_wal'))).toBe(waldir);
    expect(existsSync(join(waldir, '000000010000000000000002'))).toBe(true);
  });

  it('extracts server-compressed archives (base.tar.gz), refuses corrupt ones and pg_wal.tar', async () => {
    const dir = join(scratch(), 'data');
    const sink = new DirectorySink({ directory: dir, noSync: true });
    await sink.writeArchive({ ...BASE, name: 'base.tar.gz' }, feed(gzipSync(baseTar()), 100));
    expect(readFileSync(join(dir, 'global/pg_control'))).toEqual(PG_CONTROL);
    expect(readFileSync(join(dir, 'base/1/1259'))).toEqual(RELATION);
    const other = new DirectorySink({ directory: join(scratch(), 'data') });
    await expect(other.writeArchive({ ...BASE, name: 'base.tar.gz' }, feed(Buffer.from('not gzip at all')))).rejects.toMatchObject({
      code: 'ERR_PGBB_COMPRESSION',
    });
    await expect(other.writeArchive({ ...BASE, name: 'pg_wal.tar' }, feed(Buffer.alloc(0)))).rejects.toMatchObject({
      code: 'ERR_PGBB_CONFIG',
    });
    await expect(other.writeArchive({ ...BASE, name: 'base.zip' }, feed(Buffer.alloc(0)))).rejects.toMatchObject({
      code: 'ERR_PGBB_CONFIG',
    });
  });
});

describe('parseTablespaceMapping', () => {
  it('parses OLD=NEW with escaped "=" and canonical paths', () => {
    expect(parseTablespaceMapping('/srv/ts=/mnt/ts')).toEqual(['/srv/ts', '/mnt/ts']);
    expect(parseTablespaceMapping('/srv/a\\=b=/mnt//c/')).toEqual(['/srv/a=b', '/mnt/c']);
    expect(parseTablespaceMapping('/srv/x/../y/=/n=ew'.replace('/n=ew', '/n\\=ew'))).toEqual(['/srv/y', '/n=ew']);
  });

  it('refuses what pg_basebackup refuses', () => {
    for (const bad of ['/a', '=/b', '/a=', '/a=/b=/c', 'rel=/b', '/a=rel']) {
      expect(() => parseTablespaceMapping(bad)).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
    }
  });
});
