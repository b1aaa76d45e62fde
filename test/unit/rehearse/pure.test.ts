import { describe, expect, it } from 'vitest';
import { majorOfVersionLine } from '../../../src/rehearse/binaries.js';
import { safeSettings } from '../../../src/rehearse/server.js';
import { splitSqlStatements } from '../../../src/rehearse/sql-split.js';
import { bootstrapSuperuser } from '../../../src/rehearse/bootstrap-role.js';

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
    const scratch = { root: '/r', dataDir: '/r/data', socketDir: '/r/socket', hbaFile: '/r/pg_hba.conf', identFile: '/r/pg_ident.conf' };
    const s = safeSettings(scratch, 50000, 17);
    expect(s).toMatchObject({
      listen_addresses: '',
      port: '50000',
      unix_socket_directories: '/r/socket',
      hba_file: '/r/pg_hba.conf',
      archive_mode: 'off',
      primary_conninfo: '',
      primary_slot_name: '',
      data_directory: '/r/data',
      external_pid_file: '',
      ident_file: '/r/pg_ident.conf',
    });
    expect(s).not.toHaveProperty('stats_temp_directory');
    expect(safeSettings(scratch, 50000, 14)).toMatchObject({ stats_temp_directory: 'pg_stat_tmp' });
  });
});

describe('bootstrapSuperuser', () => {
  /** A heap page holding pg_authid-like tuples: (xmax, oid, rolname). */
  function page(tuples: { xmax: number; oid: number; name: string }[]): Buffer {
    const p = Buffer.alloc(8192);
    p.writeUInt16LE(8192 | 4, 18); // pd_pagesize_version
    let upper = 8192;
    tuples.forEach((t, i) => {
      const hoff = 24;
      const len = hoff + 4 + 64 + 8;
      upper -= len;
      p.writeUInt32LE(t.xmax, upper + 4);
      p[upper + 22] = hoff;
      p.writeUInt32LE(t.oid, upper + hoff);
      p.write(t.name, upper + hoff + 4, 'utf8');
      p.writeUInt32LE((upper | (1 << 15) | (len << 17)) >>> 0, 24 + i * 4);
    });
    p.writeUInt16LE(24 + tuples.length * 4, 12); // pd_lower
    p.writeUInt16LE(upper, 14);
    return p;
  }

  it("finds the live version of OID 10's name", () => {
    const heap = Buffer.concat([
      page([
        { xmax: 0, oid: 16384, name: 'app' },
        { xmax: 742, oid: 10, name: 'postgres' },
      ]),
      page([{ xmax: 0, oid: 10, name: 'dba' }]),
    ]);
    expect(bootstrapSuperuser(heap)).toBe('dba');
    expect(bootstrapSuperuser(Buffer.alloc(8192))).toBeUndefined();
  });
});
