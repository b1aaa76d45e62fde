// GNU tar as an oracle: it must list and extract what we write, and we must extract what it writes in
// each of its formats.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { TarWriter } from '../../../src/tar/writer.js';
import { splits } from '../helpers/splits.js';
import { collect, TAR_SPLITS } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'pgbb-tar-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const LONG_SPLITTABLE = `${'pg_tblspc_like_directory/'.repeat(5)}${'n'.repeat(80)}`; // 205 bytes, splits
const LONG_UNSPLITTABLE = `${'x'.repeat(120)}/${'y'.repeat(130)}`; // rest after any slash > 100 bytes
const LONG_TARGET = `/${'t'.repeat(150)}/target`;

async function writeArchive(build: (w: TarWriter) => Promise<void>): Promise<Buffer> {
  const out = new PassThrough({ highWaterMark: 1024 });
  const parts: Buffer[] = [];
  const collected = (async () => {
    for await (const c of out) parts.push(c as Buffer);
  })();
  const w = new TarWriter(out);
  await build(w);
  await w.finish({ end: true });
  await collected;
  return Buffer.concat(parts);
}

describe('GNU tar reads what we write', () => {
  it('lists and extracts files, dirs, symlinks, empty files and long names', async () => {
    const mtime = 1_700_000_000;
    const archive = await writeArchive(async (w) => {
      await w.addEntry({ name: 'base/', type: 'directory', mode: 0o700, mtime });
      await w.addEntry({ name: 'base/file', mode: 0o600, mtime }, 'hello\n');
      await w.addEntry({ name: 'standby.signal', mode: 0o600, mtime }, '');
      await w.addEntry({ name: 'pg_tblspc/16384', type: 'symlink', linkname: '/srv/ts', mtime });
      await w.addEntry({ name: 'pg_tblspc/16385', type: 'symlink', linkname: LONG_TARGET, mtime });
      await w.addEntry({ name: LONG_SPLITTABLE, mtime }, 'split');
      await w.addEntry({ name: LONG_UNSPLITTABLE, mtime }, 'pax');
      async function* streamed(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, i);
      }
      await w.addEntry({ name: 'streamed', size: 10_000, mtime }, streamed());
    });
    expect(archive.length % 512).toBe(0);
    const file = join(tmp, 'ours.tar');
    writeFileSync(file, archive);
    const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(names).toEqual([
      'base/',
      'base/file',
      'standby.signal',
      'pg_tblspc/16384',
      'pg_tblspc/16385',
      LONG_SPLITTABLE,
      LONG_UNSPLITTABLE,
      'streamed',
    ]);
    expect(listing).toMatch(/^drwx------ .* base\/$/m);
    expect(listing).toMatch(/^-rw------- .* 6 2023-11-14 22:13 base\/file$/m);
    expect(listing).toContain(`pg_tblspc/16385 -> ${LONG_TARGET}`);
    const dest = join(tmp, 'x-ours');
    mkdirSync(dest);
    execFileSync('tar', ['-xf', file, '-C', dest]);
    expect(readFileSync(join(dest, 'base/file'), 'utf8')).toBe('hello\n');
    expect(readFileSync(join(dest, 'standby.signal')).length).toBe(0);
    expect(readlinkSync(join(dest, 'pg_tblspc/16384'))).toBe('/srv/ts');
    expect(readFileSync(join(dest, LONG_SPLITTABLE), 'utf8')).toBe('split');
    expect(readFileSync(join(dest, LONG_UNSPLITTABLE), 'utf8')).toBe('pax');
    expect(readFileSync(join(dest, 'streamed')).length).toBe(10_000);
    // And our own extractor reads it back at every split.
    for (const [, chunks] of splits(archive, TAR_SPLITS)) {
      const { entries, tar } = await collect(chunks);
      expect(entries.map((e) => e.header.name)).toEqual(names);
      expect(entries[4]?.header.linkname).toBe(LONG_TARGET);
      expect(tar.terminated).toBe(true);
    }
  });

  it('rejects a streamed body of the wrong length', async () => {
    const err = await writeArchive(async (w) => {
      await w.addEntry(
        { name: 'short', size: 10 },
        (async function* () {
          yield Buffer.alloc(5);
        })(),
      );
    }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_PGBB_TAR');
  });
});

describe('we read what GNU tar writes', () => {
  const src = join(tmp, 'src');
  mkdirSync(join(src, 'dir/sub'), { recursive: true });
  writeFileSync(join(src, 'dir/file.txt'), 'content\n');
  writeFileSync(join(src, 'dir/empty'), '');
  writeFileSync(join(src, 'dir/sub/big.bin'), Buffer.alloc(70_000, 3));
  symlinkSync('/somewhere/else', join(src, 'dir/link'));
  mkdirSync(join(src, 'dir', 'l'.repeat(90), 'm'.repeat(90)), { recursive: true });
  writeFileSync(join(src, 'dir', 'l'.repeat(90), 'm'.repeat(90), 'deep.txt'), 'deep');
  writeFileSync(join(src, 'dir', `${'z'.repeat(140)}.txt`), 'longbase'); // base name alone > 100 bytes
  symlinkSync(`/${'q'.repeat(120)}`, join(src, 'dir/longlink'));

  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    it(`extracts --format=${format}`, async () => {
      const file = join(tmp, `gnu-${format}.tar`);
      // ustar cannot store a base name over 100 bytes or a link target over 100 bytes: leave those out.
      const exclude = format === 'ustar' ? ['--exclude', `${'z'.repeat(140)}.txt`, '--exclude', 'longlink'] : [];
      execFileSync('tar', [`--format=${format}`, ...exclude, '-cf', file, '-C', src, 'dir']);
      const archive = readFileSync(file);
      for (const [, chunks] of splits(archive, TAR_SPLITS)) {
        const { entries, tar } = await collect(chunks);
        expect(tar.terminated).toBe(true);
        const byName = new Map(entries.map((e) => [e.header.name, e]));
        expect(byName.get('dir/')?.header.type).toBe('directory');
        expect(byName.get('dir/file.txt')?.data.toString()).toBe('content\n');
        expect(byName.get('dir/empty')?.data.length).toBe(0);
        expect(byName.get('dir/empty')?.header.type).toBe('file');
        expect(byName.get('dir/sub/big.bin')?.data).toEqual(Buffer.alloc(70_000, 3));
        expect(byName.get('dir/link')?.header).toMatchObject({ type: 'symlink', linkname: '/somewhere/else' });
        expect(byName.get(`dir/${'l'.repeat(90)}/${'m'.repeat(90)}/deep.txt`)?.data.toString()).toBe('deep');
        if (format !== 'ustar') {
          expect(byName.get(`dir/${'z'.repeat(140)}.txt`)?.data.toString()).toBe('longbase');
          expect(byName.get('dir/longlink')?.header.linkname).toBe(`/${'q'.repeat(120)}`);
        }
        // No metadata records leak out as entries.
        expect(entries.every((e) => ['file', 'directory', 'symlink'].includes(e.header.type))).toBe(true);
      }
    });
  }
});
