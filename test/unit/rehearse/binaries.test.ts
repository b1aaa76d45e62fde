// findPgBinaries against the embedded server builds of the devDependencies: the right major is taken,
// another major or an empty directory is refused with the major named.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isPgBackupError } from '../../../src/errors.js';
import { findPgBinaries } from '../../../src/rehearse/binaries.js';

const pg17 = fileURLToPath(new URL('../../../node_modules/pg17/native/bin', import.meta.url));

describe('findPgBinaries', () => {
  it('takes --pg-bin when its postgres is of the major asked for', async () => {
    await expect(findPgBinaries({ major: 17, pgBin: pg17 })).resolves.toEqual({
      binDir: pg17,
      postgres: `${pg17}/postgres`,
      major: 17,
      pgChecksums: undefined,
    });
  });

  it('refuses another major and a directory without postgres, naming the major and the places', async () => {
    const err = await findPgBinaries({ major: 16, pgBin: pg17 }).catch((e: unknown) => e);
    expect(isPgBackupError(err, 'ERR_PGBB_PG_BINARIES')).toBe(true);
    expect(err).toMatchObject({
      major: 16,
      message: expect.stringContaining(`no PostgreSQL 16 server binaries found (looked in ${pg17} (PostgreSQL 17))`),
    });
    await expect(findPgBinaries({ major: 13, pgBin: '/nonexistent' })).rejects.toMatchObject({
      code: 'ERR_PGBB_PG_BINARIES',
      message: expect.stringContaining('looked in /nonexistent'),
    });
  });

  it('looks in pg_config --bindir and the packagers’ places without --pg-bin', async () => {
    await expect(findPgBinaries({ major: 12, path: '/nonexistent' })).rejects.toMatchObject({
      message: expect.stringContaining('/usr/lib/postgresql/12/bin, /usr/pgsql-12/bin'),
    });
  });
});
