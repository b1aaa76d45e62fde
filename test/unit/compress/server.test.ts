import { describe, expect, it } from 'vitest';
import { ServerError } from '../../../src/errors.js';
import { checkServerCompression, mapServerCompressionError, serverCompressionOptions } from '../../../src/compress/server.js';
import { resolveCompression } from '../../../src/compress/spec.js';

const serverError = (message: string, sqlState = '0A000') => new ServerError({ severity: 'ERROR', sqlState, message });

describe('server-side compression options', () => {
  it('asks 15+ for COMPRESSION and the DETAIL as written, nothing for client-side', () => {
    expect(serverCompressionOptions(resolveCompression('server-gzip'), 15)).toEqual([{ name: 'COMPRESSION', value: 'gzip' }]);
    expect(serverCompressionOptions(resolveCompression('server-zstd:level=9,workers=4,long'), 18)).toEqual([
      { name: 'COMPRESSION', value: 'zstd' },
      { name: 'COMPRESSION_DETAIL', value: 'level=9,workers=4,long' },
    ]);
    expect(serverCompressionOptions(resolveCompression('server-5'), 16)).toEqual([
      { name: 'COMPRESSION', value: 'gzip' },
      { name: 'COMPRESSION_DETAIL', value: '5' },
    ]);
    expect(serverCompressionOptions(resolveCompression('server-none'), 15)).toEqual([{ name: 'COMPRESSION', value: 'none' }]);
    expect(serverCompressionOptions(resolveCompression({ algorithm: 'lz4', location: 'server', level: 4 }), 17)).toEqual([
      { name: 'COMPRESSION', value: 'lz4' },
      { name: 'COMPRESSION_DETAIL', value: 'level=4' },
    ]);
    expect(serverCompressionOptions(resolveCompression('gzip'), 13)).toEqual([]);
    expect(serverCompressionOptions(resolveCompression('client-zstd:9'), 16)).toEqual([]);
  });

  it('refuses 13 and 14 with advice, before anything is sent', () => {
    for (const major of [13, 14]) {
      let err: unknown;
      try {
        checkServerCompression(resolveCompression('server-lz4:3'), major);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
      expect((err as Error).message).toBe(
        `the server (PostgreSQL ${major}) does not support server-side compression, which needs ` +
          'PostgreSQL 15 or later: compress on the client instead (--compress=client-lz4:3)',
      );
      expect(() => serverCompressionOptions(resolveCompression('server-gzip'), major)).toThrow(
        expect.objectContaining({ code: 'ERR_PGBB_COMPRESSION' }),
      );
    }
    expect(() => checkServerCompression(resolveCompression('client-gzip'), 13)).not.toThrow();
  });
});

describe('mapServerCompressionError', () => {
  const spec = resolveCompression('server-lz4');
  it('explains a server built without the method', () => {
    for (const msg of [
      'lz4 compression is not supported by this build',
      'invalid compression specification: this build does not support compression with LZ4',
    ]) {
      const cause = serverError(msg, msg.startsWith('invalid') ? '42601' : '0A000');
      const mapped = mapServerCompressionError(cause, spec);
      expect(mapped).toMatchObject({ code: 'ERR_PGBB_COMPRESSION' });
      expect(mapped!.algorithm).toBe('lz4');
      expect(mapped!.cause).toBe(cause);
      expect(mapped!.message).toContain('the server was built without lz4 support');
      expect(mapped!.message).toContain('--compress=client-lz4');
      expect(mapped!.advice).toMatch(/^the server was built without lz4 support.*--compress=client-lz4/);
      expect(mapped!.message).toBe(`server-side lz4 compression failed: ${msg}\n${mapped!.advice!}`);
    }
  });

  it('explains refused details and zstd parameters', () => {
    const z = resolveCompression('server-zstd:workers=4');
    expect(
      mapServerCompressionError(serverError('could not set compression worker count to 4: Unsupported parameter', '22023'), z)!.message,
    ).toMatch(/drop "workers"\/"long"/);
    expect(
      mapServerCompressionError(
        serverError(
          'invalid compression specification: compression algorithm "zstd" expects a compression level between -7 and 22',
          '42601',
        ),
        z,
      )!.message,
    ).toMatch(/refused the compression specification "zstd:workers=4"/);
  });

  it('leaves other errors and client-side specs alone', () => {
    expect(mapServerCompressionError(serverError('could not find WAL file', '58P01'), spec)).toBeUndefined();
    expect(mapServerCompressionError(new Error('lz4 compression is not supported by this build'), spec)).toBeUndefined();
    expect(
      mapServerCompressionError(serverError('lz4 compression is not supported by this build'), resolveCompression('lz4')),
    ).toBeUndefined();
  });
});
