// Type tests (STYLE practice 12): narrowing a caught error by its literal `code` gives the class of that
// code. `npm run typecheck` (tsc over test/) checks the expectTypeOf lines; vitest runs them as no-ops.
import { describe, expectTypeOf, it } from 'vitest';
import type {
  AnyPgBackupError,
  ChecksumFailureError,
  ConfigError,
  IoError,
  PgBackupErrorByCode,
  PgBackupErrorCode,
  ServerError,
  VerifyError,
} from '../../../src/entries/errors.js';
import { isPgBackupError, PgBackupError } from '../../../src/index.js';

describe('error narrowing by code', () => {
  it('isPgBackupError(err) and err.code give the class of that code', () => {
    const err: unknown = new PgBackupError('ERR_PGBB_CONFIG', 'x');
    if (isPgBackupError(err)) {
      expectTypeOf(err).toEqualTypeOf<AnyPgBackupError>();
      if (err.code === 'ERR_PGBB_SERVER') {
        expectTypeOf(err).toEqualTypeOf<ServerError>();
        expectTypeOf(err.sqlState).toEqualTypeOf<string>();
      }
      if (err.code === 'ERR_PGBB_IO') expectTypeOf(err.syscallCode).toEqualTypeOf<string | undefined>();
      switch (err.code) {
        case 'ERR_PGBB_CHECKSUM_FAILURE':
          expectTypeOf(err).toEqualTypeOf<ChecksumFailureError>();
          break;
        case 'ERR_PGBB_CONFIG':
          expectTypeOf(err).toEqualTypeOf<ConfigError>();
          break;
        default:
          expectTypeOf(err.advice).toEqualTypeOf<string | undefined>();
      }
    }
  });

  it('isPgBackupError(err, code) narrows to that class at once', () => {
    const err: unknown = undefined;
    if (isPgBackupError(err, 'ERR_PGBB_VERIFY')) expectTypeOf(err).toEqualTypeOf<VerifyError>();
    if (isPgBackupError(err, 'ERR_PGBB_IO')) expectTypeOf(err).toEqualTypeOf<IoError>();
  });

  it('maps every code to a class whose code is that literal', () => {
    expectTypeOf<keyof PgBackupErrorByCode>().toEqualTypeOf<PgBackupErrorCode>();
    expectTypeOf<PgBackupErrorByCode['ERR_PGBB_SERVER']['code']>().toEqualTypeOf<'ERR_PGBB_SERVER'>();
    type Consistent = { [C in PgBackupErrorCode]: PgBackupErrorByCode[C]['code'] extends C ? true : false };
    expectTypeOf<Consistent[PgBackupErrorCode]>().toEqualTypeOf<true>();
    // A code the library does not have is refused.
    // @ts-expect-error 'ERR_PGBB_NOPE' is not a PgBackupErrorCode
    isPgBackupError(undefined, 'ERR_PGBB_NOPE');
  });
});
