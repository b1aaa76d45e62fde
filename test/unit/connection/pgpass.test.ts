import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findPgpassPassword,
  lookupPgpass,
  parsePgpass,
  pgpassHostName,
  pgpassKeyFor,
  type PgpassKey,
} from '../../../src/connection/pgpass.js';
import { resolveConnectionOptions } from '../../../src/connection/options.js';

const key: PgpassKey = { host: 'db.example.com', port: 5432, dbname: 'replication', user: 'rep' };
const find = (text: string, k: Partial<PgpassKey> = {}) => findPgpassPassword(parsePgpass(text), { ...key, ...k });

describe('pgpass parser and matcher', () => {
  it('matches all four fields exactly', () => {
    expect(find('db.example.com:5432:replication:rep:s3cret\n')).toBe('s3cret');
    expect(find('db.example.com:5433:replication:rep:x')).toBeUndefined();
    expect(find('DB.example.com:5432:replication:rep:x')).toBeUndefined();
    expect(find('db.example.com:5432:postgres:rep:x')).toBeUndefined();
    expect(find('db.example.com:5432:replication:rep2:x')).toBeUndefined();
    expect(find('db.example.com:5432:replication:re:x')).toBeUndefined();
  });

  it('treats * as a wildcard only when it is the whole field', () => {
    expect(find('*:*:*:*:any')).toBe('any');
    expect(find('*:5432:*:rep:w')).toBe('w');
    expect(find('db*:5432:replication:rep:no')).toBeUndefined();
  });

  it('unescapes \\: and \\\\ in fields and in the password', () => {
    expect(find('h\\:x:5432:replication:rep:p\\:w\\\\d', { host: 'h:x' })).toBe('p:w\\d');
    expect(find('db.example.com:5432:replication:r\\ep:pw')).toBe('pw');
  });

  it('ends the password at an unescaped colon', () => {
    expect(find('*:*:*:*:pass:extra')).toBe('pass');
    expect(find('*:*:*:*:')).toBe('');
  });

  it('needs a colon after each of the first four fields', () => {
    expect(find('db.example.com:5432:replication:rep')).toBeUndefined();
    expect(find('db.example.com:5432:replication')).toBeUndefined();
  });

  it('skips comments (first column only), blank lines and CRLF', () => {
    const text = '# *:*:*:*:comment\n\n  \r\n\r\ndb.example.com:5432:replication:rep:crlf\r\n*:*:*:*:later\n';
    expect(find(text)).toBe('crlf');
    expect(parsePgpass(text).map((e) => e.lineNumber)).toEqual([3, 5, 6]);
  });

  it('takes the first matching line', () => {
    expect(find('*:*:*:*:first\ndb.example.com:5432:replication:rep:second')).toBe('first');
  });

  it('matches localhost for the default socket directories and an empty host', () => {
    expect(pgpassHostName('/tmp')).toBe('localhost');
    expect(pgpassHostName('/var/run/postgresql')).toBe('localhost');
    expect(pgpassHostName('/var/run/postgresql/')).toBe('localhost');
    expect(pgpassHostName('')).toBe('localhost');
    expect(pgpassHostName('/custom/sock')).toBe('/custom/sock');
    expect(find('localhost:5432:replication:rep:sock', { host: '/tmp' })).toBe('sock');
    expect(find('/custom/sock:5432:replication:rep:custom', { host: '/custom/sock' })).toBe('custom');
  });

  it('gives nothing for an empty user or database, like libpq', () => {
    expect(find('*:*:*:*:x', { user: '' })).toBeUndefined();
    expect(find('*:*:*:*:x', { dbname: '' })).toBeUndefined();
  });

  it('builds the key libpq uses for a replication connection', () => {
    const hooks = { pathExists: (p: string) => p === '/tmp', osUser: () => 'me', platform: 'linux' as const };
    const o = resolveConnectionOptions({ env: {}, connectionString: 'host=db port=6543 user=rep dbname=app' }, hooks);
    expect(pgpassKeyFor(o)).toEqual({ host: 'db', port: 6543, dbname: 'replication', user: 'rep' });
    const a = resolveConnectionOptions({ env: {}, hostaddr: '10.1.2.3', user: 'rep' }, hooks);
    expect(pgpassKeyFor(a)).toMatchObject({ host: '10.1.2.3' });
    const s = resolveConnectionOptions({ env: {}, user: 'rep' }, hooks);
    expect(pgpassHostName(pgpassKeyFor(s).host)).toBe('localhost');
  });
});

describe('lookupPgpass (file)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgbb-pgpass-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a 0600 file', async () => {
    const file = join(dir, 'ok');
    await writeFile(file, 'db.example.com:5432:replication:rep:fromfile\n');
    await chmod(file, 0o600);
    expect(await lookupPgpass(file, key)).toEqual({ password: 'fromfile' });
    expect(await lookupPgpass(file, { ...key, user: 'other' })).toEqual({});
  });

  it("refuses a group- or world-readable file with libpq's warning", async () => {
    const file = join(dir, 'open');
    await writeFile(file, '*:*:*:*:leaked\n');
    for (const mode of [0o640, 0o604, 0o644, 0o610]) {
      await chmod(file, mode);
      const r = await lookupPgpass(file, key);
      expect(r.password).toBeUndefined();
      expect(r.warning).toBe(`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`);
    }
    await chmod(file, 0o400);
    expect(await lookupPgpass(file, key)).toEqual({ password: 'leaked' });
  });

  it('refuses something that is not a regular file', async () => {
    const sub = join(dir, 'adir');
    await mkdir(sub);
    expect(await lookupPgpass(sub, key)).toEqual({ warning: `password file "${sub}" is not a plain file` });
  });

  it('gives nothing for a missing file', async () => {
    expect(await lookupPgpass(join(dir, 'missing'), key)).toEqual({});
  });
});
