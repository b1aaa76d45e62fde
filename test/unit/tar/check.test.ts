// The tar structure check used where archives are stored unparsed (tar format): valid archives
// pass at every split; each structural fault is a TarError naming its offset.
import { describe, expect, it } from 'vitest';
import type { TarError } from '../../../src/errors.js';
import { TarStructureChecker } from '../../../src/tar/check.js';
import { baseTar, tablespaceTar } from '../sinks/fixtures.js';
import { splits } from '../helpers/splits.js';
import { END, member, paxRecord, TAR_SPLITS } from './fixtures.js';

function run(chunks: Buffer[]): TarStructureChecker {
  const c = new TarStructureChecker();
  for (const chunk of chunks) c.push(chunk);
  c.end();
  return c;
}

function fault(buf: Buffer): TarError {
  let err: unknown;
  for (const [name, chunks] of splits(buf, TAR_SPLITS)) {
    let e: unknown;
    try {
      run(chunks);
    } catch (caught) {
      e = caught;
    }
    expect(e, name).toMatchObject({ code: 'ERR_PGBB_TAR' });
    if (err !== undefined) expect((e as TarError).message, name).toBe((err as TarError).message);
    err = e;
  }
  return err as TarError;
}

const longName = `base/1/${'x'.repeat(150)}`;
const withExtensions = Buffer.concat([
  // A pax record that overrides the size the entry header gives (ustar size 0, real 700).
  member({ name: 'PaxHeaders/big', typeflag: 'x' }, paxRecord('size', '700')),
  member({ name: 'big', size: 0 }),
  Buffer.alloc(700, 5),
  Buffer.alloc(512 - (700 % 512)),
  member({ name: '././@LongLink', typeflag: 'L' }, `${longName}\0`),
  member({ name: longName.slice(0, 99) }, Buffer.alloc(1500, 6)),
  END,
]);

describe('TarStructureChecker', () => {
  for (const [label, archive, entries, terminated] of [
    ['a base.tar like PostgreSQL 15+ sends', baseTar(), 11, true],
    ['a base.tar without the end marker (13/14)', baseTar({ terminated: false }), 11, false],
    ['a tablespace archive', tablespaceTar(), 3, true],
    ['pax size overrides and GNU long names', withExtensions, 2, true],
    ['an empty archive', END, 0, true],
  ] as const) {
    it(`accepts ${label} at every split`, () => {
      for (const [name, chunks] of splits(archive, TAR_SPLITS)) {
        const c = run(chunks);
        expect(c.entries, name).toBe(entries);
        expect(c.terminated, name).toBe(terminated);
        expect(c.offset, name).toBe(archive.length);
      }
    });
  }

  it('contentEnd never passes the end marker nor an unfinished header block, at every split', () => {
    for (const [archive, markerAt] of [
      [baseTar(), baseTar().length - END.length],
      [baseTar({ terminated: false }), undefined],
      [withExtensions, withExtensions.length - END.length],
      [Buffer.concat([tablespaceTar(), Buffer.alloc(4096)]), tablespaceTar().length - END.length],
    ] as const) {
      for (const [name, chunks] of splits(archive, TAR_SPLITS)) {
        const c = new TarStructureChecker();
        for (const chunk of chunks) {
          c.push(chunk);
          const end = c.contentEnd;
          expect(end, name).toBeLessThanOrEqual(c.offset);
          if (markerAt !== undefined) expect(end, name).toBeLessThanOrEqual(markerAt);
          // Only a header block still being collected is held back, never a body byte.
          expect(c.offset - end, name).toBeLessThan(markerAt !== undefined && c.offset > markerAt ? Infinity : 512);
        }
        c.end();
        expect(c.markerOffset, name).toBe(markerAt);
        expect(c.contentEnd, name).toBe(markerAt ?? archive.length);
      }
    }
  });

  it('a header with a bad checksum', () => {
    const first = member({ name: 'PG_VERSION' }, '17\n');
    const err = fault(Buffer.concat([first, member({ name: 'global/pg_control', checksumDelta: 1 }, Buffer.alloc(8192)), END]));
    expect(err.message).toBe(`bad tar header checksum at offset ${first.length}: not a tar archive, or the data is corrupt`);
    expect(err.offset).toBe(first.length);
  });

  it('bytes that are not a tar archive at all', () => {
    expect(fault(Buffer.from('PK\u0003\u0004'.padEnd(2048, 'z'))).offset).toBe(0);
  });

  it('an archive cut inside a body, a header, or after an extended header', () => {
    const full = baseTar();
    const relAt = full.indexOf(Buffer.from('base/1/1259'));
    expect(fault(full.subarray(0, relAt + 512 + 100)).message).toMatch(/ends in the middle of an entry body/);
    expect(fault(full.subarray(0, relAt + 100)).message).toBe(
      `the tar archive ends in the middle of a header block (at offset ${relAt}): the data was cut short`,
    );
    expect(fault(withExtensions.subarray(0, 1024)).message).toMatch(/ends in the middle of an entry \(after its extended header\)/);
  });

  it('a lone zero block followed by data, and data after the end marker', () => {
    const one = member({ name: 'PG_VERSION' }, '17\n');
    expect(fault(Buffer.concat([one, Buffer.alloc(512), one])).message).toBe(
      `a lone zero block at offset ${one.length} is followed by data: the archive is corrupt`,
    );
    expect(fault(Buffer.concat([one, END, Buffer.alloc(3), Buffer.from([1])])).offset).toBe(one.length + 1024 + 3);
    // Zero padding after the marker (GNU tar's blocking factor) is fine.
    expect(run([Buffer.concat([one, END, Buffer.alloc(9216)])]).terminated).toBe(true);
  });

  it('a size field that is not a number', () => {
    const h = member({ name: 'PG_VERSION' }, '17\n');
    h.write('zzzzzzzzzzz\0', 124, 'latin1');
    // Recompute the checksum so only the field is wrong.
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h.subarray(0, 512)) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(fault(Buffer.concat([h, END])).message).toBe('bad "size" field in the tar header at offset 0');
  });
});
