import { describe, expect, it } from 'vitest';
import { buildBaseBackupCommand } from '../../../src/backup/command.js';
import { resolveBaseBackupOptions, type BaseBackupOptions } from '../../../src/backup/options.js';

// Expected strings are what pg_basebackup (streamutil.c AppendPlainCommandOption: separator,
// then " NAME") sends for the same flags: two spaces between options, `( ` after the paren.
const cmd = (o: BaseBackupOptions, major: number) => buildBaseBackupCommand(resolveBaseBackupOptions(o), major);

describe('buildBaseBackupCommand', () => {
  it('server-side compression after TARGET (pg_basebackup --compress=server-zstd:level=9,long); client-side sends nothing', () => {
    expect(cmd({ compression: 'server-zstd:level=9,long' }, 16)).toBe(
      "BASE_BACKUP ( LABEL 'pg_basebackup base backup',  PROGRESS,  WAIT 0,  MANIFEST 'yes',  TARGET 'client',  " +
        "COMPRESSION 'zstd',  COMPRESSION_DETAIL 'level=9,long')",
    );
    expect(cmd({ compression: 'server-gzip' }, 15)).toMatch(/TARGET 'client', {2}COMPRESSION 'gzip'\)$/);
    expect(cmd({ compression: 'client-gzip:5' }, 16)).toBe(cmd({}, 16));
    expect(() => cmd({ compression: 'server-lz4' }, 14)).toThrow(expect.objectContaining({ code: 'ERR_PGBB_COMPRESSION' }));
    expect(() => resolveBaseBackupOptions({ compression: 'gzip:42' })).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
  });

  it('defaults (pg_basebackup -D x -F tar without -F t TABLESPACE_MAP) on 15+', () => {
    expect(cmd({}, 15)).toBe("BASE_BACKUP ( LABEL 'pg_basebackup base backup',  PROGRESS,  WAIT 0,  MANIFEST 'yes',  TARGET 'client')");
    expect(cmd({}, 18)).toBe(cmd({}, 15));
  });

  it('defaults on 13/14: keyword syntax, NOWAIT, no TARGET', () => {
    expect(cmd({}, 13)).toBe("BASE_BACKUP  LABEL 'pg_basebackup base backup'  PROGRESS  NOWAIT  MANIFEST 'yes'");
    expect(cmd({}, 14)).toBe(cmd({}, 13));
  });

  it('pg_basebackup -F t -X fetch -c fast -r 1024 --no-verify-checksums --manifest-checksums=SHA256 -l x', () => {
    const o: BaseBackupOptions = {
      tablespaceMap: true,
      wal: 'fetch',
      checkpoint: 'fast',
      maxRateKBps: 1024,
      verifyChecksums: false,
      manifestChecksums: 'SHA256',
      label: 'x',
    };
    expect(cmd(o, 16)).toBe(
      "BASE_BACKUP ( LABEL 'x',  PROGRESS,  WAL,  CHECKPOINT 'fast',  WAIT 0,  MAX_RATE 1024,  TABLESPACE_MAP,  " +
        "VERIFY_CHECKSUMS 0,  MANIFEST 'yes',  MANIFEST_CHECKSUMS 'SHA256',  TARGET 'client')",
    );
    expect(cmd(o, 13)).toBe(
      "BASE_BACKUP  LABEL 'x'  PROGRESS  WAL  FAST  NOWAIT  MAX_RATE 1024  TABLESPACE_MAP  NOVERIFY_CHECKSUMS  " +
        "MANIFEST 'yes'  MANIFEST_CHECKSUMS 'SHA256'",
    );
  });

  it('pg_basebackup -X none --no-estimate-size --no-manifest: WAIT stays default', () => {
    const o: BaseBackupOptions = { wal: 'none', estimateSize: false, manifest: false, label: 'l' };
    expect(cmd(o, 17)).toBe("BASE_BACKUP ( LABEL 'l',  TARGET 'client')");
    expect(cmd(o, 14)).toBe("BASE_BACKUP  LABEL 'l'");
  });

  it('--manifest-force-encode', () => {
    expect(cmd({ manifestForceEncode: true, estimateSize: false, wal: 'none', label: 'a' }, 15)).toBe(
      "BASE_BACKUP ( LABEL 'a',  MANIFEST 'force-encode',  TARGET 'client')",
    );
  });

  it('explicit waitForWalArchive overrides the WAL-based default both ways', () => {
    expect(cmd({ wal: 'stream', waitForWalArchive: true, label: 'a', estimateSize: false, manifest: false }, 15)).toBe(
      "BASE_BACKUP ( LABEL 'a',  TARGET 'client')",
    );
    expect(cmd({ wal: 'none', waitForWalArchive: false, label: 'a', estimateSize: false, manifest: false }, 13)).toBe(
      "BASE_BACKUP  LABEL 'a'  NOWAIT",
    );
  });

  it('escapes labels: quotes doubled, backslashes literal (repl_scanner has no backslash escapes)', () => {
    expect(cmd({ label: "it's a \\ test", wal: 'none', estimateSize: false, manifest: false }, 15)).toBe(
      "BASE_BACKUP ( LABEL 'it''s a \\ test',  TARGET 'client')",
    );
    expect(cmd({ label: "''", wal: 'none', estimateSize: false, manifest: false }, 13)).toBe("BASE_BACKUP  LABEL ''''''");
  });
});

describe('quoting', () => {
  // One quoting rule for every replication command (src/replication/commands.ts): a label with a quote
  // reaches BASE_BACKUP doubled, and a NUL is refused before anything is sent.
  it('labels go through the shared literal quoting', () => {
    expect(cmd({ label: "a'b" }, 16)).toContain("LABEL 'a''b'");
    expect(cmd({ label: '' }, 13)).toContain("LABEL ''");
    expect(() => cmd({ label: 'a\0b' }, 16)).toThrow(expect.objectContaining({ code: 'ERR_PGBB_CONFIG' }));
  });
});
