import { describe, expect, it } from 'vitest';
import {
  algorithmFromFileName,
  COMPRESSION_SUFFIX,
  compressedArchiveName,
  compressionDetailText,
  DEFAULT_COMPRESSION_LEVEL,
  effectiveLevel,
  NO_COMPRESSION,
  parseCompressOption,
  resolveCompression,
  uncompressedArchiveName,
} from '../../../src/compress/spec.js';

const ok = (s: string) => {
  const r = parseCompressOption(s);
  if (!r.ok) throw new Error(r.message);
  return r.spec;
};
const bad = (s: string) => {
  const r = parseCompressOption(s);
  if (r.ok) throw new Error(`accepted ${s}`);
  return r.message;
};

describe('parseCompressOption', () => {
  it('reads bare levels as gzip, 0 and the empty string as none (strtol, as pg_basebackup)', () => {
    expect(ok('5')).toMatchObject({
      algorithm: 'gzip',
      level: 5,
      levelExplicit: true,
      location: 'client',
      locationExplicit: false,
      detail: '5',
    });
    expect(ok(' 5')).toMatchObject({ algorithm: 'gzip', level: 5 });
    expect(ok('+7')).toMatchObject({ algorithm: 'gzip', level: 7 });
    expect(ok('0')).toMatchObject({ algorithm: 'none', level: 0 });
    expect(ok('')).toMatchObject({ algorithm: 'none', level: 0 });
    expect(ok('server-9')).toMatchObject({ algorithm: 'gzip', level: 9, location: 'server', locationExplicit: true, detail: '9' });
    expect(bad('10')).toMatch(/"gzip" expects a compression level between 1 and 9/);
  });

  it('reads [client-|server-]METHOD[:DETAIL] with pg_basebackup defaults', () => {
    expect(ok('gzip')).toMatchObject({ algorithm: 'gzip', level: -1, levelExplicit: false });
    expect(ok('lz4')).toMatchObject({ algorithm: 'lz4', level: 0, levelExplicit: false, location: 'client' });
    expect(ok('zstd')).toMatchObject({ algorithm: 'zstd', level: 3, levelExplicit: false });
    expect(ok('none')).toEqual({ algorithm: 'none', level: 0, levelExplicit: false, location: 'client', locationExplicit: false });
    expect(ok('client-zstd:7')).toMatchObject({ algorithm: 'zstd', level: 7, location: 'client', locationExplicit: true, detail: '7' });
    expect(ok('server-zstd:level=-5,workers=4,long')).toMatchObject({
      algorithm: 'zstd',
      level: -5,
      levelExplicit: true,
      workers: 4,
      longDistance: true,
      location: 'server',
      detail: 'level=-5,workers=4,long',
    });
    expect(ok('zstd:long=off').longDistance).toBe(false);
    expect(ok('zstd:long=YES').longDistance).toBe(true);
    expect(ok('zstd:level=22')).toMatchObject({ level: 22 });
    expect(ok('gzip:level=-1')).toMatchObject({ level: -1 });
    expect(ok('lz4:level=12')).toMatchObject({ level: 12 });
  });

  it('refuses what compression.c refuses, in its words', () => {
    expect(bad('bzip2')).toBe('unrecognized compression algorithm: "bzip2"');
    expect(bad('server-brotli:3')).toBe('unrecognized compression algorithm: "brotli"');
    expect(bad('GZIP')).toBe('unrecognized compression algorithm: "GZIP"');
    expect(bad('gzip:10')).toBe(
      'invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)',
    );
    expect(bad('gzip:0')).toMatch(/expects a compression level between 1 and 9/);
    expect(bad('lz4:13')).toBe(
      'invalid compression specification: compression algorithm "lz4" expects a compression level between 1 and 12 (default at 0)',
    );
    expect(bad('zstd:23')).toMatch(/"zstd" expects a compression level between -131072 and 22 \(default at 3\)/);
    expect(bad('none:1')).toBe('invalid compression specification: compression algorithm "none" does not accept a compression level');
    expect(bad('gzip:workers=2')).toBe('invalid compression specification: compression algorithm "gzip" does not accept a worker count');
    expect(bad('lz4:long')).toBe('invalid compression specification: compression algorithm "lz4" does not support long-distance mode');
    expect(bad('zstd:fast')).toBe('invalid compression specification: unrecognized compression option: "fast"');
    expect(bad('zstd:level')).toBe('invalid compression specification: compression option "level" requires a value');
    expect(bad('zstd:level=x')).toBe('invalid compression specification: value for compression option "level" must be an integer');
    expect(bad('zstd:long=true')).toBe('invalid compression specification: value for compression option "long" must be a Boolean value');
    expect(bad('zstd:level=3,,')).toBe('invalid compression specification: found empty string where a compression option was expected');
    expect(bad('zstd:workers=-1')).toMatch(/worker count of 0 or more/);
  });
});

