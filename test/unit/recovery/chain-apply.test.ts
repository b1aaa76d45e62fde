// An incremental chain of synthetic tar backups restored in place (restoreSource with a chain,
// chain-apply.ts) against combineBackups of the same backups as plain directories: a partial last block
// in the full copy, a listed block past the end, an intermediate truncation shorter than the newest one,
// files and a database directory dropped in the middle, a file sent whole again, a damaged header that a
// later full copy makes harmless; and the chains combine refuses, refused alike with nothing left behind.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { combineBackups } from '../../../src/combine/combine.js';
import { encodeIncrementalFile } from '../../../src/combine/incremental-file.js';
import { inspectStoredBackup, type BackupSource } from '../../../src/recovery/backup-source.js';
import { restoreSource } from '../../../src/recovery/restore.js';
import { directoryDigests, treeDifferences } from '../../harness/tree.js';
import { label, writeBackup } from '../combine/fixtures.js';

const B = 8192;
const blk = (tag: string) => Buffer.alloc(B, tag);
const cat = (...b: Buffer[]) => Buffer.concat(b);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const STARTS = ['0/4000028', '0/6000028', '0/8000028'];

type Files = Record<string, Buffer | string>;

/** Each backup as a plain directory (for combine) and as base.tar + backup_manifest (for the restore). */
async function chainOf(members: readonly Files[]): Promise<{ root: string; plain: string[]; sources: BackupSource[] }> {
  const root = await mkdtemp(join(tmpdir(), 'pgbb-chain-apply-'));
  const plain: string[] = [];
  const sources: BackupSource[] = [];
  for (const [i, files] of members.entries()) {
    const dir = join(root, `plain${i}`);
    await writeBackup(dir, { backup_label: label(STARTS[i]!, i === 0 ? undefined : STARTS[i - 1]), ...files }, { start: STARTS[i]! });
    plain.push(dir);
    const tarDir = join(root, `tar${i}`);
    await mkdir(tarDir);
    execFileSync('tar', ['-cf', join(tarDir, 'base.tar'), '--exclude=./backup_manifest', '-C', dir, '.']);
    await copyFile(join(dir, 'backup_manifest'), join(tarDir, 'backup_manifest'));
    const base = join(tarDir, 'base.tar');
    sources.push(
      await inspectStoredBackup(
        tarDir,
        [{ name: 'base.tar', size: statSync(base).size, location: base, open: async () => createReadStream(base) }],
        readFileSync(join(tarDir, 'backup_manifest')),
        { allowIncremental: true },
      ),
    );
  }
  return { root, plain, sources };
}

async function restoreChain(chain: { root: string; sources: BackupSource[] }, verification: 'stream' | 'none') {
  const dataDir = join(chain.root, `restored-${verification}`);
  const result = await restoreSource(chain.sources.at(-1)!, {
    dataDir,
    wal: undefined,
    verification,
    chain: chain.sources.slice(0, -1),
    noSync: true,
  });
  return { dataDir, result };
}

/** The restore equals combine, but for what each writes of its own. */
async function expectSameAsCombine(members: readonly Files[]): Promise<Map<string, string>> {
  const chain = await chainOf(members);
  const combined = join(chain.root, 'combined');
  await combineBackups({ backups: chain.plain, output: combined, noSync: true });
  const theirs = directoryDigests(combined, new Set(['backup_manifest']));
  for (const verification of ['stream', 'none'] as const) {
    const { dataDir, result } = await restoreChain(chain, verification);
    // The restore writes its recovery settings and makes pg_wal/archive_status (pg_wal too, when the backup has none).
    const mine = directoryDigests(
      dataDir,
      new Set(['postgresql.auto.conf', 'pg_wal/archive_status', ...(theirs.has('pg_wal') ? [] : ['pg_wal'])]),
    );
    expect(treeDifferences(mine, theirs)).toEqual([]);
    // Counted once each, at their final sizes (and postgresql.auto.conf), whatever the backups rewrote.
    const files = [...mine.values()].filter((v) => v !== 'dir').length;
    expect(result.files).toBe(files + 1);
  }
  return theirs;
}

