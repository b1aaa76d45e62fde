// combineBackups over synthetic plain backups (no server): a full backup and two incrementals with
// changed, truncated, extended, new and dropped relation files; chain checks; dry run; cleanup.
import { chmod, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { combineBackups } from '../../../src/combine/combine.js';
import { encodeIncrementalFile } from '../../../src/combine/incremental-file.js';
import { createChecksum } from '../../../src/manifest/checksum.js';
import { parseManifest } from '../../../src/manifest/parse.js';
import { verifyBackupAll } from '../../../src/verify/verify.js';
import { label, writeBackup } from './fixtures.js';

const B = 8192;
const blk = (tag: string) => Buffer.alloc(B, tag);
const cat = (...b: Buffer[]) => Buffer.concat(b);

let root: string;
let full: string;
let inc1: string;
let inc2: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'pgbb-combine-'));
  [full, inc1, inc2] = ['full', 'inc1', 'inc2'].map((n) => join(root, n)) as [string, string, string];
  await writeBackup(
    full,
    {
      backup_label: label('0/4000028'),
      'base/5/16384': cat(blk('a'), blk('b'), blk('c'), blk('d')),
      'base/5/16385': cat(blk('e'), blk('f')),
      'base/5/99999': blk('x'),
      'global/1262': blk('g'),
      'base/5/INCREMENTAL.config': 'not under base/N? it is: but full backups never hold one',
      'postgresql.conf': 'a = 1\n',
      'pg_wal/000000010000000000000004': Buffer.alloc(1024, 1),
    },
    { start: '0/4000028' },
  );
  await writeBackup(
    inc1,
    {
      backup_label: label('0/6000028', '0/4000028'),
      'base/5/INCREMENTAL.16384': encodeIncrementalFile([1], 4, [blk('B')]),
      // truncated to one block
      'base/5/INCREMENTAL.16385': encodeIncrementalFile([], 1, []),
      'base/5/16386': blk('n'),
      'global/INCREMENTAL.1262': encodeIncrementalFile([], 1, []),
      'postgresql.conf': 'a = 2\n',
      'pg_wal/000000010000000000000006': Buffer.alloc(1024, 2),
    },
    { start: '0/6000028' },
  );
  await writeBackup(
    inc2,
    {
      backup_label: label('0/8000028', '0/6000028'),
      // extended: block 4 was never written (zero), block 5 is new
      'base/5/INCREMENTAL.16384': encodeIncrementalFile([3, 5], 4, [blk('D'), blk('F')]),
      'base/5/INCREMENTAL.16385': encodeIncrementalFile([], 1, []),
      'base/5/INCREMENTAL.16386': encodeIncrementalFile([0], 1, [blk('N')]),
      'global/INCREMENTAL.1262': encodeIncrementalFile([], 1, []),
      'postgresql.conf': 'a = 3\n',
      'pg_wal/000000010000000000000008': Buffer.alloc(1024, 3),
    },
    { start: '0/8000028' },
  );
});

