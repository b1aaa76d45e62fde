// DirectorySink and ArchiveChunks.release(): a plain backup hands the receive buffers back only when the
// extractor holds no unread bytes and every body chunk it handed out is written, so a source that refills
// its buffer on release() still yields exactly the files of the archive, small and large.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectorySink, SMALL_FILE_BYTES } from '../../../src/sinks/directory.js';
import { END, member } from '../tar/fixtures.js';
import { tempDir } from './fixtures.js';
import { reusingSource } from './reusing-source.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
const BASE = { name: 'base.tar', tablespacePath: '', terminated: true };

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed * 17 + (i >> 11)) & 0xff;
  return b;
}

describe('DirectorySink with a releasing source', () => {
  it('writes every file intact, small and large, while releasing the buffers at safe points', async () => {
    const files: [string, Buffer][] = [
      ['PG_VERSION', Buffer.from('16\n')],
      ['base/1/1259', pattern(8192, 1)],
      ['base/1/16384', pattern(SMALL_FILE_BYTES * 3 + 1234, 2)], // the streamed (large file) path
      ['base/1/16385', pattern(513, 3)],
      ['base/1/16386', pattern(SMALL_FILE_BYTES + 512, 4)],
      ['global/pg_control', pattern(8192, 5)],
    ];
    const archive = Buffer.concat([
      member({ name: 'base/', typeflag: '5', mode: 0o700 }),
      member({ name: 'base/1/', typeflag: '5', mode: 0o700 }),
      member({ name: 'global/', typeflag: '5', mode: 0o700 }),
      ...files.map(([name, data]) => member({ name, mode: 0o600 }, data)),
      END,
    ]);
    // 4096-byte chunks: whole body chunks of the large files, and headers straddling chunks elsewhere.
    for (const size of [4096, 700]) {
      const dir = join(tempDir(), 'out');
      roots.push(dir);
      const source = reusingSource(archive, size);
      const sink = new DirectorySink({ directory: dir, noSync: true, writeBatchBytes: 8192 });
      await sink.writeArchive(BASE, source);
      await sink.finish();
      for (const [name, data] of files) expect(readFileSync(join(dir, name)).equals(data), `${name}, chunks of ${size}`).toBe(true);
      expect(source.releases, `chunks of ${size}`).toBeGreaterThan(0);
      expect(source.buffers.size).toBeLessThan(Math.ceil(archive.length / size));
    }
  });
});
