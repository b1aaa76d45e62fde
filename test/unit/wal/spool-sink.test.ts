// The WAL spool of a backup session: pg_wal.tar in a private temporary directory (0600),
// read back once the stream ended, removed afterwards; a spool that cannot be created says
// which directory to choose.
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoError, StateError } from '../../../src/errors.js';
import { extractTar, readBody } from '../../../src/tar/extract.js';
import { SpoolWalSink } from '../../../src/wal/spool-sink.js';

const SEG = 1024 * 1024;

describe('SpoolWalSink', () => {
  it('spools pg_wal.tar privately, reads it back whole, and removes it', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'pgbb-spool-test-'));
    const spool = new SpoolWalSink({ tempDir: parent });
    await spool.prepare({ groupReadable: true, segmentSize: SEG });
    const file = spool.path!;
    expect(dirname(dirname(file))).toBe(parent);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await spool.openSegment({ name: '000000010000000000000002', segmentSize: SEG, startOffset: 0 });
    await spool.write(Buffer.alloc(SEG, 9));
    await spool.flush();
    await spool.closeSegment('complete');
    await spool.finish();
    const size = await spool.endWriting();
    expect(size).toBe(512 + SEG + 512 + 1024);
    const names: string[] = [];
    let body: Buffer = Buffer.alloc(0);
    for await (const entry of extractTar(spool.read())) {
      names.push(entry.header.name);
      const b = await readBody(entry.body, SEG);
      if (entry.header.name === '000000010000000000000002') body = b;
    }
    expect(names).toEqual(['000000010000000000000002', 'archive_status/000000010000000000000002.done']);
    expect(body.equals(Buffer.alloc(SEG, 9))).toBe(true);
    await spool.remove();
    expect(existsSync(dirname(file))).toBe(false);
    await spool.remove(); // idempotent
  });

  it('a spool directory that cannot be made is an IoError that names it and says to set tempDir', async () => {
    const spool = new SpoolWalSink({ tempDir: '/nonexistent/pgbb-spool' });
    const err = await spool.prepare().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).message).toMatch(/could not create the WAL spool "\/nonexistent\/pgbb-spool".*set tempDir/);
    expect((err as IoError).syscallCode).toBe('ENOENT');
    await spool.remove();
  });

  it('refuses WAL before prepare()', async () => {
    const spool = new SpoolWalSink();
    await expect(spool.openSegment({ name: '000000010000000000000002', segmentSize: SEG, startOffset: 0 })).rejects.toBeInstanceOf(
      StateError,
    );
  });
});
