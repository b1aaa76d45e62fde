import { describe, expect, it } from 'vitest';
import { majorOfVersionLine } from '../../../src/rehearse/binaries.js';
import { safeSettings } from '../../../src/rehearse/server.js';
import { splitSqlStatements } from '../../../src/rehearse/sql-split.js';

describe('splitSqlStatements', () => {
  it('splits at top-level semicolons only', () => {
    expect(
      splitSqlStatements(`
        -- a comment; not a statement
        SELECT ';' = ';';
        SELECT $$a;b$$ <> $x$;$x$; /* c; */ SELECT "we;ird" IS NULL FROM (SELECT NULL AS "we;ird") s
        ;
        -- trailing comment only
      `),
    ).toEqual([
      "-- a comment; not a statement\n        SELECT ';' = ';'",
      'SELECT $$a;b$$ <> $x$;$x$',
      '/* c; */ SELECT "we;ird" IS NULL FROM (SELECT NULL AS "we;ird") s',
    ]);
  });

  it('keeps a last statement without a semicolon and drops empty ones', () => {
    expect(splitSqlStatements(';;SELECT true')).toEqual(['SELECT true']);
    expect(splitSqlStatements('  ;\n-- nothing\n')).toEqual([]);
  });
});

describe('majorOfVersionLine', () => {
  it('reads the major of postgres and pg_config version lines', () => {
    expect(majorOfVersionLine('postgres (PostgreSQL) 17.10\n')).toBe(17);
    expect(majorOfVersionLine('PostgreSQL 15.14 (Debian 15.14-0+deb12u1)\n')).toBe(15);
    expect(majorOfVersionLine('postgres (PostgreSQL) 18beta1\n')).toBe(18);
    expect(majorOfVersionLine('something else')).toBeUndefined();
  });
});

describe('safeSettings', () => {
  it('keeps the server off the network and away from the archive and any primary', () => {
    const s = safeSettings({ root: '/r', dataDir: '/r/data', socketDir: '/r/socket', hbaFile: '/r/pg_hba.conf' }, 50000);
    expect(s).toMatchObject({
      listen_addresses: '',
      port: '50000',
      unix_socket_directories: '/r/socket',
      hba_file: '/r/pg_hba.conf',
      archive_mode: 'off',
      primary_conninfo: '',
      primary_slot_name: '',
    });
  });
});
