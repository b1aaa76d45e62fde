// runBackup refuses compression it cannot honour before it connects or writes anything (the
// connection below points at a port nothing listens on: reaching it would be a different error).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runBackup, type RunBackupOptions } from '../../../src/backup/run.js';
import type { ConfigError } from '../../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'pgbb-run-comp-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const connection = 'host=127.0.0.1 port=1 user=nobody sslmode=disable connect_timeout=1';

async function refused(o: Omit<RunBackupOptions, 'connection'>): Promise<ConfigError> {
  const err = await runBackup({ connection, ...o }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'ERR_PGBB_CONFIG' });
  return err as ConfigError;
}

describe('runBackup: compression checks before connecting', () => {
  it('client-side compression of plain output (pg_basebackup: only tar mode backups can be compressed)', async () => {
    const directory = join(root, 'plain');
    const err = await refused({ compression: 'gzip', output: { format: 'plain', directory } });
    expect(err.message).toMatch(/only tar output can be compressed on the client/);
    expect(existsSync(directory)).toBe(false);
  });

  it('server-compressed tar to a stream with the manifest or -R to inject', async () => {
    const stream = new PassThrough();
    const err = await refused({ compression: 'server-zstd', wal: 'fetch', output: { format: 'tar-stream', stream } });
    expect(err.message).toMatch(/cannot inject the manifest/);
    await refused({
      compression: 'server-gzip',
      wal: 'none',
      manifest: false,
      writeRecoveryConf: true,
      output: { format: 'tar-stream', stream },
    });
    expect(stream.writableLength).toBe(0);
  });

  it("an invalid specification, with PostgreSQL's reason", async () => {
    const err = await refused({ compression: 'gzip:level=12', output: { format: 'tar', directory: join(root, 'tar') } });
    expect(err.message).toMatch(/gzip.*1 and 9|between 1 and 9|out of range/i);
  });
});
