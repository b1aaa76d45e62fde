// DirectorySink's two file writers: small files (up to SMALL_FILE_BYTES) received whole and written with
// synchronous calls, larger ones through the batched asynchronous writer. Same bytes, same modes, same
// tar semantics (a duplicate entry wins, a missing parent directory is created) on both sides of the limit.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectorySink, SMALL_FILE_BYTES } from '../../../src/sinks/directory.js';
import { END, member, prng } from '../tar/fixtures.js';
import { feed, tempDir } from './fixtures.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Buffer {
  const r = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const BASE = { name: 'base.tar', tablespacePath: '', terminated: true };

describe('DirectorySink file writers', () => {
  const sizes = [0, 1, 8192, SMALL_FILE_BYTES - 1, SMALL_FILE_BYTES, SMALL_FILE_BYTES + 1, 3 * SMALL_FILE_BYTES + 7];
  for (const chunk of [321, 65536]) {
    it(`writes files on both sides of the limit byte for byte (fed in ${chunk}-byte chunks)`, async () => {
      const root = tempDir();
      roots.push(root);
      const target = join(root, 'data');
      const files = sizes.map((n, i) => ({ name: `base/1/${16384 + i}`, body: bytes(n, i + 1) }));
      const tar = Buffer.concat([
        member({ name: 'PG_VERSION', mode: 0o600 }, '16\n'),
        // No directory entries for base/1: the writers create missing parents.
        ...files.map((f) => member({ name: f.name, mode: 0o600 }, f.body)),
        // Duplicates, each on one side of the limit: the last one wins.
        member({ name: files[1]!.name, mode: 0o600 }, bytes(SMALL_FILE_BYTES + 5, 99)),
        member({ name: files[5]!.name, mode: 0o600 }, bytes(10, 98)),
        END,
      ]);
      const sink = new DirectorySink({ directory: target, noSync: true, groupReadable: true });
      await sink.verifyTarget();
      await sink.writeArchive(BASE, feed(tar, chunk));
      await sink.finish();
      files.forEach((f, i) => {
        const expected = i === 1 ? bytes(SMALL_FILE_BYTES + 5, 99) : i === 5 ? bytes(10, 98) : f.body;
        expect(readFileSync(join(target, f.name)).equals(expected)).toBe(true);
        expect(statSync(join(target, f.name)).mode & 0o777).toBe(0o640);
      });
      expect(statSync(join(target, 'base/1')).mode & 0o777).toBe(0o750);
    });
  }
});