describe('resolveCompression', () => {
  it('takes strings, objects and specs; undefined is none', () => {
    expect(resolveCompression(undefined)).toBe(NO_COMPRESSION);
    expect(resolveCompression('server-lz4:5')).toMatchObject({ algorithm: 'lz4', location: 'server', level: 5 });
    expect(resolveCompression({ algorithm: 'gzip' })).toEqual({
      algorithm: 'gzip',
      location: 'client',
      locationExplicit: false,
      level: -1,
      levelExplicit: false,
    });
    expect(resolveCompression({ algorithm: 'zstd', location: 'server', level: 9, workers: 4, longDistance: true })).toEqual({
      algorithm: 'zstd',
      location: 'server',
      locationExplicit: true,
      level: 9,
      levelExplicit: true,
      workers: 4,
      longDistance: true,
    });
    const spec = ok('client-zstd:level=5,long');
    expect(resolveCompression(spec)).toEqual(spec);
  });

  it('throws ConfigError with the reason', () => {
    expect(() => resolveCompression('gzip:12')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
    expect(() => resolveCompression('gzip:12')).toThrow(/compression "gzip:12": invalid compression specification/);
    expect(() => resolveCompression({ algorithm: 'brotli' as 'gzip' })).toThrow(/unrecognized compression algorithm: "brotli"/);
    expect(() => resolveCompression({ algorithm: 'gzip', level: 1.5 })).toThrow(/must be an integer/);
    expect(() => resolveCompression({ algorithm: 'lz4', workers: 2 })).toThrow(/does not accept a worker count/);
    expect(() => resolveCompression({ algorithm: 'gzip', location: 'elsewhere' as 'client' })).toThrow(/"client" or "server"/);
  });
});

describe('names, levels and details', () => {
  it('maps suffixes both ways', () => {
    expect(COMPRESSION_SUFFIX).toEqual({ none: '', gzip: '.gz', lz4: '.lz4', zstd: '.zst' });
    expect(compressedArchiveName('base.tar', 'gzip')).toBe('base.tar.gz');
    expect(compressedArchiveName('pg_wal.tar', 'zstd')).toBe('pg_wal.tar.zst');
    expect(compressedArchiveName('16384.tar.lz4', 'lz4')).toBe('16384.tar.lz4');
    expect(compressedArchiveName('base.tar', 'none')).toBe('base.tar');
    expect(algorithmFromFileName('base.tar.gz')).toBe('gzip');
    expect(algorithmFromFileName('base.tgz')).toBe('gzip');
    expect(algorithmFromFileName('x/16384.tar.lz4')).toBe('lz4');
    expect(algorithmFromFileName('pg_wal.tar.zst')).toBe('zstd');
    expect(algorithmFromFileName('base.tar')).toBe('none');
    expect(uncompressedArchiveName('base.tar.zst')).toBe('base.tar');
    expect(uncompressedArchiveName('base.tar')).toBe('base.tar');
  });

  it("resolves default levels to the libraries' numbers", () => {
    expect(DEFAULT_COMPRESSION_LEVEL).toEqual({ none: 0, gzip: -1, lz4: 0, zstd: 3 });
    expect(effectiveLevel(ok('gzip'))).toBe(6);
    expect(effectiveLevel(ok('gzip:1'))).toBe(1);
    expect(effectiveLevel(ok('lz4'))).toBe(1);
    expect(effectiveLevel(ok('lz4:9'))).toBe(9);
    expect(effectiveLevel(ok('zstd'))).toBe(3);
    expect(effectiveLevel(ok('zstd:-5'))).toBe(-5);
  });

  it('passes the DETAIL through as written, else builds it from explicit fields', () => {
    expect(compressionDetailText(ok('server-zstd:level=5,long'))).toBe('level=5,long');
    expect(compressionDetailText(ok('server-5'))).toBe('5');
    expect(compressionDetailText(ok('server-gzip'))).toBeUndefined();
    expect(
      compressionDetailText(resolveCompression({ algorithm: 'zstd', location: 'server', level: 9, workers: 2, longDistance: false })),
    ).toBe('level=9,workers=2,long=off');
    expect(
      parseCompressOption(
        `server-zstd:${compressionDetailText(resolveCompression({ algorithm: 'zstd', level: 9, workers: 2, longDistance: false }))!}`,
      ),
    ).toMatchObject({ ok: true, spec: { level: 9, workers: 2, longDistance: false } });
  });
});
