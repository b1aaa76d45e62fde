// The tar-format backup's pg_wal.tar written straight into the output directory: plain and
// gzip-compressed, read back by GNU tar and gunzip; nothing is written before prepare(); flush positions
// held back for a permanent slot over an upload.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { TarFileWalSink } from '../../../src/backup/tar-wal.js';
import { resolveCompression } from '../../../src/compress/spec.js';
import { TarFilesSink } from '../../../src/sinks/tar-files.js';

const root = mkdtempSync(join(tmpdir(), 'pgbb-tar-wal-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SEG = 1 << 20;
const NAME = '000000010000000000000002';

async function writeOneSegment(wal: TarFileWalSink): Promise<void> {
  await wal.prepare({ groupReadable: false, segmentSize: SEG });
  await wal.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
  for (let i = 0; i < 4; i++) await wal.write(Buffer.alloc(SEG / 4, i + 1));
  await wal.flush();
  await wal.closeSegment('complete');
  await wal.finish();
}

function members(tar: Buffer): string[] {
  const file = join(root, `m-${Math.random().toString(36).slice(2)}.tar`);
  writeFileSync(file, tar);
  return execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
}

describe('TarFileWalSink', () => {
  it('writes pg_wal.tar (mode 0600) with the segment and its .done marker', async () => {
    const dir = join(root, 'plain');
    const sink = new TarFilesSink({ directory: dir, noSync: true });
    await writeOneSegment(new TarFileWalSink({ sink, compression: undefined, durableFlush: false }));
    await sink.finish();
    expect(readdirSync(dir)).toEqual(['pg_wal.tar']);
    expect(statSync(join(dir, 'pg_wal.tar')).mode & 0o777).toBe(0o600);
    expect(members(readFileSync(join(dir, 'pg_wal.tar')))).toEqual([NAME, `archive_status/${NAME}.done`]);
  });

  it('with client gzip: pg_wal.tar.gz, complete once finish() resolves, also with durable flushes', async () => {
    for (const durableFlush of [false, true]) {
      const dir = join(root, `gz-${durableFlush}`);
      const sink = new TarFilesSink({ directory: dir });
      await writeOneSegment(new TarFileWalSink({ sink, compression: resolveCompression('gzip:1'), durableFlush }));
      expect(readdirSync(dir)).toEqual(['pg_wal.tar.gz']);
      const tar = gunzipSync(readFileSync(join(dir, 'pg_wal.tar.gz')));
      expect(members(tar)).toEqual([NAME, `archive_status/${NAME}.done`]);
      // header + one segment + .done header + end-of-archive marker
      expect(tar.length).toBeGreaterThanOrEqual(512 + SEG + 512 + 1024);
      await sink.finish();
    }
  });

  it('holdFlush: flush() and closeSegment() report nothing durable, and the archive is still whole', async () => {
    for (const holdFlush of [false, true]) {
      const dir = join(root, `hold-${holdFlush}`);
      const sink = new TarFilesSink({ directory: dir, noSync: true });
      const wal = new TarFileWalSink({ sink, compression: undefined, durableFlush: false, holdFlush });
      await wal.prepare({ groupReadable: false, segmentSize: SEG });
      await wal.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 });
      await wal.write(Buffer.alloc(SEG, 7));
      const expected = holdFlush ? false : undefined;
      expect(await wal.flush()).toBe(expected);
      expect(await wal.closeSegment('complete')).toBe(expected);
      await wal.finish();
      await sink.finish();
      expect(members(readFileSync(join(dir, 'pg_wal.tar')))).toEqual([NAME, `archive_status/${NAME}.done`]);
    }
  });

  it("abort() during prepare() waits for the file, so the sink's cleanup removes everything", async () => {
    for (let i = 0; i < 20; i++) {
      const dir = join(root, `race-${i}`);
      const sink = new TarFilesSink({ directory: dir });
      const wal = new TarFileWalSink({ sink, compression: undefined, durableFlush: false });
      // The session stops waiting for prepare() when the backup is aborted: runBackup then aborts
      // the WAL sink and cleans up while the open may still be under way.
      const preparing = wal.prepare({ groupReadable: false, segmentSize: SEG }).catch(() => undefined);
      await wal.abort(new Error('aborted'));
      await sink.cleanup();
      await preparing;
      expect(() => statSync(dir)).toThrow();
    }
  });

  it('creates nothing until prepare(), and refuses writes before it', async () => {
    const dir = join(root, 'lazy');
    const sink = new TarFilesSink({ directory: dir });
    const wal = new TarFileWalSink({ sink, compression: undefined, durableFlush: false });
    expect(() => wal.openSegment({ name: NAME, segmentSize: SEG, startOffset: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_PGBB_STATE' }),
    );
    await wal.abort(new Error('never started'));
    expect(() => statSync(dir)).toThrow();
  });
});