describe('combineBackups', () => {
  it('rebuilds the newest state from full + two incrementals, with a manifest that verifies', async () => {
    const out = join(root, 'out');
    // The output follows the newest backup's permission scheme: 0700 here (0750 gives group read).
    await chmod(inc2, 0o700);
    const debug: string[] = [];
    const r = await combineBackups({ backups: [full, inc1, inc2], output: out, onDebug: (m) => debug.push(m) });
    expect(r.filesReconstructed).toBe(4);
    expect(r.startLsn).toBe(0x8000028n);
    expect(await readFile(join(out, 'base/5/16384'))).toEqual(cat(blk('a'), blk('B'), blk('c'), blk('D'), Buffer.alloc(B), blk('F')));
    expect(await readFile(join(out, 'base/5/16385'))).toEqual(blk('e'));
    expect(await readFile(join(out, 'base/5/16386'))).toEqual(blk('N'));
    expect(await readFile(join(out, 'global/1262'))).toEqual(blk('g'));
    expect(await readFile(join(out, 'postgresql.conf'), 'utf8')).toBe('a = 3\n');
    const names = await readdir(join(out, 'base/5'));
    expect(names).not.toContain('99999');
    expect(names.some((n) => n.startsWith('INCREMENTAL.16'))).toBe(false);
    expect(await readdir(join(out, 'pg_wal'))).toEqual(['000000010000000000000008']);
    const lbl = await readFile(join(out, 'backup_label'), 'utf8');
    expect(lbl).toContain('START WAL LOCATION: 0/8000028');
    expect(lbl).not.toContain('INCREMENTAL FROM');
    expect((await stat(join(out, 'base/5/16384'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(out, 'base'))).mode & 0o777).toBe(0o700);
    expect(debug.some((d) => d.startsWith('reconstruction plan:'))).toBe(true);
    // global/1262 is unchanged since the full backup: copied whole, its manifest checksum reused (and verified below).
    expect(debug.some((d) => d.includes('global/1262" (unchanged since that backup)'))).toBe(true);

    const m = parseManifest(await readFile(join(out, 'backup_manifest')));
    expect(m.version).toBe(2);
    expect(m.systemIdentifier).toBe(7000000000000000001n);
    expect(m.files.get('base/5/16384')?.size).toBe(6 * B);
    expect(m.files.has('pg_wal/000000010000000000000008')).toBe(false);
    expect(m.files.get('base/5/16384')?.checksum).toBe(
      createChecksum('CRC32C')
        .update(await readFile(join(out, 'base/5/16384')))
        .hex(),
    );
    const { findings } = await verifyBackupAll({ backupDir: out, noWal: true });
    expect(findings).toEqual([]);
  });

  it('full + first incremental gives the middle state; SHA256 checksums on request', async () => {
    const out = join(root, 'mid');
    await combineBackups({ backups: [full, inc1], output: out, manifestChecksums: 'SHA256', noSync: true });
    expect(await readFile(join(out, 'base/5/16384'))).toEqual(cat(blk('a'), blk('B'), blk('c'), blk('d')));
    expect(await readFile(join(out, 'base/5/16386'))).toEqual(blk('n'));
    const m = parseManifest(await readFile(join(out, 'backup_manifest')));
    expect(m.files.get('global/1262')?.checksumAlgorithm).toBe('SHA256');
    expect((await stat(join(out, 'global/1262'))).mode & 0o777).toBe(0o640);
    expect((await verifyBackupAll({ backupDir: out, noWal: true })).findings).toEqual([]);
  });

  it('refuses a wrong order, a missing middle backup and a foreign backup', async () => {
    await expect(combineBackups({ backups: [inc1, full, inc2], output: join(root, 'o1') })).rejects.toThrow(
      /is an incremental backup, but the first backup should be a full backup|only the first backup should be a full backup/,
    );
    const gap = await combineBackups({ backups: [full, inc2], output: join(root, 'o2') }).catch((e: unknown) => e);
    expect(gap).toMatchObject({ code: 'ERR_PGBB_COMBINE' });
    expect((gap as Error).message).toMatch(/starts at LSN 0\/4000028, but expected 0\/6000028.*without leaving one out/);
    const other = join(root, 'other');
    await writeBackup(other, { backup_label: label('0/4000028') }, { start: '0/4000028', sysid: 42n });
    await expect(combineBackups({ backups: [other, inc1], output: join(root, 'o3') })).rejects.toThrow(/expected system identifier/);
    await expect(combineBackups({ backups: [inc2, inc1], output: join(root, 'o4') })).rejects.toMatchObject({ code: 'ERR_PGBB_COMBINE' });
    for (const o of ['o1', 'o2', 'o3', 'o4']) await expect(stat(join(root, o))).rejects.toThrow();
  });

  it('dry run writes nothing; --no-manifest writes none', async () => {
    const dry = join(root, 'dry');
    const r = await combineBackups({ backups: [full, inc1, inc2], output: dry, dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(r.filesReconstructed).toBe(4);
    await expect(stat(dry)).rejects.toThrow();
    const nm = join(root, 'nm');
    await combineBackups({ backups: [full, inc1, inc2], output: nm, manifest: false });
    await expect(stat(join(nm, 'backup_manifest'))).rejects.toThrow();
    expect(await readFile(join(nm, 'base/5/16386'))).toEqual(blk('N'));
  });

  it('a damaged incremental file fails and leaves nothing behind; a non-empty output is refused', async () => {
    await writeFile(join(inc2, 'base/5/INCREMENTAL.16386'), encodeIncrementalFile([0], 1, [blk('N')]).subarray(0, B + 100));
    const out = join(root, 'broken');
    await expect(combineBackups({ backups: [full, inc1, inc2], output: out })).rejects.toThrow(/too short/);
    await expect(stat(out)).rejects.toThrow();
    const busy = join(root, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, 'x'), 'x');
    await expect(combineBackups({ backups: [full, inc1], output: busy })).rejects.toThrow(/not empty/);
    expect(await readdir(busy)).toEqual(['x']);
  });

  it('an existing empty output directory is used and emptied again on failure', async () => {
    const out = join(root, 'empty');
    await mkdir(out);
    await writeFile(join(inc1, 'base/5/INCREMENTAL.16385'), Buffer.from('garbage!garbage!'));
    await expect(combineBackups({ backups: [full, inc1], output: out })).rejects.toThrow(/bad incremental magic/);
    expect(await readdir(out)).toEqual([]);
  });

  it('a file missing from an older backup is a chain error', async () => {
    await writeFile(join(inc1, 'base/5/INCREMENTAL.77777'), encodeIncrementalFile([], 1, []));
    await expect(combineBackups({ backups: [full, inc1], output: join(root, 'o') })).rejects.toThrow(
      /has neither the file nor INCREMENTAL.77777/,
    );
  });

  it('tablespaces: a link needs a mapping; mapped, it is rebuilt there', async () => {
    const tsFull = join(root, 'ts-full');
    const tsInc = join(root, 'ts-inc');
    await mkdir(join(tsFull, 'PG_17_1/5'), { recursive: true });
    await mkdir(join(tsInc, 'PG_17_1/5'), { recursive: true });
    await writeFile(join(tsFull, 'PG_17_1/5/20000'), cat(blk('p'), blk('q')));
    await writeFile(join(tsInc, 'PG_17_1/5/INCREMENTAL.20000'), encodeIncrementalFile([1], 2, [blk('Q')]));
    await symlink(tsFull, join(full, 'pg_tblspc/16500'));
    await symlink(tsInc, join(inc1, 'pg_tblspc/16500'));
    await expect(combineBackups({ backups: [full, inc1], output: join(root, 'o'), manifest: false })).rejects.toThrow(
      /has no tablespace mapping/,
    );
    const to = join(root, 'ts-out');
    const out = join(root, 'ts-o');
    const r = await combineBackups({ backups: [full, inc1], output: out, manifest: false, tablespaceMapping: new Map([[tsInc, to]]) });
    expect(r.tablespaces).toEqual([{ oid: 16500, source: tsInc, directory: to, inPlace: false }]);
    expect(await readFile(join(out, 'pg_tblspc/16500/PG_17_1/5/20000'))).toEqual(cat(blk('p'), blk('Q')));
  });

  it('an abort stops the run, rejects with AbortError and removes the output', async () => {
    const out = join(root, 'aborted');
    const c = new AbortController();
    const err = await combineBackups({ backups: [full, inc1, inc2], output: out, signal: c.signal, onFile: () => c.abort() }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await expect(stat(out)).rejects.toThrow();
  });

  it('validates options', async () => {
    await expect(combineBackups({ backups: [], output: 'x' })).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG' });
    await expect(combineBackups({ backups: [full], output: full })).rejects.toMatchObject({ code: 'ERR_PGBB_CONFIG' });
    await expect(combineBackups({ backups: [full], output: 'x', manifestChecksums: 'MD5' as never })).rejects.toMatchObject({
      code: 'ERR_PGBB_CONFIG',
    });
  });
});
