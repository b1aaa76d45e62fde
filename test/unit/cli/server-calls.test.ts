// Which backups the CLI runs its forced garbage collections for: only client zstd through the package,
// whose results are native buffers; every other path hands its buffers back (src/cli/gc.ts says why).
import { describe, expect, it } from 'vitest';
import { leavesNativeGarbage } from '../../../src/cli/server-calls.js';
import { compressionSupport } from '../../../src/entries/compress.js';
import type { RunBackupOptions } from '../../../src/entries/backup.js';

const tar = (compression?: string): RunBackupOptions =>
  ({ connection: {}, output: { format: 'tar', directory: '/nonexistent' }, ...(compression ? { compression } : {}) }) as RunBackupOptions;
const plain = (compression?: string): RunBackupOptions =>
  ({ connection: {}, output: { format: 'plain', directory: '/nonexistent' }, ...(compression ? { compression } : {}) }) as RunBackupOptions;

describe('leavesNativeGarbage', () => {
  it('is true for client zstd exactly where the zstd package compresses it', () => {
    const viaPackage = compressionSupport().zstd.compress === '@mongodb-js/zstd';
    expect(leavesNativeGarbage(tar('client-zstd'))).toBe(viaPackage);
    expect(leavesNativeGarbage(tar('zstd:5'))).toBe(viaPackage);
  });

  it('is false for every path that hands its buffers back', () => {
    for (const c of [undefined, 'none', 'gzip', 'client-gzip:1', 'client-lz4', 'server-zstd', 'server-gzip']) {
      expect(leavesNativeGarbage(tar(c)), String(c)).toBe(false);
    }
    // Plain format decompresses server archives on the way in and never compresses on the client.
    expect(leavesNativeGarbage(plain('server-zstd'))).toBe(false);
  });

  it('leaves an invalid spec to runBackup', () => {
    expect(leavesNativeGarbage(tar('client-zstd:level=99'))).toBe(false);
  });
});
