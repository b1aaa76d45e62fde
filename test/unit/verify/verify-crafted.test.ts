/**
 * verifyBackup on small backups crafted here (no server): plain and tar layouts, a tablespace archive,
 * pg_control identity, WAL from WalFixture, and the failure paths a server-made backup rarely shows.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { lsn } from '../../../src/lsn.js';
import { buildManifest } from '../../../src/manifest/build.js';
import { createChecksum } from '../../../src/manifest/checksum.js';
import { crc32c, setCrc32cNativeLoader } from '../../../src/manifest/crc32c.js';
import { TarWriter } from '../../../src/tar/writer.js';
import { readControlFile } from '../../../src/verify/control-file.js';
import { canonicalRelPath, classifyArchive, isIgnored } from '../../../src/verify/sources.js';
import { findManifestInTarFile } from '../../../src/verify/sources-io.js';
import { verifyBackupAll } from '../../../src/verify/verify.js';
import { WalFixture } from './wal-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'pgbb-verify-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SYSID = 7301234567890123456n;
const CRC_OFFSET = 296;

function controlFile(sysid: bigint): Buffer {
  const b = Buffer.alloc(8192);
  b.writeBigUInt64LE(sysid, 0);
  b.writeUInt32LE(1700, 8);
  randomBytes(CRC_OFFSET - 12).copy(b, 12);
  b.writeUInt32LE(crc32c(b.subarray(0, CRC_OFFSET)), CRC_OFFSET);
  return b;
}

interface Craft {
  format: 'plain' | 'tar';
  manifestSysid?: bigint;
  controlSysid?: bigint;
  walSysid?: bigint;
}

/** Files relative to PGDATA; the tablespace lives under pg_tblspc/16400/. */
async function craft(name: string, o: Craft): Promise<{ dir: string; wal: WalFixture }> {
  const dir = join(root, name);
  const files = new Map<string, Buffer>([
    ['PG_VERSION', Buffer.from('17\n')],
    ['global/pg_control', controlFile(o.controlSysid ?? SYSID)],
    ['base/1/16384', randomBytes(20000)],
    ['base/1/PG_VERSION', Buffer.from('17\n')],
    ['postgresql.auto.conf', Buffer.from('# empty\n')],
    ['pg_tblspc/16400/PG_17_202406281/1/16385', randomBytes(3000)],
  ]);
  const wal = new WalFixture({ systemIdentifier: o.walSysid ?? SYSID, magic: 0xd116, lead: 200 });
  for (const s of [100, 9000, 40, 300]) wal.append(s);
  const range = { timeline: 1, startLsn: lsn(wal.records[0]!.lsn), endLsn: lsn(wal.records.at(-1)!.end) };
  const manifest = buildManifest({
    version: 2,
    systemIdentifier: o.manifestSysid ?? SYSID,
    files: [...files].map(([path, data]) => ({
      path,
      size: data.length,
      lastModified: 1714557600,
      checksumAlgorithm: 'CRC32C' as const,
      checksum: createChecksum('CRC32C').update(data).hex(),
    })),
    walRanges: [range],
  });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'backup_manifest'), manifest);
  const segName = wal.fileName(1n);
  const seg = wal.segments.get(1n)!;
  if (o.format === 'plain') {
    for (const [path, data] of files) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), data);
    }
    mkdirSync(join(dir, 'pg_wal'));
    writeFileSync(join(dir, 'pg_wal', segName), seg);
    return { dir, wal };
  }
  const writeTar = async (file: string, entries: [string, Buffer | undefined][]) => {
    const out = createWriteStream(join(dir, file));
    const tar = new TarWriter(out);
    for (const [n, data] of entries) {
      if (data === undefined) await tar.addEntry({ name: n, type: 'directory' });
      else await tar.addEntry({ name: n, size: data.length }, data);
    }
    await tar.finish({ end: true });
    await new Promise<void>((r) => out.on('close', () => r()));
  };
  const baseEntries: [string, Buffer | undefined][] = [
    ['global/', undefined],
    ['base/', undefined],
  ];
  for (const [path, data] of files) if (!path.startsWith('pg_tblspc/')) baseEntries.push([path, data]);
  await writeTar('base.tar', baseEntries);
  await writeTar('16400.tar', [
    ['PG_17_202406281/', undefined],
    ['PG_17_202406281/1/16385', files.get('pg_tblspc/16400/PG_17_202406281/1/16385')!],
  ]);
  await writeTar('pg_wal.tar', [[segName, seg]]);
  return { dir, wal };
}

