import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../../src/lsn.js';
import { buildManifest, escapeManifestString, formatManifestTime, ManifestBuilder } from '../../../src/manifest/build.js';
import { ManifestParser, parseManifest } from '../../../src/manifest/parse.js';
import type { BackupManifest } from '../../../src/manifest/types.js';
import { splits } from '../helpers/splits.js';

/** A manifest written the way a PostgreSQL 17 server writes one, checksum computed here. */
function withChecksum(body: string): Buffer {
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${body}"Manifest-Checksum": "${sum}"}\n`);
}

const V2_BODY = [
  '{ "PostgreSQL-Backup-Manifest-Version": 2,',
  '"System-Identifier": 18446744073709551615,',
  '"Files": [',
  '{ "Path": "backup_label", "Size": 227, "Last-Modified": "2024-05-01 10:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "9a1b2c3d" },',
  '{ "Path": "base/1/1259", "Size": 8192, "Last-Modified": "2024-05-01 09:59:59 GMT" },',
  '{ "Encoded-Path": "6e6f6e2dff757466", "Size": 0, "Last-Modified": "2024-05-01 09:59:59 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },',
  '{ "Path": "odd \\"name\\"\\\\\\t\\u0001é", "Size": 1, "Last-Modified": "1970-01-01 00:00:00 GMT" }',
  '],',
  '"WAL-Ranges": [',
  '{ "Timeline": 2, "Start-LSN": "0/3000000", "End-LSN": "0/3000138" },',
  '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/3000000" }',
  '],',
  '',
].join('\n');
const V2 = withChecksum(V2_BODY);

const V1 = withChecksum(
  [
    '{ "PostgreSQL-Backup-Manifest-Version": 1,',
    '"Files": [',
    '{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2024-05-01 10:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "0a0b0c0d" }',
    '],',
    '"WAL-Ranges": [',
    '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }',
    '],',
    '',
  ].join('\n'),
);

function feed(chunks: Buffer[]): BackupManifest {
  const p = new ManifestParser();
  for (const c of chunks) p.push(c);
  return p.end();
}

function expectManifestError(bytes: Buffer | string, pattern: RegExp): void {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  let caught: unknown;
  try {
    parseManifest(buf);
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({ code: 'ERR_PGBB_MANIFEST' });
  expect((caught as Error).message).toMatch(pattern);
}

describe('parseManifest', () => {
  it('reads a version 2 manifest: 64-bit system identifier, files, encoded path, escapes, WAL ranges', () => {
    const m = parseManifest(V2);
    expect(m.version).toBe(2);
    expect(m.systemIdentifier).toBe(18446744073709551615n);
    expect([...m.files.keys()]).toEqual([
      'backup_label',
      'base/1/1259',
      Buffer.from('6e6f6e2dff757466', 'hex').toString('latin1'),
      'odd "name"\\\t\u0001é',
    ]);
    expect(m.files.get('backup_label')).toEqual({
      path: 'backup_label',
      size: 227,
      lastModified: '2024-05-01 10:00:00 GMT',
      checksumAlgorithm: 'CRC32C',
      checksum: '9a1b2c3d',
    });
    expect(m.files.get('base/1/1259')?.checksumAlgorithm).toBe('NONE');
    const encoded = [...m.files.values()][2]!;
    expect(encoded.encodedPath).toEqual(Buffer.from([0x6e, 0x6f, 0x6e, 0x2d, 0xff, 0x75, 0x74, 0x66]));
    expect(m.walRanges).toEqual([
      { timeline: 2, startLsn: parseLsn('0/3000000'), endLsn: parseLsn('0/3000138') },
      { timeline: 1, startLsn: parseLsn('0/2000028'), endLsn: parseLsn('0/3000000') },
    ]);
    expect(m.manifestChecksum).toBe(createHash('sha256').update(V2_BODY).digest('hex'));
  });

  it('reads a version 1 manifest (no system identifier)', () => {
    const m = parseManifest(V1);
    expect(m.version).toBe(1);
    expect(m.systemIdentifier).toBeUndefined();
    expect(m.files.get('PG_VERSION')?.size).toBe(3);
  });

  it('gives the same result fed whole, byte by byte, in 321-byte chunks and at random splits', () => {
    const whole = parseManifest(V2);
    for (const [how, chunks] of splits(V2)) expect(feed(chunks), how).toEqual(whole);
    for (let cut = 0; cut <= V2.length; cut++) {
      const p = new ManifestParser();
      p.push(V2.subarray(0, cut));
      p.push(V2.subarray(cut));
      expect(p.end()).toEqual(whole);
    }
  });

  it('the JSON.parse fast path gives what the event parser gives, and hands unusual documents over to it', () => {
    const streamed = (b: Buffer) => new ManifestParser().push(b).end();
    expect(ManifestParser.fromWhole(V2)).toEqual(streamed(V2));
    expect(ManifestParser.fromWhole(V1)).toEqual(streamed(V1));
    // 2^64-1 survives (not rounded through a double).
    expect(ManifestParser.fromWhole(V2)?.systemIdentifier).toBe(18446744073709551615n);
    const v = (body: string) => withChecksum(body);
    const oneFile = (size: string) => v(`{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [{ "Path": "a", "Size": ${size} }],\n`);
    // PostgreSQL reads sizes with strtou64: 1e3 and 1.0 are not integers, though JSON.parse makes them 1000 and 1.
    expect(ManifestParser.fromWhole(oneFile('1e3'))).toBeUndefined();
    expectManifestError(oneFile('1e3'), /file size is not an integer/);
    expectManifestError(oneFile('1.0'), /file size is not an integer/);
    expect(ManifestParser.fromWhole(oneFile('1000'))?.files.get('a')?.size).toBe(1000);
    // A repeated top-level field: JSON.parse would keep only the last.
    const twice = v(
      '{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [{ "Path": "a", "Size": 1 }],\n"Files": [{ "Path": "b", "Size": 1 }],\n',
    );
    expect(ManifestParser.fromWhole(twice)).toBeUndefined();
    expect([...parseManifest(twice).files.keys()]).toEqual(['a', 'b']);
    // Damage goes to the event parser, which words the error.
    expect(ManifestParser.fromWhole(V2.subarray(0, V2.length - 10))).toBeUndefined();
  });

  it('rejects a manifest whose contents no longer match its checksum', () => {
    const damaged = Buffer.from(V2);
    damaged[V2.indexOf('8192')] = '9'.charCodeAt(0);
    expectManifestError(damaged, /manifest checksum mismatch/);
    expect(parseManifest(damaged, { verifyChecksum: false }).files.get('base/1/1259')?.size).toBe(9192);
  });

  it('names each structural problem as PostgreSQL does', () => {
    const v = (body: string) => withChecksum(body);
    expectManifestError(v('{ "Files": [],\n"WAL-Ranges": [],\n'), /expected version indicator/);
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": 3,\n'), /unexpected manifest version/);
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": "x",\n'), /manifest version not an integer/);
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Extra": 1,\n'), /unrecognized top-level field/);
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": 2, "System-Identifier": "12a",\n'), /system identifier not an integer/);
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Size": 1 }],\n'), /missing path name/);
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a" }],\n'), /missing size/);
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a", "Encoded-Path": "61", "Size": 1 }],\n'),
      /both path name and encoded path name/,
    );
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a", "Size": 1, "Checksum": "00" }],\n'),
      /checksum without algorithm/,
    );
    expectManifestError(
      v(
        '{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a", "Size": 1, "Checksum-Algorithm": "MD5", "Checksum": "00" }],\n',
      ),
      /unrecognized checksum algorithm: "MD5"/,
    );
    expectManifestError(
      v(
        '{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C", "Checksum": "0g" }],\n',
      ),
      /invalid checksum for file "a"/,
    );
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Encoded-Path": "6", "Size": 1 }],\n'),
      /could not decode file name/,
    );
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a", "Size": -1 }],\n'),
      /file size is not an integer/,
    );
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a", "Size": 1 }, { "Path": "a", "Size": 2 }],\n'),
      /duplicate path name in backup manifest: "a"/,
    );
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [{ "Path": "a", "Size": 1, "Mode": 1 }],\n'),
      /unexpected file field "Mode"/,
    );
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "0/1" }],\n'),
      /missing end LSN/,
    );
    expectManifestError(
      v('{ "PostgreSQL-Backup-Manifest-Version": 1, "WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "zz", "End-LSN": "0/1" }],\n'),
      /could not parse start LSN/,
    );
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": {},\n'), /unexpected object start/);
    expectManifestError(v('{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [ 1 ],\n'), /unexpected scalar/);
  });

  it('rejects truncated, non-JSON, single-line and unterminated manifests', () => {
    expectManifestError(V2.subarray(0, V2.length - 10), /could not parse backup manifest/);
    expectManifestError(V2.subarray(0, V2.length - 1), /last line not newline-terminated/);
    expectManifestError(V2.subarray(0, 100), /unterminated string|ended|ends/);
    expectManifestError('{ "PostgreSQL-Backup-Manifest-Version": 1, "Manifest-Checksum": "00"}\n', /expected at least 2 lines/);
    expectManifestError('not json\n\n', /unexpected character/);
    expectManifestError(Buffer.concat([V2.subarray(0, 50), Buffer.from([0xff]), V2.subarray(50)]), /not valid UTF-8/);
    expectManifestError(
      withChecksum('{ "PostgreSQL-Backup-Manifest-Version": 1,\n')
        .toString()
        .replace(/"Manifest-Checksum": "[0-9a-f]+"/, '"Manifest-Checksum": "abc"'),
      /invalid manifest checksum/,
    );
    expectManifestError(Buffer.concat([V1, Buffer.from('x')]), /unexpected character|last line/);
  });
});

describe('buildManifest', () => {
  it('writes the exact bytes of the server format, for versions 1 and 2', () => {
    const m1 = parseManifest(V1);
    expect(buildManifest({ version: 1, files: m1.files.values(), walRanges: m1.walRanges })).toEqual(V1);
    // V2 uses \u0001 and é as the server writes them; the encoded path comes back as Encoded-Path.
    const m2 = parseManifest(V2);
    const rebuilt = buildManifest({
      version: 2,
      systemIdentifier: m2.systemIdentifier!,
      files: m2.files.values(),
      walRanges: m2.walRanges,
    });
    expect(rebuilt.toString('utf8')).toBe(V2.toString('utf8'));
  });

  it('round-trips: build → parse → build is identical and checksummed', () => {
    const b = new ManifestBuilder({ version: 2, systemIdentifier: 7301234567890123456n, paddedLsn: true });
    const parts = [b.start()];
    for (let i = 0; i < 50; i++) {
      parts.push(
        b.addFile({
          path: `base/5/${16384 + i}`,
          size: i * 8192,
          lastModified: 1714557600 + i,
          checksumAlgorithm: 'CRC32C',
          checksum: (i * 7919).toString(16).padStart(8, '0'),
        }),
      );
    }
    parts.push(b.finish([{ timeline: 1, startLsn: parseLsn('0/2000028'), endLsn: parseLsn('0/2000138') }]));
    const bytes = Buffer.concat(parts);
    expect(bytes.toString()).toContain('"Start-LSN": "0/02000028"');
    const parsed = parseManifest(bytes);
    expect(parsed.files.size).toBe(50);
    expect(
      buildManifest({
        version: 2,
        systemIdentifier: parsed.systemIdentifier!,
        paddedLsn: true,
        files: parsed.files.values(),
        walRanges: parsed.walRanges,
      }),
    ).toEqual(bytes);
  });

  it('writes an empty file list as the server does', () => {
    const bytes = buildManifest({ version: 1, files: [], walRanges: [] });
    expect(bytes.toString()).toMatch(
      /^\{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": \[\n\],\n"WAL-Ranges": \[\n\n\],\n"Manifest-Checksum": "[0-9a-f]{64}"\}\n$/,
    );
    expect(parseManifest(bytes).files.size).toBe(0);
  });

  it('escapes like escape_json and formats times in GMT', () => {
    expect(escapeManifestString('a"b\\c\b\f\n\r\t\u0001\u001f\u007fé')).toBe('"a\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\u007fé"');
    expect(formatManifestTime(0)).toBe('1970-01-01 00:00:00 GMT');
    expect(formatManifestTime(new Date(Date.UTC(2024, 4, 1, 9, 5, 7)))).toBe('2024-05-01 09:05:07 GMT');
  });

  it('force-encode writes every path as Encoded-Path hex', () => {
    const bytes = buildManifest({
      version: 1,
      forceEncode: true,
      files: [{ path: 'PG_VERSION', size: 3, lastModified: 0 }],
      walRanges: [],
    });
    expect(bytes.toString()).toContain('{ "Encoded-Path": "50475f56455253494f4e", "Size": 3, "Last-Modified": "1970-01-01 00:00:00 GMT" }');
    expect(parseManifest(bytes).files.has('PG_VERSION')).toBe(true);
  });
});
