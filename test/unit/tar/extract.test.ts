import { describe, expect, it } from 'vitest';
import type { TarError } from '../../../src/errors.js';
import { extractTar, readBody } from '../../../src/tar/extract.js';
import { randomSplit, splits } from '../helpers/splits.js';
import { chunked, collect, END, member, pad, paxRecord, rawHeader, source, TAR_SPLITS } from './fixtures.js';

// A base.tar as a PostgreSQL 15+ server sends it (plus the extras other tars carry).
const content = Buffer.alloc(3000);
for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;
const longName = `${'deep/'.repeat(30)}file.dat`; // 158 bytes: needs pax or GNU L
const paxBody = paxRecord('path', longName);
const gnuLongBody = `${'gnu/'.repeat(40)}long.txt\0`;

const FIXTURE = Buffer.concat([
  member({ name: 'backup_label' }, 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n'),
  member({ name: 'base/', typeflag: '5', mode: 0o700 }),
  member({ name: 'base/1/1259', mode: 0o600 }, content),
  member({ name: 'empty' }),
  member({ name: 'pg_tblspc/16384', typeflag: '2', linkname: '/srv/ts1', mode: 0o777 }),
  member({ name: 'PaxHeader/file.dat', typeflag: 'x' }, paxBody),
  member({ name: 'truncated-name-placeholder' }, 'pax named me'),
  member({ name: '././@LongLink', typeflag: 'L', magic: 'gnu' }, gnuLongBody),
  member({ name: 'gnu/short', magic: 'gnu' }, 'gnu named me'),
  member({ name: 'file', prefix: 'a/prefixed' }, 'x'.repeat(512)),
  member({ name: 'global/pg_control', mode: 0o600 }, Buffer.alloc(8192, 1)),
]);

const EXPECTED = [
  ['backup_label', 'file', 62],
  ['base/', 'directory', 0],
  ['base/1/1259', 'file', 3000],
  ['empty', 'file', 0],
  ['pg_tblspc/16384', 'symlink', 0],
  [longName, 'file', 12],
  [`${'gnu/'.repeat(40)}long.txt`, 'file', 12],
  ['a/prefixed/file', 'file', 512],
  ['global/pg_control', 'file', 8192],
];

describe('extractTar', () => {
  for (const [label, chunks] of splits(Buffer.concat([FIXTURE, END]), TAR_SPLITS)) {
    it(`extracts every entry, fed ${label}`, async () => {
      const { entries, tar } = await collect(chunks);
      expect(entries.map((e) => [e.header.name, e.header.type, e.data.length])).toEqual(EXPECTED);
      expect(entries[2]?.data).toEqual(content);
      expect(entries[4]?.header.linkname).toBe('/srv/ts1');
      expect(entries[5]?.data.toString()).toBe('pax named me');
      expect(tar.terminated).toBe(true);
      expect(tar.bytesRead).toBe(FIXTURE.length + 1024);
    });
  }

  for (const [label, chunks] of splits(FIXTURE, TAR_SPLITS)) {
    it(`accepts an archive without end-of-archive marker (PostgreSQL 13/14), fed ${label}`, async () => {
      const { entries, tar } = await collect(chunks);
      expect(entries.map((e) => e.header.name)).toEqual(EXPECTED.map((e) => e[0]));
      expect(tar.terminated).toBe(false);
    });
  }

  it('handles an empty input and a bare terminator', async () => {
    const empty = await collect([]);
    expect(empty.entries).toEqual([]);
    expect(empty.tar.terminated).toBe(false);
    const bare = await collect([END]);
    expect(bare.entries).toEqual([]);
    expect(bare.tar.terminated).toBe(true);
  });

  it('treats a single zero block at the end of input as an (unterminated) end', async () => {
    const { entries, tar } = await collect([member({ name: 'a' }, 'a'), Buffer.alloc(512)]);
    expect(entries).toHaveLength(1);
    expect(tar.terminated).toBe(false);
  });

  it('rejects a lone zero block followed by data', async () => {
    const err = await collect([member({ name: 'a' }, 'a'), Buffer.alloc(512), member({ name: 'b' })]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_PGBB_TAR' });
    expect((err as TarError).offset).toBe(1024);
  });

  it('drains trailing zero padding after the marker (GNU tar pads to 10240 bytes)', async () => {
    const archive = Buffer.concat([member({ name: 'a' }, 'a'), END, Buffer.alloc(10240 - 2048)]);
    const { tar } = await collect(chunked(archive, 700));
    expect(tar.terminated).toBe(true);
    expect(tar.bytesRead).toBe(10240);
  });

  describe('errors', () => {
    for (const [label, chunks] of splits(FIXTURE.subarray(0, 1024 + 512 + 100), TAR_SPLITS)) {
      it(`truncated in the middle of a body is a TarError, fed ${label}`, async () => {
        const err = await collect(chunks).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'ERR_PGBB_TAR' });
        expect((err as TarError).message).toMatch(/truncated/);
      });
    }

    it('truncated in a header or in padding is a TarError', async () => {
      await expect(collect([FIXTURE.subarray(0, 1024 + 100)])).rejects.toThrow(/middle of a header block/);
      await expect(collect([FIXTURE.subarray(0, 512 + 65 + 10)])).rejects.toThrow(/padding/);
      // A pax record with no entry after it.
      const paxOnly = member({ name: 'PaxHeader/x', typeflag: 'x' }, paxRecord('path', 'x'));
      await expect(collect([paxOnly])).rejects.toThrow(/middle of an entry header/);
    });

    it('a bad header checksum is a TarError naming the offset', async () => {
      const bad = Buffer.concat([member({ name: 'a' }, 'abc'), member({ name: 'b', checksumDelta: 3 }), END]);
      const err = await collect([bad]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_PGBB_TAR' });
      expect((err as TarError).offset).toBe(1024);
      expect((err as TarError).message).toContain('offset 1024');
    });

    it('a bad numeric field or pax record is a TarError', async () => {
      const h = rawHeader({ name: 'a' });
      h.write('zz', 100, 'latin1');
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
      await expect(collect([h, END])).rejects.toThrow(/"mode" field/);
      const badPax = Buffer.concat([member({ name: 'P', typeflag: 'x' }, '99 path=x\n'), member({ name: 'a' }), END]);
      await expect(collect([badPax])).rejects.toThrow(/bad pax header/);
    });

    it('refuses oversized metadata records', async () => {
      const big = Buffer.concat([member({ name: 'L', typeflag: 'L', magic: 'gnu' }, 'n'.repeat(5000)), member({ name: 'a' }), END]);
      await expect(collect([big], { maxMetadataBytes: 4096 })).rejects.toThrow(/exceeds/);
    });
  });

  describe('lock step', () => {
    it('does not pull past the first header before its body is consumed', async () => {
      const archive = Buffer.concat([member({ name: 'first' }, Buffer.alloc(1500, 1)), member({ name: 'second' }, 'x'), END]);
      let pulled = 0;
      async function* counting(): AsyncGenerator<Buffer> {
        for (const c of chunked(archive, 512)) {
          pulled += c.length;
          yield c;
        }
      }
      const it = extractTar(counting())[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      expect(first.value.header.name).toBe('first');
      expect(pulled).toBe(512);
      const body = first.value.body[Symbol.asyncIterator]();
      await body.next();
      expect(pulled).toBe(1024); // only the chunk the consumer asked for
      let rest = 0;
      for (let r = await body.next(); !r.done; r = await body.next()) rest += r.value.length;
      expect(rest).toBe(1500 - 512);
      expect(pulled).toBe(2048); // the last body chunk carries the padding, nothing more
      const second = await it.next();
      expect(second.value.header.name).toBe('second');
    });

    it('does not parse the second header before the first body is read (a corrupt one fails only then)', async () => {
      const archive = Buffer.concat([member({ name: 'first' }, 'hello'), member({ name: 'second', checksumDelta: 1 }), END]);
      const it = extractTar(source(chunked(archive, 100)))[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value.header.name).toBe('first');
      expect((await readBody(first.value.body, 100)).toString()).toBe('hello');
      await expect(it.next()).rejects.toThrow(/offset 1024/);
    });

    it('skips an unread body when the next entry is asked for, and refuses to read it afterwards', async () => {
      const archive = Buffer.concat([member({ name: 'a' }, Buffer.alloc(2000, 7)), member({ name: 'b' }, 'bee'), END]);
      const tar = extractTar(source(chunked(archive, 321)));
      const names: string[] = [];
      let kept: AsyncIterable<Buffer> | undefined;
      for await (const e of tar) {
        names.push(e.header.name);
        if (e.header.name === 'a') kept = e.body;
        else expect((await readBody(e.body, 10)).toString()).toBe('bee');
      }
      expect(names).toEqual(['a', 'b']);
      const err = await (async () => {
        for await (const _ of kept as AsyncIterable<Buffer>) {
          /* nothing */
        }
      })().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_PGBB_STATE' });
    });

    it('stops a body iterator that the consumer keeps after moving on', async () => {
      const archive = Buffer.concat([member({ name: 'a' }, Buffer.alloc(2000, 7)), member({ name: 'b' }, 'bee'), END]);
      const it = extractTar(source(chunked(archive, 512)))[Symbol.asyncIterator]();
      const a = await it.next();
      const body = a.value.body[Symbol.asyncIterator]();
      await body.next();
      await it.next(); // moves on: the rest of a is skipped
      await expect(body.next()).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
    });

    it('skip() discards the body and the next entry follows', async () => {
      const archive = Buffer.concat([member({ name: 'a' }, Buffer.alloc(5000)), member({ name: 'b' }, 'bee'), END]);
      const it = extractTar(source(chunked(archive, 999)))[Symbol.asyncIterator]();
      const a = await it.next();
      await a.value.body.skip();
      await a.value.body.skip(); // idempotent
      const b = await it.next();
      expect(b.value.header.name).toBe('b');
    });
  });

  it('hands out views of the source chunks, not copies', async () => {
    const archive = Buffer.concat([member({ name: 'a' }, Buffer.alloc(4096, 9)), END]);
    const tar = extractTar(source([archive]));
    for await (const e of tar) {
      for await (const c of e.body) {
        expect(c.buffer).toBe(archive.buffer);
        expect(c.byteOffset).toBe(archive.byteOffset + 512);
      }
      expect(e.headerBytes.buffer).toBe(archive.buffer);
    }
  });

  it('gives the exact header bytes, extended records included', async () => {
    const paxEntry = Buffer.concat([member({ name: 'P', typeflag: 'x' }, paxBody), rawHeader({ name: 'short', size: 0 })]);
    const archive = Buffer.concat([member({ name: 'a' }, 'aa'), paxEntry, END]);
    const seen: Buffer[] = [];
    for await (const e of extractTar(source(chunked(archive, 7)))) seen.push(Buffer.from(e.headerBytes));
    expect(seen[0]).toEqual(archive.subarray(0, 512));
    expect(seen[1]).toEqual(paxEntry);
  });

  it('closes the source when the consumer breaks out', async () => {
    let closed = false;
    async function* src(): AsyncGenerator<Buffer> {
      try {
        yield Buffer.concat([member({ name: 'a' }, 'a'), member({ name: 'b' }, 'b')]);
        yield END;
      } finally {
        closed = true;
      }
    }
    for await (const e of extractTar(src())) if (e.header.name === 'a') break;
    expect(closed).toBe(true);
  });

  it('reads a base-256 size and skips an 8 GiB body without buffering it', async () => {
    const size = 8 * 1024 ** 3 + 1;
    const chunk = Buffer.alloc(16 * 1024 * 1024);
    async function* huge(): AsyncGenerator<Buffer> {
      yield rawHeader({ name: 'big', size });
      let left = size + (512 - (size % 512));
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        yield chunk.subarray(0, n);
        left -= n;
      }
      yield member({ name: 'after' }, 'ok');
      yield END;
    }
    const { entries, tar } = await (async () => {
      const t = extractTar(huge());
      const names: [string, number][] = [];
      for await (const e of t) names.push([e.header.name, e.body.size]);
      return { entries: names, tar: t };
    })();
    expect(entries).toEqual([
      ['big', size],
      ['after', 2],
    ]);
    expect(tar.terminated).toBe(true);
  });

  it('accepts Uint8Array chunks', async () => {
    const archive = Buffer.concat([member({ name: 'a' }, 'abc'), END]);
    async function* u8(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(archive.buffer, archive.byteOffset, 700);
      yield new Uint8Array(archive.buffer, archive.byteOffset + 700, archive.length - 700);
    }
    const tar = extractTar(u8());
    for await (const e of tar) expect((await readBody(e.body, 10)).toString()).toBe('abc');
    expect(tar.terminated).toBe(true);
  });

  it('is stable across many random splits', async () => {
    const archive = Buffer.concat([FIXTURE, END]);
    for (let seed = 100; seed < 130; seed++) {
      const cuts = randomSplit(archive, seed, 600);
      const { entries } = await collect(cuts);
      expect(entries.map((e) => e.data.length)).toEqual(EXPECTED.map((e) => e[2]));
    }
  });

  it('pads as expected in the fixture builder', () => {
    expect(pad(65).length).toBe(447);
  });
});