describe('verifyBackup on crafted backups', () => {
  it('accepts an intact plain and tar backup, tablespace archive mapped to pg_tblspc/<oid>/', async () => {
    for (const format of ['plain', 'tar'] as const) {
      const { dir, wal } = await craft(`ok-${format}`, { format });
      const { summary, findings } = await verifyBackupAll({ backupDir: dir });
      expect(findings).toEqual([]);
      expect(summary).toMatchObject({
        ok: true,
        format,
        manifestVersion: 2,
        manifestFiles: 6,
        filesChecksummed: 5,
        walRanges: 1,
        walRecords: wal.records.length,
      });
    }
  });

  it('reads pg_control: system identifier, version, CRC found wherever the layout puts it', () => {
    const info = readControlFile(controlFile(42n));
    expect(info).toEqual({ systemIdentifier: 42n, controlVersion: 1700, crcOk: true, crcOffset: CRC_OFFSET });
    const bad = controlFile(42n);
    bad[100] = bad[100]! ^ 1;
    expect(readControlFile(bad)?.crcOk).toBe(false);
  });

  it('names a system identifier mismatch and a damaged pg_control (plain and tar)', async () => {
    const plain = await craft('sysid-plain', { format: 'plain', manifestSysid: 1n });
    const f1 = (await verifyBackupAll({ backupDir: plain.dir, noWal: true })).findings;
    expect(f1).toEqual([
      expect.objectContaining({
        kind: 'system-identifier-mismatch',
        path: 'global/pg_control',
        message: `global/pg_control: manifest system identifier is 1, but control file has ${SYSID}`,
      }),
    ]);
    const tar = await craft('sysid-tar', { format: 'tar', manifestSysid: 1n });
    const f2 = (await verifyBackupAll({ backupDir: tar.dir, noWal: true })).findings;
    expect(f2).toEqual([
      expect.objectContaining({
        kind: 'system-identifier-mismatch',
        message: expect.stringMatching(/^base\.tar: global\/pg_control: manifest system identifier is 1/),
      }),
    ]);
    const damaged = await craft('crc', { format: 'plain' });
    const path = join(damaged.dir, 'global/pg_control');
    const b = readFileSync(path);
    b[50] = b[50]! ^ 1;
    writeFileSync(path, b);
    const kinds = (await verifyBackupAll({ backupDir: damaged.dir, noWal: true })).findings.map((f) => f.kind).sort();
    expect(kinds).toEqual(['checksum-mismatch', 'control-file-invalid']);
  });

  it("checks WAL long headers against pg_control's system identifier", async () => {
    const { dir } = await craft('walsys', { format: 'plain', walSysid: 99n });
    const { findings } = await verifyBackupAll({ backupDir: dir });
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ kind: 'wal-invalid' });
    expect(findings[0]!.message).toMatch(/WAL file is from different database system: WAL file database system identifier is 99/);
  });

  it('in tar format: unexpected files, unsupported compression, a damaged tablespace archive', async () => {
    const { dir } = await craft('tarbad', { format: 'tar' });
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, '16500.tar.zst'), 'x');
    const ts = readFileSync(join(dir, '16400.tar'));
    const at = ts.indexOf(Buffer.from('PG_17_202406281/1/16385\0'));
    ts[at + 512 + 10] = ts[at + 512 + 10]! ^ 0xff;
    writeFileSync(join(dir, '16400.tar'), ts);
    const { findings } = await verifyBackupAll({ backupDir: dir });
    // 'x' is no zstd frame; whether zstd is available here or not, the archive cannot be read.
    expect(findings.map((f) => `${f.kind}: ${f.message}`).sort()).toEqual([
      'checksum-mismatch: checksum mismatch for file "pg_tblspc/16400/PG_17_202406281/1/16385" in archive "16400.tar"',
      'extra-file: file "notes.txt" is not expected in a tar format backup',
      'unreadable: could not read archive "16500.tar.zst"',
    ]);
    expect(findings.find((f) => f.kind === 'unreadable')?.detail).toMatch(/zstd/);
    const custom = await verifyBackupAll({ backupDir: dir, openArchive: () => undefined, ignore: ['notes.txt'] });
    expect(custom.findings.map((f) => f.message)).toContain('could not read archive "base.tar": no decompressor for none is available');
    const ignored = await verifyBackupAll({ backupDir: dir, ignore: ['notes.txt', '16500.tar.zst', 'pg_tblspc/16400'] });
    expect(ignored.findings).toEqual([]);
  });

  it('stops at the first finding with exitOnError, and throws on abort or a missing manifest', async () => {
    const { dir } = await craft('stop', { format: 'plain' });
    rmSync(join(dir, 'PG_VERSION'));
    rmSync(join(dir, 'base/1/PG_VERSION'));
    const first = await verifyBackupAll({ backupDir: dir, exitOnError: true });
    expect(first.findings).toHaveLength(1);
    expect(first.summary.stoppedEarly).toBe(true);
    const controller = new AbortController();
    controller.abort();
    await expect(verifyBackupAll({ backupDir: dir, signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect(verifyBackupAll({ backupDir: join(root, 'nothing') })).rejects.toMatchObject({ code: 'ERR_PGBB_VERIFY' });
  });

  it('checksums on worker threads give the same findings as on the main thread', async () => {
    const { dir } = await craft('threads', { format: 'plain' });
    const p = join(dir, 'base/1/16384');
    const b = readFileSync(p);
    b[123] = b[123]! ^ 1;
    writeFileSync(p, b);
    const main = await verifyBackupAll({ backupDir: dir, threads: 0 });
    const threaded = await verifyBackupAll({ backupDir: dir, threads: 2 });
    expect(threaded.findings).toEqual(main.findings);
    expect(main.findings).toEqual([expect.objectContaining({ kind: 'checksum-mismatch', path: 'base/1/16384' })]);
  });
});

describe('plain checksums: small files read whole, large files in chunks read ahead', () => {
  const MiB = 1024 * 1024;
  // Either side of the small-file limit (256 KiB) and of the 1 MiB read size, in both algorithms.
  const sizes = [0, 1, 255, 256 * 1024, 256 * 1024 + 1, MiB - 1, MiB, MiB + 1, 2 * MiB + 5, 3 * MiB + 777];

  function plainBackup(name: string): { dir: string; files: Map<string, Buffer> } {
    const dir = join(root, name);
    const files = new Map<string, Buffer>([['global/pg_control', controlFile(SYSID)]]);
    sizes.forEach((size, i) => files.set(`base/1/${20000 + i}`, randomBytes(size)));
    const manifest = buildManifest({
      version: 2,
      systemIdentifier: SYSID,
      files: [...files].map(([path, data], i) => {
        const checksumAlgorithm = i % 2 === 0 ? ('CRC32C' as const) : ('SHA256' as const);
        return {
          path,
          size: data.length,
          lastModified: 1714557600,
          checksumAlgorithm,
          checksum: createChecksum(checksumAlgorithm).update(data).hex(),
        };
      }),
      walRanges: [],
    });
    for (const [path, data] of files) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), data);
    }
    writeFileSync(join(dir, 'PG_VERSION'), '17\n');
    writeFileSync(join(dir, 'backup_manifest'), manifest);
    return { dir, files };
  }

  afterEach(() => setCrc32cNativeLoader(undefined));

  it('verifies every size, counts every byte, and names each damaged file whatever chunk the damage is in', async () => {
    const { dir, files } = plainBackup('sizes');
    const ignore = ['PG_VERSION'];
    let progress = 0;
    const ok = await verifyBackupAll({
      backupDir: dir,
      noWal: true,
      ignore,
      onProgress: (p) => {
        progress = p.doneBytes;
      },
    });
    const total = [...files.values()].reduce((n, b) => n + b.length, 0);
    expect(ok.findings).toEqual([]);
    expect(ok.summary).toMatchObject({ filesChecksummed: files.size, bytesRead: total });
    expect(progress).toBe(total);
    // One flipped byte each: in the only chunk, at the end of the first, inside the third.
    const damage: [string, number][] = [
      ['base/1/20004', 256 * 1024],
      ['base/1/20006', MiB - 1],
      ['base/1/20009', 2 * MiB + 100],
      ['base/1/20008', 5],
    ];
    for (const [path, at] of damage) {
      const b = Buffer.from(files.get(path)!);
      b[at] = b[at]! ^ 0x80;
      writeFileSync(join(dir, path), b);
    }
    const want = damage.map(([path]) => `checksum-mismatch ${path}`).sort();
    const seen = (r: Awaited<ReturnType<typeof verifyBackupAll>>) => r.findings.map((f) => `${f.kind} ${f.path}`).sort();
    expect(seen(await verifyBackupAll({ backupDir: dir, noWal: true, ignore }))).toEqual(want);
    expect(seen(await verifyBackupAll({ backupDir: dir, noWal: true, ignore, concurrency: 1 }))).toEqual(want);
    expect(seen(await verifyBackupAll({ backupDir: dir, noWal: true, ignore, threads: 2 }))).toEqual(want);
    setCrc32cNativeLoader(null);
    expect(seen(await verifyBackupAll({ backupDir: dir, noWal: true, ignore }))).toEqual(want);
  });

  it('a large file replaced by a directory is missing, not read; exitOnError and abort stop the lanes', async () => {
    const { dir } = plainBackup('not-a-file');
    const ignore = ['PG_VERSION'];
    rmSync(join(dir, 'base/1/20009'));
    mkdirSync(join(dir, 'base/1/20009'));
    const r = await verifyBackupAll({ backupDir: dir, noWal: true, ignore });
    expect(r.findings.map((f) => `${f.kind} ${f.path}`)).toEqual(['missing-file base/1/20009']);
    const damaged = plainBackup('stop-early');
    for (const i of [4, 8, 9]) writeFileSync(join(damaged.dir, `base/1/${20000 + i}`), Buffer.alloc(sizes[i]!));
    const first = await verifyBackupAll({ backupDir: damaged.dir, noWal: true, ignore, exitOnError: true });
    expect(first.findings).toHaveLength(1);
    expect(first.summary.stoppedEarly).toBe(true);
    const controller = new AbortController();
    const run = verifyBackupAll({
      backupDir: damaged.dir,
      noWal: true,
      ignore,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.doneBytes > MiB) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ERR_PGBB_ABORTED' });
  });
});

