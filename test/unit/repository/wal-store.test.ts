// RepositoryWalStore on a local-directory repository, driven as the WAL streamer drives a sink: a complete
// segment is stored compressed and leaves the spool; an incomplete one stays in the spool and does not
// count as durable; history files go under wal/; the cluster is claimed and another refused; the start
// files merge the repository and the spool.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findArchiveStart } from '../../../src/archive/start.js';
import { decompressArchive } from '../../../src/compress/archive.js';
import { AbortError, RepositoryMismatchError, StateError } from '../../../src/errors.js';
import { formatLsn } from '../../../src/lsn.js';
import { openRepository, Repository } from '../../../src/repository/repository.js';
import type { Storage, StoragePutOptions } from '../../../src/storage/types.js';
import { RepositoryWalStore } from '../../../src/repository/wal-store.js';

const SEG = 1024 * 1024;
const SERVER = { systemIdentifier: '7443990000000000001', majorVersion: 17, segmentSize: SEG };
const bytesOf = (seed: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

let dir: string;
let repo: Repository;
let store: RepositoryWalStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgbb-wal-store-'));
  repo = await openRepository(join(dir, 'repo'));
  store = new RepositoryWalStore(repo, { spoolDirectory: join(dir, 'spool'), compression: 'gzip' });
  await store.prepare();
  await store.checkServer(SERVER);
});

afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