describe('an incremental chain restored in place equals combineBackups', () => {
  it('partial blocks, blocks past the end, intermediate truncation, drops and files sent whole again', async () => {
    const out = await expectSameAsCombine([
      {
        'base/5/1': cat(blk('a'), blk('b'), Buffer.alloc(100, 'c')), // a partial last block: never used
        'base/5/2': cat(blk('d'), blk('e'), blk('f'), blk('g')),
        'base/5/3': cat(blk('h'), blk('i')),
        'base/5/4': cat(blk('j'), blk('k')),
        'base/6/1': blk('l'),
        'global/1262': blk('m'),
        'postgresql.conf': 'a = 1\n',
        'pg_wal/000000010000000000000004': Buffer.alloc(512, 4),
      },
      {
        'base/5/INCREMENTAL.1': encodeIncrementalFile([4], 1, [blk('A')]), // past the end; its truncation is ignored
        'base/5/INCREMENTAL.2': encodeIncrementalFile([0], 2, [blk('D')]), // shorter than the newest's truncation
        // base/5/3 and base/6 dropped here
        'base/5/INCREMENTAL.4': encodeIncrementalFile([], 2, []),
        'base/5/5': blk('n'),
        'global/INCREMENTAL.1262': encodeIncrementalFile([], 1, []),
        'postgresql.conf': 'a = 2\n',
        'pg_wal/000000010000000000000006': Buffer.alloc(512, 6),
      },
      {
        'base/5/INCREMENTAL.1': encodeIncrementalFile([], 3, []),
        'base/5/INCREMENTAL.2': encodeIncrementalFile([], 4, []),
        'base/5/3': blk('H'), // made again, whole
        'base/5/4': blk('J'), // whole in the newest backup
        'base/5/INCREMENTAL.5': encodeIncrementalFile([2], 1, [blk('N')]),
        'global/INCREMENTAL.1262': encodeIncrementalFile([], 1, []),
        'postgresql.conf': 'a = 3\n',
        'pg_wal/000000010000000000000008': Buffer.alloc(512, 8),
      },
    ]);
    // The cases are what they claim: combine's bytes, as the plan reads the chain.
    expect(out.get('base/5/1')).toBe(sha256(cat(blk('a'), blk('b'), Buffer.alloc(B))));
    expect(out.get('base/5/2')).toBe(sha256(cat(blk('D'), blk('e'), blk('f'), blk('g'))));
    expect(out.get('base/5/5')).toBe(sha256(cat(blk('n'), Buffer.alloc(B), blk('N'))));
    expect(out.has('base/6')).toBe(false);
    expect([...out.keys()].filter((k) => k.startsWith('pg_wal/'))).toEqual(['pg_wal/000000010000000000000008']);
  });

  it('a damaged header in a backup whose file a later one sends whole is harmless, as in combine', async () => {
    const bad = encodeIncrementalFile([0], 1, [blk('X')]);
    bad.writeUInt32LE(0xdeadbeef, 0);
    await expectSameAsCombine([{ 'base/5/1': blk('a') }, { 'base/5/INCREMENTAL.1': bad }, { 'base/5/1': blk('b') }]);
  });

  it.each([
    ['a file missing from the middle backup and sent incrementally by the newest', { 'base/5/2': blk('z') }],
    ['a damaged header the newest backup builds on', { 'base/5/INCREMENTAL.1': Buffer.from('not an incremental file, long enough') }],
    [
      'an incremental body that ends before a block the result needs',
      { 'base/5/INCREMENTAL.1': encodeIncrementalFile([1], 2, [blk('Y')]).subarray(0, B + 100) },
    ],
  ])('refused like combine: %s; nothing is left', async (_, middle: Files) => {
    const chain = await chainOf([
      { 'base/5/1': cat(blk('a'), blk('b')) },
      middle,
      { 'base/5/INCREMENTAL.1': encodeIncrementalFile([], 2, []) },
    ]);
    await expect(combineBackups({ backups: chain.plain, output: join(chain.root, 'combined'), noSync: true })).rejects.toMatchObject({
      code: 'ERR_PGBB_COMBINE',
    });
    // Without the manifest check, which would stop the damaged ones first.
    await expect(restoreChain(chain, 'none')).rejects.toMatchObject({ code: 'ERR_PGBB_COMBINE' });
    expect(existsSync(join(chain.root, 'restored-none'))).toBe(false);
  });
});