/**
 * The single tar `-D - -Ft` writes, from a crafted plain backup: every file (pg_wal/ too, as with
 * -X fetch) and then backup_manifest as the last member.
 */
async function singleTar(plainDir: string, file: string): Promise<Buffer> {
  const members: [string, Buffer | undefined][] = [];
  const walk = (rel: string) => {
    for (const d of readdirSync(join(plainDir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      if (r === 'backup_manifest') continue;
      if (d.isDirectory()) {
        members.push([`${r}/`, undefined]);
        walk(r);
      } else members.push([r, readFileSync(join(plainDir, r))]);
    }
  };
  walk('');
  members.push(['backup_manifest', readFileSync(join(plainDir, 'backup_manifest'))]);
  const out = createWriteStream(file);
  const tar = new TarWriter(out);
  for (const [n, data] of members) {
    if (data === undefined) await tar.addEntry({ name: n, type: 'directory' });
    else await tar.addEntry({ name: n, size: data.length }, data);
  }
  await tar.finish({ end: true });
  await new Promise<void>((r) => out.on('close', () => r()));
  return readFileSync(file);
}

describe('verifyBackup on a single-tar backup (-D - -Ft)', () => {
  it('finds the manifest inside, checks every member and the WAL under pg_wal/, compressed or not', async () => {
    const { dir, wal } = await craft('single-src', { format: 'plain' });
    const file = join(root, 'single.tar');
    const bytes = await singleTar(dir, file);
    const expected = {
      ok: true,
      format: 'tar',
      manifestVersion: 2,
      manifestFiles: 6,
      filesChecksummed: 5,
      walRanges: 1,
      walRecords: wal.records.length,
    };
    const plainTar = await verifyBackupAll({ backupDir: file });
    expect(plainTar.findings).toEqual([]);
    expect(plainTar.summary).toMatchObject(expected);
    // Uncompressed, the manifest is reached by its header alone.
    expect(await findManifestInTarFile(file, 1 << 20)).toEqual(readFileSync(join(dir, 'backup_manifest')));
    expect(await findManifestInTarFile(file, 100)).toBeUndefined();
    // Through a custom opener the archive is read as a stream to reach the manifest.
    let opened = 0;
    const streamed = await verifyBackupAll({
      backupDir: file,
      openArchive: (ref) => {
        opened++;
        return (async function* () {
          yield readFileSync(ref.path);
        })();
      },
    });
    expect(streamed.findings).toEqual([]);
    expect(opened).toBeGreaterThanOrEqual(3);
    // Client gzip to stdout: by the name's suffix, and by the first bytes under any other name.
    writeFileSync(join(root, 'single.tar.gz'), gzipSync(bytes));
    writeFileSync(join(root, 'single-gzip.bin'), gzipSync(bytes));
    for (const name of ['single.tar.gz', 'single-gzip.bin']) {
      const r = await verifyBackupAll({ backupDir: join(root, name) });
      expect(r.findings).toEqual([]);
      expect(r.summary).toMatchObject(expected);
    }
  });

  it('a flipped byte is a checksum mismatch naming the member and the file; no manifest member is a VerifyError', async () => {
    const { dir } = await craft('single-bad-src', { format: 'plain' });
    const file = join(root, 'single-bad.tar');
    const bytes = await singleTar(dir, file);
    const at = bytes.indexOf(Buffer.from('base/1/16384\0'));
    expect(at % 512).toBe(0);
    bytes[at + 512 + 100] = bytes[at + 512 + 100]! ^ 0x01;
    writeFileSync(file, bytes);
    const { findings, summary } = await verifyBackupAll({ backupDir: file, noWal: true });
    expect(summary.ok).toBe(false);
    expect(findings).toEqual([
      expect.objectContaining({
        kind: 'checksum-mismatch',
        path: 'base/1/16384',
        archive: 'single-bad.tar',
        message: 'checksum mismatch for file "base/1/16384" in archive "single-bad.tar"',
      }),
    ]);
    // The same damage under gzip.
    writeFileSync(join(root, 'single-bad.tar.gz'), gzipSync(bytes));
    expect((await verifyBackupAll({ backupDir: join(root, 'single-bad.tar.gz'), noWal: true })).findings.map((f) => f.kind)).toEqual([
      'checksum-mismatch',
    ]);
    // A damaged manifest member is reported as such, with its archive.
    const m = bytes.indexOf(Buffer.from('"Path": "PG_VERSION"'));
    const damaged = Buffer.from(bytes);
    damaged[m + 1] = 'Q'.charCodeAt(0);
    writeFileSync(file, damaged);
    const bad = await verifyBackupAll({ backupDir: file });
    expect(bad.findings).toEqual([expect.objectContaining({ path: 'backup_manifest', archive: 'single-bad.tar' })]);
    expect(['manifest-invalid', 'manifest-checksum-mismatch']).toContain(bad.findings[0]!.kind);
    // Cut before the manifest: nothing to verify against.
    writeFileSync(file, bytes.subarray(0, at));
    const err = await verifyBackupAll({ backupDir: file }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_VERIFY', message: expect.stringMatching(/has no "backup_manifest" member/) });
    // A plain-format claim on a file is refused.
    await expect(verifyBackupAll({ backupDir: file, format: 'plain' })).rejects.toThrow(/is not a directory/);
  });
});

describe('path rules', () => {
  it('canonicalizes member names and applies the ignore list by whole components', () => {
    expect(canonicalRelPath('./base//1/./2/../3/')).toBe('base/1/3');
    expect(isIgnored('aa/bb/cc', ['aa/bb'])).toBe(true);
    expect(isIgnored('aa/bbb', ['aa/bb'])).toBe(false);
    expect(isIgnored('pg_wal/archive_status/x.done', ['pg_wal'])).toBe(true);
  });
  it('classifies archive names like pg_verifybackup', () => {
    expect(classifyArchive('base.tar')).toEqual({ kind: 'base', compression: 'none' });
    expect(classifyArchive('base.tar.gz')).toEqual({ kind: 'base', compression: 'gzip' });
    expect(classifyArchive('pg_wal.tar.lz4')).toEqual({ kind: 'wal', compression: 'lz4' });
    expect(classifyArchive('16400.tgz')).toEqual({ kind: 'tablespace', oid: 16400, compression: 'gzip' });
    expect(classifyArchive('0.tar')).toEqual({ kind: 'unexpected' });
    expect(classifyArchive('base.zip')).toEqual({ kind: 'unexpected' });
  });
});
