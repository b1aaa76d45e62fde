import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createChecksum } from '../../../src/manifest/checksum.js';
import { setCrc32cNativeLoader } from '../../../src/manifest/crc32c.js';
import { ChecksumThread } from '../../../src/verify/checksum-pool.js';

const dir = mkdtempSync(join(tmpdir(), 'pgbb-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ChecksumThread', () => {
  it('computes the same digests as the main-thread contexts, for every algorithm and odd sizes', async () => {
    const thread = new ChecksumThread();
    try {
      for (const size of [0, 1, 7, 8, 9, 1 << 20, (1 << 20) + 3, 9 * (1 << 20) + 5]) {
        const data = randomBytes(size);
        const path = join(dir, `f${size}`);
        writeFileSync(path, data);
        for (const alg of ['CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512', 'NONE'] as const) {
          let progress = 0;
          const r = await thread.checksum(path, alg, (n) => {
            progress += n;
          });
          expect(r).toEqual({ ok: true, bytes: size, digest: createChecksum(alg).update(data).digest() });
          expect(progress).toBe(size);
        }
      }
      const missing = await thread.checksum(join(dir, 'nope'), 'CRC32C', () => undefined);
      expect(missing).toMatchObject({ ok: false, stage: 'open' });
    } finally {
      await thread.close();
    }
  });

  it('CRC-32C digests agree whether the thread loads @node-rs/crc32 or uses JavaScript', async () => {
    const data = randomBytes(3 * (1 << 20) + 1001);
    const path = join(dir, 'crc-both');
    writeFileSync(path, data);
    const want = createChecksum('CRC32C').update(data).digest();
    for (const loader of [undefined, null] as const) {
      setCrc32cNativeLoader(loader);
      const thread = new ChecksumThread();
      try {
        expect(await thread.checksum(path, 'CRC32C', () => undefined)).toEqual({ ok: true, bytes: data.length, digest: want });
      } finally {
        await thread.close();
        setCrc32cNativeLoader(undefined);
      }
    }
  });

  it('a stopped thread rejects the file in progress', async () => {
    const thread = new ChecksumThread();
    const path = join(dir, 'big');
    writeFileSync(path, Buffer.alloc(64 << 20));
    const p = thread.checksum(path, 'SHA512', () => undefined);
    await thread.close();
    await expect(p).rejects.toThrow();
  });
});