async function stored(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of decompressArchive(await repo.storage.get(key), key)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe('RepositoryWalStore', () => {
  it('claims the repository with the segment size, and refuses another cluster', async () => {
    expect((await repo.info())?.cluster).toEqual({ systemIdentifier: SERVER.systemIdentifier, majorVersion: 17, walSegmentSize: SEG });
    await expect(store.checkServer({ ...SERVER, systemIdentifier: '1' })).rejects.toBeInstanceOf(RepositoryMismatchError);
    expect((await stat(join(dir, 'spool'))).mode & 0o777).toBe(0o700);
  });

  it('stores a complete segment compressed, keeps an incomplete one in the spool, stores history files', async () => {
    const sink = store.openSink();
    const seg3 = bytesOf(3, SEG);
    await sink.openSegment({ name: '000000010000000000000003', segmentSize: SEG, startOffset: 0 });
    await sink.write(seg3.subarray(0, 1000));
    expect(await sink.flush()).toBe(false);
    await sink.write(seg3.subarray(1000));
    expect(await sink.closeSegment('complete')).toBeUndefined();
    expect((await stored('wal/000000010000000000000003.gz')).equals(seg3)).toBe(true);
    expect(await readdir(join(dir, 'spool'))).toEqual([]);

    await sink.openSegment({ name: '000000010000000000000004', segmentSize: SEG, startOffset: 0 });
    await sink.write(bytesOf(4, 5000));
    expect(await sink.closeSegment('partial')).toBe(false);
    expect(await readdir(join(dir, 'spool'))).toEqual(['000000010000000000000004.partial']);
    expect((await readFile(join(dir, 'spool', '000000010000000000000004.partial'))).equals(bytesOf(4, 5000))).toBe(true);
    expect((await stat(join(dir, 'spool', '000000010000000000000004.partial'))).mode & 0o777).toBe(0o600);
    expect(await repo.storage.stat('wal/000000010000000000000004.gz')).toBeUndefined();

    await sink.writeHistoryFile('00000002.history', Buffer.from('1\t0/4001000\tno recovery target specified\n'));
    expect((await stored('wal/00000002.history')).toString()).toMatch(/^1\t0\/4001000/);
    await sink.finish();

    // The next run resumes at the spool's .partial, the segment after the newest stored one.
    const files = await store.list();
    expect(files.map((f) => f.name).sort()).toEqual([
      '000000010000000000000003.gz',
      '000000010000000000000004.partial',
      '00000002.history',
    ]);
    const start = await findArchiveStart(files, { segmentSize: SEG, uncompressedBytes: (f) => store.uncompressedBytes(f) });
    expect(start && { lsn: formatLsn(start.startLsn), basedOn: start.basedOn }).toEqual({
      lsn: '0/400000',
      basedOn: '000000010000000000000004.partial',
    });
    expect(await store.uncompressedBytes({ name: '000000010000000000000003.gz', bytes: 0 })).toBe(SEG);
    expect((await store.readSegmentStart({ name: '000000010000000000000003.gz', bytes: 0 }, 40)).equals(seg3.subarray(0, 40))).toBe(true);
    expect((await store.readSegmentStart({ name: '000000010000000000000004.partial', bytes: 0 }, 40)).equals(bytesOf(4, 40))).toBe(true);

    // Completing segment 4 (streamed again from its start) stores it and empties the spool.
    const again = store.openSink();
    await again.openSegment({ name: '000000010000000000000004', segmentSize: SEG, startOffset: 0 });
    await again.write(bytesOf(4, SEG));
    await again.closeSegment('complete');
    expect(await readdir(join(dir, 'spool'))).toEqual([]);
    const archive = await repo.walArchive();
    expect(archive?.timelines).toEqual([
      {
        timeline: 1,
        firstSegment: '000000010000000000000003',
        lastSegment: '000000010000000000000004',
        segments: 2,
        gaps: [],
        history: false,
      },
    ]);
    expect(formatLsn(archive!.newest.endLsn)).toBe('0/500000');
  });

  it('abort() cancels a put in flight (a hung storage server), and nothing is stored', async () => {
    let putStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      putStarted = resolve;
    });
    const real = repo.storage;
    const hanging: Storage = {
      kind: real.kind,
      location: real.location,
      list: (o) => real.list(o),
      stat: (k, o) => real.stat(k, o),
      get: (k, o) => real.get(k, o),
      put: (_key, _body, options: StoragePutOptions = {}) => {
        putStarted();
        return new Promise((_, reject) => {
          options.signal?.addEventListener('abort', () => reject(new AbortError('the put was aborted')), { once: true });
        });
      },
      delete: (k, o) => real.delete(k, o),
      deleteMany: (k, o) => real.deleteMany(k, o),
      removeIncomplete: (p, o) => real.removeIncomplete(p, o),
      close: async () => undefined,
      [Symbol.asyncDispose]: async () => undefined,
    };
    const stalled = new RepositoryWalStore(new Repository(hanging), { spoolDirectory: join(dir, 'spool') });
    await stalled.checkServer(SERVER);
    const sink = stalled.openSink();
    await sink.openSegment({ name: '000000010000000000000003', segmentSize: SEG, startOffset: 0 });
    await sink.write(bytesOf(3, SEG));
    const closing = sink.closeSegment('complete');
    await started;
    await sink.abort(new Error('the stream failed'));
    await expect(closing).rejects.toBeInstanceOf(AbortError);
    expect(await repo.storage.stat('wal/000000010000000000000003')).toBeUndefined();
    expect(await readdir(join(dir, 'spool'))).toEqual(['000000010000000000000003.partial']);
  });

  it('refuses what the repository cannot hold: a padded segment, an incomplete one closed as complete, a resumed offset', async () => {
    const sink = store.openSink();
    await expect(sink.openSegment({ name: '000000010000000000000003', segmentSize: SEG, startOffset: 10 })).rejects.toBeInstanceOf(
      StateError,
    );
    await sink.openSegment({ name: '000000010000000000000003', segmentSize: SEG, startOffset: 0 });
    await sink.write(bytesOf(1, 100));
    await expect(sink.closeSegment('padded')).rejects.toBeInstanceOf(StateError);
    await sink.openSegment({ name: '000000010000000000000003', segmentSize: SEG, startOffset: 0 });
    await expect(sink.closeSegment('complete')).rejects.toThrow(/not complete/);
    await expect(sink.writeHistoryFile('../x.history', Buffer.from('x'))).rejects.toBeInstanceOf(StateError);
    expect(await repo.storage.stat('wal/000000010000000000000003.gz')).toBeUndefined();
    await sink.abort();
  });
});
