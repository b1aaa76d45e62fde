import { describe, expect, it } from 'vitest';
import { bodySize, decodeHeader, encodeHeader, headerChecksum, paddingSize, readNumber, splitUstarName } from '../../../src/tar/header.js';
import { encodePax, paxOverrides, parsePax } from '../../../src/tar/pax.js';
import { rawHeader } from './fixtures.js';

describe('decodeHeader', () => {
  it('decodes every field of a ustar header written by hand', () => {
    const d = decodeHeader(
      rawHeader({
        name: 'base/1/1259',
        mode: 0o600,
        uid: 26,
        gid: 27,
        size: 8192,
        mtime: 1_714_557_600,
        uname: 'postgres',
        gname: 'pgroup',
      }),
    );
    expect(d.zeroBlock).toBe(false);
    expect(d.checksumValid).toBe(true);
    expect(d.invalidField).toBeUndefined();
    expect(d.header).toMatchObject({
      name: 'base/1/1259',
      mode: 0o600,
      uid: 26,
      gid: 27,
      size: 8192,
      mtime: 1_714_557_600,
      typeflag: '0',
      type: 'file',
      linkname: '',
      uname: 'postgres',
      gname: 'pgroup',
      format: 'ustar',
    });
  });

  it('maps typeflags to types', () => {
    const types = Object.fromEntries(
      ['0', '\0', '7', '1', '2', '5', 'x', 'g', 'L', 'K', '3', '4', '6', 'Z'].map((t) => [
        t,
        decodeHeader(rawHeader({ name: 'n', typeflag: t })).header.type,
      ]),
    );
    expect(types).toEqual({
      '0': 'file',
      '\0': 'file',
      '7': 'file',
      '1': 'hardlink',
      '2': 'symlink',
      '5': 'directory',
      x: 'pax-header',
      g: 'pax-global-header',
      L: 'gnu-long-name',
      K: 'gnu-long-linkname',
      '3': 'character-device',
      '4': 'block-device',
      '6': 'fifo',
      Z: 'unknown',
    });
  });

  it('joins the ustar prefix, but not under the GNU magic where that area means something else', () => {
    expect(decodeHeader(rawHeader({ name: 'file', prefix: 'a/b/c' })).header.name).toBe('a/b/c/file');
    const gnu = decodeHeader(rawHeader({ name: 'file', prefix: 'a/b/c', magic: 'gnu' }));
    expect(gnu.header.name).toBe('file');
    expect(gnu.header.format).toBe('gnu');
    expect(decodeHeader(rawHeader({ name: 'old', magic: 'v7' })).header).toMatchObject({ format: 'v7', uname: '' });
  });

  it('reads a symlink target, as PostgreSQL sends pg_tblspc/<oid>', () => {
    const d = decodeHeader(rawHeader({ name: 'pg_tblspc/16384', typeflag: '2', linkname: '/srv/ts1', mode: 0o777 }));
    expect(d.header).toMatchObject({ type: 'symlink', linkname: '/srv/ts1' });
    expect(bodySize(d.header)).toBe(0);
  });

  it('reads GNU base-256 sizes of 8 GiB and more', () => {
    const size = 8 * 1024 ** 3 + 12345;
    const d = decodeHeader(rawHeader({ name: 'big', size }));
    expect(d.checksumValid).toBe(true);
    expect(d.header.size).toBe(size);
    expect(decodeHeader(rawHeader({ name: 'small', size: 42, base256Size: true })).header.size).toBe(42);
  });

  it('flags a wrong checksum, a zero block and a non-numeric field instead of throwing', () => {
    expect(decodeHeader(rawHeader({ name: 'x', checksumDelta: 1 })).checksumValid).toBe(false);
    const zero = decodeHeader(Buffer.alloc(512));
    expect(zero.zeroBlock).toBe(true);
    expect(zero.checksumValid).toBe(false);
    const garbage = rawHeader({ name: 'x' });
    garbage.write('9z', 124, 'latin1');
    const g = decodeHeader(garbage);
    expect(g.invalidField).toBe('size');
    expect(Number.isNaN(g.header.size)).toBe(true);
  });

  it('accepts the historical signed checksum', () => {
    const b = rawHeader({ name: 'caf\u00e9' }); // bytes > 127 make the two sums differ
    b.write(`${headerChecksum(b, true).toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    expect(headerChecksum(b, true)).not.toBe(headerChecksum(b));
    expect(decodeHeader(b).checksumValid).toBe(true);
  });

  it('reads octal padded with spaces and ended by space or NUL', () => {
    const b = Buffer.alloc(12);
    b.write('   755 \0', 0, 'latin1');
    expect(readNumber(b, 0, 8)).toBe(0o755);
    b.fill(0);
    expect(readNumber(b, 0, 8)).toBe(0);
    b.write('7 7', 0, 'latin1');
    expect(readNumber(b, 0, 8)).toBeUndefined();
  });
});

describe('encodeHeader', () => {
  it('round-trips through decodeHeader with a valid checksum', () => {
    const block = encodeHeader({ name: 'postgresql.auto.conf', size: 88, mode: 0o600, mtime: 1_700_000_123, uname: 'pg', gname: 'pg' });
    expect(block.length).toBe(512);
    const d = decodeHeader(block);
    expect(d.checksumValid).toBe(true);
    expect(d.header).toMatchObject({
      name: 'postgresql.auto.conf',
      size: 88,
      mode: 0o600,
      mtime: 1_700_000_123,
      type: 'file',
      format: 'ustar',
    });
    // Same bytes as a hand-made header for the fields both set.
    expect(block.subarray(0, 100)).toEqual(rawHeader({ name: 'postgresql.auto.conf' }).subarray(0, 100));
  });

  it('writes sizes of 8 GiB and more in base-256 and negative times too', () => {
    const size = 2 ** 40 + 7;
    const block = encodeHeader({ name: 'huge', size, mtime: -100 });
    expect(block[124]).toBe(0x80);
    expect(block[136]).toBe(0xff);
    const d = decodeHeader(block);
    expect(d.checksumValid).toBe(true);
    expect(d.header.size).toBe(size);
    expect(d.header.mtime).toBe(-100);
    // 8 GiB - 1 still fits in 11 octal digits.
    const edge = encodeHeader({ name: 'edge', size: 8 ** 11 - 1 });
    expect(edge.toString('latin1', 124, 135)).toBe('77777777777');
  });

  it('splits long names into prefix and name', () => {
    const name = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const d = decodeHeader(encodeHeader({ name }));
    expect(d.header.name).toBe(name);
    expect(splitUstarName('a'.repeat(100))).toMatchObject({ prefix: Buffer.alloc(0) });
    expect(splitUstarName('a'.repeat(101))).toBeUndefined();
    expect(splitUstarName(`${'a'.repeat(156)}/b`)).toBeUndefined();
    const dir = `${'p'.repeat(60)}/${'q'.repeat(60)}/`;
    expect(decodeHeader(encodeHeader({ name: dir, type: 'directory' })).header.name).toBe(dir);
  });

  it('pads and sizes bodies to blocks', () => {
    expect([0, 1, 511, 512, 513].map(paddingSize)).toEqual([0, 511, 1, 0, 511]);
  });
});

describe('pax records', () => {
  it('round-trips records whose length crosses a digit boundary', () => {
    for (let n = 80; n < 1100; n += 1) {
      const value = 'v'.repeat(n);
      const encoded = encodePax([
        ['path', value],
        ['linkpath', 'x'],
      ]);
      const parsed = parsePax(encoded);
      expect(parsed.valid).toBe(true);
      expect(parsed.records.get('path')).toBe(value);
      expect(parsed.records.get('linkpath')).toBe('x');
    }
  });

  it('keeps the keys we apply, and numbers only when they parse', () => {
    const parsed = parsePax(
      encodePax([
        ['path', 'é/ü'],
        ['size', '9000000000'],
        ['mtime', '1700000000.123'],
        ['uid', 'x'],
        ['comment', 'hi'],
      ]),
    );
    expect(paxOverrides(parsed.records)).toEqual({ path: 'é/ü', size: 9_000_000_000, mtime: 1_700_000_000 });
  });

  it('flags malformed records', () => {
    expect(parsePax(Buffer.from('11 path=a\n')).valid).toBe(false); // length says 11, record is 10
    expect(parsePax(Buffer.from('xx path=a\n')).valid).toBe(false);
    expect(parsePax(Buffer.from('9 patha\n')).valid).toBe(false);
    expect(parsePax(Buffer.from('10 path=a\n\0\0\0')).valid).toBe(true);
  });
});
