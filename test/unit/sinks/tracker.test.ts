import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutputTracker } from '../../../src/sinks/tracker.js';

describe('OutputTracker early sync', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgbb-tracker-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('syncs completed and unfinished files alike by the end', async () => {
    const tracker = new OutputTracker({ syncEarly: true });
    const done = join(dir, 'done');
    const open = join(dir, 'open');
    tracker.file(done);
    await writeFile(done, 'a');
    tracker.complete(done);
    tracker.file(open);
    await writeFile(open, 'b');
    await expect(tracker.syncAll()).resolves.toBeUndefined();
  });

  it('reports the error of a background fsync at the end', async () => {
    const tracker = new OutputTracker({ syncEarly: true });
    const missing = join(dir, 'missing');
    tracker.file(missing);
    tracker.complete(missing);
    await expect(tracker.syncAll()).rejects.toMatchObject({ code: 'ERR_PGBB_IO', syscallCode: 'ENOENT' });
  });

  it('keeps a file rewritten after it completed on the final list', async () => {
    const tracker = new OutputTracker({ syncEarly: true });
    const path = join(dir, 'f');
    tracker.file(path);
    await writeFile(path, 'a');
    tracker.complete(path);
    // Written again (a duplicate entry): whatever the background fsync did, the end must sync it, and
    // it is gone by then.
    tracker.touched(path);
    await unlink(path);
    await expect(tracker.syncAll()).rejects.toMatchObject({ syscallCode: 'ENOENT' });
  });

  it('without syncEarly, completion changes nothing before the end', async () => {
    const tracker = new OutputTracker();
    const path = join(dir, 'f');
    tracker.file(path);
    tracker.complete(path);
    await writeFile(path, 'a');
    await expect(tracker.syncAll()).resolves.toBeUndefined();
  });

  it('cleanup waits for background fsyncs and removes what was created', async () => {
    const tracker = new OutputTracker({ syncEarly: true });
    const path = join(dir, 'f');
    tracker.file(path);
    await writeFile(path, 'a');
    tracker.complete(path);
    await tracker.cleanup();
    await expect(writeFile(path, 'x', { flag: 'wx' })).resolves.toBeUndefined();
  });
});
