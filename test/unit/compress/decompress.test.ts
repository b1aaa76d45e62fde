import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it, vi } from 'vitest';
import { type CompressionError, ServerError } from '../../../src/errors.js';
import { compressArchive, decompressArchive } from '../../../src/compress/archive.js';
import { algorithmOf, decompressorFor } from '../../../src/compress/decompress.js';
import { ParallelCompressor } from '../../../src/compress/parallel.js';
import { chunked, splits } from '../helpers/splits.js';
import { COMPRESS_SPLITS, mixedData, tool } from './fixtures.js';

async function decompress(name: string, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    decompressorFor(name),
    new Writable({
      write(b: Buffer, _e, cb) {
        out.push(b);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

async function collect(source: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of source) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

async function failure(p: Promise<unknown>): Promise<CompressionError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
  return err as CompressionError;
}

const data = mixedData(1_500_000, 11);
const fromTool = {
  gzip: tool('gzip', ['-c'], data),
  lz4: tool('lz4', ['-BD', '-c'], data),
  zstd: tool('zstd', ['-c', '-19', '--long=24'], data),
};
const ext = { gzip: 'gz', lz4: 'lz4', zstd: 'zst' } as const;

describe('decompressorFor', () => {
  it('knows methods and file names', () => {
    expect(algorithmOf('base.tar.gz')).toBe('gzip');
    expect(algorithmOf('zstd')).toBe('zstd');
    expect(algorithmOf('16384.tar')).toBe('none');
  });

  for (const algorithm of ['gzip', 'lz4', 'zstd'] as const) {
    it(`reads one ${algorithm} stream from the tool (as a server writes it), at every split`, async () => {
      for (const [how, chunks] of splits(fromTool[algorithm], COMPRESS_SPLITS)) {
        expect((await decompress(`base.tar.${ext[algorithm]}`, chunks)).equals(data), how).toBe(true);
      }
    });

    it(`reads our parallel ${algorithm} output (many members or frames)`, async () => {
      const out: Buffer[] = [];
      await pipeline(
        Readable.from([data]),
        new ParallelCompressor(algorithm, { chunkBytes: 64 * 1024, threads: 2 }),
        new Writable({
          write(b: Buffer, _e, cb) {
            out.push(b);
            cb();
          },
        }),
      );
      expect((await decompress(algorithm, out)).equals(data)).toBe(true);
    });

    it(`reports corrupt and truncated ${algorithm} data as CompressionError`, async () => {
      const corrupt = Buffer.from(fromTool[algorithm]);
      for (let i = 40; i < 240; i += 7) corrupt[i] = corrupt[i]! ^ 0xa5;
      const e1 = await failure(decompress(algorithm, [corrupt]));
      expect(e1.algorithm).toBe(algorithm);
      const e2 = await failure(decompress(algorithm, [fromTool[algorithm].subarray(0, fromTool[algorithm].length - 100)]));
      expect(e2.message).toMatch(/truncated/);
    });
  }

  it('passes uncompressed archives through', async () => {
    expect((await decompress('base.tar', [data])).equals(data)).toBe(true);
  });
});

describe('compressArchive / decompressArchive over async iterables', () => {
  async function* chunksOf(buf: Buffer, size: number) {
    yield* chunked(buf, size);
  }

  it('round-trips every method', async () => {
    for (const method of ['gzip:1', 'lz4', 'zstd:1'] as const) {
      const compressed = await collect(compressArchive(chunksOf(data, 70_001), method, { chunkBytes: 128 * 1024 }));
      const algorithm = method.split(':')[0]!;
      expect(tool(algorithm, ['-d', '-c'], compressed).equals(data)).toBe(true);
      expect((await collect(decompressArchive(chunksOf(compressed, 9_999), `base.tar.${ext[algorithm as 'gzip']}`))).equals(data)).toBe(
        true,
      );
    }
  });

  it('returns an uncompressed source as it is', () => {
    const source = chunksOf(data, 1000);
    expect(decompressArchive(source, 'base.tar')).toBe(source);
  });

  it("lets the source's own error through unchanged", async () => {
    const serverError = new ServerError({ severity: 'ERROR', sqlState: '58P01', message: 'could not find WAL file' });
    async function* failing() {
      yield data.subarray(0, 100_000);
      throw serverError;
    }
    const err = await collect(compressArchive(failing(), 'gzip')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBe(serverError);
  });

  it('stops reading the source when the consumer stops', async () => {
    let returned = false;
    let pulled = 0;
    const source = {
      [Symbol.asyncIterator]() {
        return {
          next: async () => {
            pulled++;
            return { done: false as const, value: data.subarray(0, 64 * 1024) };
          },
          return: async () => {
            returned = true;
            return { done: true as const, value: undefined };
          },
        };
      },
    };
    for await (const chunk of compressArchive(source, 'lz4', { chunkBytes: 64 * 1024, threads: 1 })) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    await vi.waitFor(() => expect(returned).toBe(true), { timeout: 5000, interval: 5 });
    expect(pulled).toBeLessThan(20);
  });

  it('checks the spec and library before reading anything', () => {
    let pulled = false;
    async function* source() {
      pulled = true;
      yield Buffer.alloc(1);
    }
    expect(() => compressArchive(source(), 'gzip:99')).toThrow(/expects a compression level/);
    expect(() => compressArchive(source(), 'none')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_COMPRESSION' }));
    expect(pulled).toBe(false);
  });
});

describe('compressedOutput (push-style writers such as pg_wal.tar)', () => {
  it('sync() leaves a file that decompresses to everything written so far, then end() completes it', async () => {
    const { mkdtempSync, readFileSync, createWriteStream } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { compressedOutput } = await import('../../../src/compress/archive.js');
    const dir = mkdtempSync(join(tmpdir(), 'pgbb-compressed-output-'));
    const path = join(dir, 'pg_wal.tar.gz');
    const file = createWriteStream(path);
    let synced = 0;
    const { output, sync } = compressedOutput(file, 'gzip:1', {
      sync: async () => {
        synced++;
      },
      chunkBytes: 64 * 1024,
    });
    const part1 = data.subarray(0, 300_000);
    output.write(part1);
    await sync();
    expect(synced).toBe(1);
    expect(tool('gzip', ['-d', '-c'], readFileSync(path)).equals(part1)).toBe(true);
    output.write(data.subarray(300_000));
    await new Promise<void>((resolve) => output.end(resolve));
    await sync();
    expect(synced).toBe(2);
    expect(file.writableFinished).toBe(true);
    expect(tool('gzip', ['-d', '-c'], readFileSync(path)).equals(data)).toBe(true);
  });

  it('a failing output fails the writer and sync()', async () => {
    const { compressedOutput } = await import('../../../src/compress/archive.js');
    const broken = new Writable({
      write(_b, _e, cb) {
        cb(new Error('disk full'));
      },
    });
    const { output, sync } = compressedOutput(broken, 'lz4');
    output.write(data.subarray(0, 1000));
    await expect(sync()).rejects.toThrow(/disk full|destroyed/);
    expect(output.destroyed).toBe(true);
  });
});
