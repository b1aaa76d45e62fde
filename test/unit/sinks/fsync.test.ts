import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fsyncDirectory, fsyncFile } from '../../../src/sinks/fsync.js';

describe('fsync by path', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgbb-fsync-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('syncs a directory and a file', async () => {
    const file = join(dir, 'f');
    await writeFile(file, 'x');
    await expect(fsyncDirectory(dir)).resolves.toBeUndefined();
    await expect(fsyncFile(file)).resolves.toBeUndefined();
  });

  it('passes the system error through for a missing path', async () => {
    await expect(fsyncDirectory(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fsyncFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a regular file as a directory (O_DIRECTORY)', async () => {
    const file = join(dir, 'f');
    await writeFile(file, 'x');
    await expect(fsyncDirectory(file)).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});
