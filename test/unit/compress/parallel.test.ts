import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { CompressionError } from '../../../src/errors.js';
import { requirePackage } from '../../../src/compress/backends.js';
import { createCompressor, ParallelCompressor } from '../../../src/compress/parallel.js';
import { CompressionPool, defaultThreadCount, type ChunkResult } from '../../../src/compress/worker.js';
import { mixedData, referenceDecompress } from './fixtures.js';
import { settle } from '../helpers/deferred.js';
import { chunked } from '../helpers/splits.js';

async function compress(c: NodeJS.ReadWriteStream & Writable, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    c,
    new Writable({
      write(b: Buffer, _e, cb) {
        out.push(b);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

const pool = new CompressionPool(2);
afterAll(() => pool.close());

describe('ParallelCompressor output is read by the command-line tools', () => {
  const data = mixedData(3_000_000);
  const pieces = chunked(data, 100_003);
  for (const [spec, algorithm] of [
    ['gzip:1', 'gzip'],
    ['gzip', 'gzip'],
    ['lz4', 'lz4'],
    ['zstd', 'zstd'],
    ['zstd:level=-3', 'zstd'],
  ] as const) {
    for (const threads of [2, 0]) {
      it(`${spec} on ${threads} thread(s), many 64 KiB chunks`, async () => {
        const c = new ParallelCompressor(spec, { threads, chunkBytes: 64 * 1024, pool });
        const out = await compress(c, pieces);
        expect(referenceDecompress(algorithm, out).equals(data)).toBe(true);
        expect(c.bytesIn).toBe(data.length);
        expect(c.bytesOut).toBe(out.length);
        expect(out.length).toBeLessThan(data.length * 0.8);
      });
    }
  }

  it('makes a valid empty file from empty input, for every method', async () => {
    for (const algorithm of ['gzip', 'lz4', 'zstd'] as const) {
      const out = await compress(new ParallelCompressor(algorithm, { pool }), []);
      expect(out.length).toBeGreaterThan(0);
      expect(referenceDecompress(algorithm, out).length).toBe(0);
    }
  });

  it('uses zstd workers=N as the thread count', () => {
    expect(new ParallelCompressor('zstd:workers=3', { pool }).threads).toBe(3);
    expect(new ParallelCompressor('zstd:workers=0').threads).toBe(0);
    expect(new ParallelCompressor('zstd:workers=3', { threads: 1, pool }).threads).toBe(1);
  });

  it('defaults: gzip on one worker per CPU, lz4 and zstd on none; 256 KiB chunks; two chunks in flight per worker, lz4 one', () => {
    for (const algorithm of ['gzip', 'lz4', 'zstd'] as const) {
      const c = new ParallelCompressor(algorithm);
      expect(c.threads).toBe(algorithm === 'gzip' ? defaultThreadCount() : 0);
      expect(c.chunkBytes).toBe(256 * 1024);
      c.destroy();
    }
    expect(new ParallelCompressor('gzip').maxInFlight).toBe(2 * defaultThreadCount());
    expect(new ParallelCompressor('gzip', { threads: 0 }).maxInFlight).toBe(2 * defaultThreadCount());
    expect(new ParallelCompressor('lz4').maxInFlight).toBe(1);
  });

  it('single-threaded createCompressor gives plain streams the tools read', async () => {
    for (const algorithm of ['gzip', 'lz4', 'zstd'] as const) {
      const out = await compress(createCompressor(algorithm, { threads: 0 }) as Writable & NodeJS.ReadWriteStream, pieces);
      expect(referenceDecompress(algorithm, out).equals(data)).toBe(true);
    }
  });

  it('refuses bad options and "none" with typed errors', () => {
    expect(() => new ParallelCompressor('none')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_COMPRESSION' }));
    expect(() => new ParallelCompressor('server-gzip')).toThrow(/asks the server to compress/);
    expect(() => createCompressor('server-zstd', { threads: 0 })).toThrow(expect.objectContaining({ code: 'ERR_PGBB_COMPRESSION' }));
    expect(() => new ParallelCompressor('gzip', { chunkBytes: 1000 })).toThrow(/chunkBytes must be between/);
    expect(() => new ParallelCompressor('gzip', { threads: -1 })).toThrow(/threads must be an integer/);
    expect(() => new ParallelCompressor('gzip:11')).toThrow(/expects a compression level between 1 and 9/);
  });
});

/** A pool that finishes jobs in the order the test says (gzip done in-process). */
class ScriptedPool {
  jobs: { input: Uint8Array; resolve: (b: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  inFlightMax = 0;
  private active = 0;
  ensureSize(): void {}
  compress(_key: string, _config: unknown, buffer: ArrayBuffer, length: number, output: ArrayBuffer | undefined): Promise<ChunkResult> {
    this.active++;
    this.inFlightMax = Math.max(this.inFlightMax, this.active);
    // A copy, as a worker would see it: the compressor reuses its buffers once the job is done.
    const input = new Uint8Array(buffer, 0, length).slice();
    return new Promise((resolve, reject) =>
      this.jobs.push({
        input,
        resolve: (bytes) => {
          this.active--;
          resolve({ bytes, input: buffer, output });
        },
        reject: (e) => {
          this.active--;
          reject(e);
        },
      }),
    );
  }
}

describe('ordering, backpressure and errors', () => {
  it('emits results in input order whatever order the workers finish in', async () => {
    const scripted = new ScriptedPool();
    const c = new ParallelCompressor('gzip:1', { threads: 4, chunkBytes: 64 * 1024, pool: scripted as unknown as CompressionPool });
    const data = mixedData(4 * 64 * 1024);
    const out: Buffer[] = [];
    c.on('data', (b: Buffer) => out.push(b));
    c.end(data);
    await vi.waitFor(() => expect(scripted.jobs.length).toBe(4), { timeout: 5000, interval: 2 });
    const { gzipSync } = await import('node:zlib');
    // Finish the last job first, then the others backwards: nothing may come out before job 0 does.
    for (const i of [3, 2, 1]) scripted.jobs[i]!.resolve(gzipSync(scripted.jobs[i]!.input));
    await settle(); // what finished jobs could emit has been emitted by now
    expect(out.length).toBe(0);
    scripted.jobs[0]!.resolve(gzipSync(scripted.jobs[0]!.input));
    await new Promise((r) => c.on('end', r));
    expect(out.length).toBe(4);
    expect(gunzipSync(Buffer.concat(out)).equals(data)).toBe(true);
  });

  it('across real workers, many small chunks stay in order', async () => {
    const big = new CompressionPool(4);
    try {
      const data = mixedData(2_000_000, 77);
      const out = await compress(new ParallelCompressor('gzip:9', { threads: 4, chunkBytes: 64 * 1024, pool: big }), [data]);
      expect(gunzipSync(out).equals(data)).toBe(true);
    } finally {
      await big.close();
    }
  });

  it('a slow consumer holds the producer back: memory stays bounded', async () => {
    const chunkBytes = 64 * 1024;
    const maxInFlight = 4;
    let produced = 0;
    const block = mixedData(256 * 1024, 3);
    async function* source() {
      for (let i = 0; i < 256; i++) {
        // 64 MiB if nothing held it back
        produced += block.length;
        yield block;
      }
    }
    const c = new ParallelCompressor('gzip:1', { threads: 2, chunkBytes, maxInFlight, pool });
    const done = pipeline(Readable.from(source()), c);
    const it = c[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    // Stop reading: the producer must stall within a few chunks, held back by the compressor.
    await vi.waitFor(() => expect(c.writableNeedDrain && c.readableLength >= c.readableHighWaterMark).toBe(true), {
      timeout: 10_000,
      interval: 10,
    });
    const stalledAt = produced;
    const bound = (maxInFlight + 2) * chunkBytes + 4 * block.length;
    expect(stalledAt).toBeLessThan(bound);
    // Deliberate observation window: without backpressure the producer would move on in it.
    await new Promise((r) => setTimeout(r, 200));
    expect(produced).toBe(stalledAt);
    const rest: Buffer[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value as Buffer);
    await done;
    expect(produced).toBe(256 * block.length);
  });

  it('never has more than maxInFlight chunks at the pool', async () => {
    const scripted = new ScriptedPool();
    const c = new ParallelCompressor('gzip:1', {
      threads: 2,
      chunkBytes: 64 * 1024,
      maxInFlight: 3,
      pool: scripted as unknown as CompressionPool,
    });
    c.resume();
    const data = mixedData(20 * 64 * 1024);
    const writing = pipeline(Readable.from([data]), c);
    const { gzipSync } = await import('node:zlib');
    for (let served = 0; served < 20; served++) {
      const job = await vi.waitFor(
        () => {
          expect(scripted.jobs[served]).toBeDefined();
          return scripted.jobs[served]!;
        },
        { timeout: 5000, interval: 2 },
      );
      job.resolve(gzipSync(job.input));
    }
    await writing;
    expect(scripted.inFlightMax).toBe(3);
  });

  it('a failing job ends the stream with a CompressionError', async () => {
    const scripted = new ScriptedPool();
    const c = new ParallelCompressor('gzip:1', { threads: 2, chunkBytes: 64 * 1024, pool: scripted as unknown as CompressionPool });
    c.resume();
    const p = pipeline(Readable.from([mixedData(200_000)]), c);
    await vi.waitFor(() => expect(scripted.jobs.length).toBeGreaterThan(0), { timeout: 5000, interval: 2 });
    scripted.jobs[0]!.reject(new Error('boom'));
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
    expect((err as Error).message).toBe('gzip compression failed: boom');
  });

  it('flush() covers a write still being taken in and the writes queued behind it', async () => {
    const c = new ParallelCompressor('gzip:1', { threads: 2, chunkBytes: 64 * 1024, maxInFlight: 1, pool });
    const out: Buffer[] = [];
    c.on('data', (b: Buffer) => out.push(b));
    const data = mixedData(500_000, 11);
    // The first write is far larger than one chunk in flight: it is parked part-way; the second waits
    // in the Writable's buffer. Neither callback has run when flush() is called.
    c.write(data.subarray(0, 300_000));
    c.write(data.subarray(300_000, 420_000));
    expect(c.writableLength).toBeGreaterThan(0);
    await c.flush();
    expect(gunzipSync(Buffer.concat(out)).equals(data.subarray(0, 420_000))).toBe(true);
    c.end(data.subarray(420_000));
    await new Promise((r) => c.on('end', r));
    expect(gunzipSync(Buffer.concat(out)).equals(data)).toBe(true);
  });

  it('flush() pushes out everything written so far', async () => {
    const c = new ParallelCompressor('gzip', { pool });
    const out: Buffer[] = [];
    c.on('data', (b: Buffer) => out.push(b));
    c.write(Buffer.from('first part '));
    await c.flush();
    expect(gunzipSync(Buffer.concat(out)).toString()).toBe('first part ');
    c.write(Buffer.from('and the rest'));
    await c.flush();
    await c.flush();
    expect(gunzipSync(Buffer.concat(out)).toString()).toBe('first part and the rest');
    c.end();
    await new Promise((r) => c.on('end', r));
    expect(gunzipSync(Buffer.concat(out)).toString()).toBe('first part and the rest');
  });
});

describe('CompressionPool errors', () => {
  const base = { level: 1, longDistance: false, zstdBuiltin: false } as const;
  it('a codec that throws in the worker rejects with CompressionError', async () => {
    const err = await pool.run('bad-zstd', { ...base, algorithm: 'zstd', zstdModule: '/nonexistent/zstd.js' }, new Uint8Array(10)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
    expect((err as Error).message).toMatch(/^zstd compression failed in a worker thread: Cannot find module '\/nonexistent\/zstd.js'/);
    expect((err as CompressionError).algorithm).toBe('zstd');
  });

  it('a worker that dies rejects its job, and the pool carries on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgbb-compress-'));
    const module = join(dir, 'exit.cjs');
    writeFileSync(module, 'module.exports = { compress() { process.exit(7); } };\n');
    const err = await pool.run('exit', { ...base, algorithm: 'zstd', zstdModule: module }, new Uint8Array(10)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
    expect((err as Error).message).toBe('a compression worker thread stopped: worker exited with code 7');
    const ok = await pool.run('gzip', { ...base, algorithm: 'gzip' }, Buffer.from('still working'));
    expect(gunzipSync(ok).toString()).toBe('still working');
  });

  it('a closed pool refuses work', async () => {
    const p = new CompressionPool(1);
    await p.close();
    await expect(p.run('gzip', { ...base, algorithm: 'gzip' }, new Uint8Array(1))).rejects.toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
  });

  it('a missing package is a CompressionError that says what to install', () => {
    expect(() => requirePackage('pgbb-no-such-package', 'zstd', 'compression')).toThrow(
      /zstd compression needs the package "pgbb-no-such-package".*npm install pgbb-no-such-package.*Node 22.15/,
    );
  });
});

describe('the worker program survives bundling', () => {
  it('works from a minified bundle with keepNames (as tsup or an application bundler may build it)', async () => {
    const { build } = await import('esbuild');
    const dir = mkdtempSync(join(tmpdir(), 'pgbb-bundle-'));
    const outfile = join(dir, 'parallel.mjs');
    await build({
      entryPoints: [new URL('../../../src/compress/parallel.ts', import.meta.url).pathname],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outfile,
      logLevel: 'error',
      minify: true,
      keepNames: true,
    });
    const mod = (await import(outfile)) as typeof import('../../../src/compress/parallel.js');
    const data = mixedData(300_000);
    for (const threads of [1, 0]) {
      const out = await compress(new mod.ParallelCompressor('gzip', { threads, chunkBytes: 64 * 1024 }), [data]);
      expect(gunzipSync(out).equals(data)).toBe(true);
    }
  });
});

describe('compressionSupport', () => {
  it('reports zlib for gzip, the packages for lz4, and zstd built in or from the packages', async () => {
    const { compressionSupport, hasBuiltinZstd } = await import('../../../src/compress/backends.js');
    const s = compressionSupport();
    expect(s.gzip).toEqual({ compress: 'zlib', decompress: 'zlib' });
    expect(s.lz4).toEqual({ compress: 'builtin', decompress: 'builtin' });
    expect(s.zstd).toEqual(
      hasBuiltinZstd() ? { compress: 'zlib', decompress: 'zlib' } : { compress: '@mongodb-js/zstd', decompress: 'fzstd' },
    );
  });
});
