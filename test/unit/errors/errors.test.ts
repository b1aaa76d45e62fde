// The error model at run time: advice kept apart and appended to the message, toJSON for structured
// logs, isPgBackupError narrowing by code, and class names that survive printing.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  ChecksumFailureError,
  ConnectionError,
  IoError,
  isPgBackupError,
  PgBackupError,
  ServerError,
  RepositoryMismatchError,
  StorageError,
  PgBinariesNotFoundError,
  TarError,
  WalArchiveGapError,
  type PgBackupErrorCode,
} from '../../../src/entries/errors.js';
import * as errors from '../../../src/entries/errors.js';
import { parseLsn } from '../../../src/lsn.js';
import { describeSocketError } from '../../../src/connection/socket.js';
import { resolveConnectionOptions } from '../../../src/connection/options.js';

describe('PgBackupError advice', () => {
  it('keeps the advice alone and appends it to the message on its own line', () => {
    const err = new IoError('could not write "base/1/2": no space left on device', {
      path: '/b/base/1/2',
      syscallCode: 'ENOSPC',
      advice: 'free some space or choose another target directory',
    });
    expect(err.code).toBe('ERR_PGBB_IO');
    expect(err.advice).toBe('free some space or choose another target directory');
    expect(err.message).toBe('could not write "base/1/2": no space left on device\nfree some space or choose another target directory');
  });

  it('is undefined when there is none, and the message is left as given', () => {
    const err = new TarError('bad header checksum at offset 512', { offset: 512 });
    expect(err.advice).toBeUndefined();
    expect(err.message).toBe('bad header checksum at offset 512');
    expect(Object.hasOwn(err, 'cause')).toBe(false);
  });

  it('ERR_PGBB_SERVER: the message carries severity, DETAIL, HINT and advice; serverMessage the primary message', () => {
    const err = new ServerError(
      {
        severity: 'FATAL',
        severityCode: 'FATAL',
        sqlState: '28000',
        message: 'no pg_hba.conf entry for replication connection',
        detail: 'd',
        hint: 'h',
      },
      'add a replication line to pg_hba.conf',
    );
    expect(err.message).toBe(
      'FATAL: no pg_hba.conf entry for replication connection\nDETAIL: d\nHINT: h\nadd a replication line to pg_hba.conf',
    );
    expect(err.serverMessage).toBe('no pg_hba.conf entry for replication connection');
    expect(err.advice).toBe('add a replication line to pg_hba.conf');
  });

  it('ERR_PGBB_CHECKSUM_FAILURE: says what was found, and advises not to trust the backup', () => {
    const err = new ChecksumFailureError([{ file: 'base/5/16384', blocks: [0, 3], count: 2 }]);
    expect(err.message.split('\n')[0]).toBe('the server found 2 data page checksum failures in file base/5/16384');
    expect(err.advice).toMatch(/must not be trusted/);
    expect(err.message.endsWith(err.advice!)).toBe(true);
  });

  it('ERR_PGBB_CONNECTION: a refused connection says what to check as advice', () => {
    const o = resolveConnectionOptions({ host: '127.0.0.1', port: 1, user: 'u', env: {} });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const err = describeSocketError(refused, o, 'connect') as ConnectionError;
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.syscallCode).toBe('ECONNREFUSED');
    expect(err.message.split('\n')[0]).toMatch(/^could not connect to the server at .*127\.0\.0\.1.*ECONNREFUSED/);
    expect(err.advice).toMatch(/listen_addresses/);
    expect(err.cause).toBe(refused);
  });
});

describe('PgBackupError.toJSON', () => {
  it('ERR_PGBB_SERVER: keeps name, code, message, advice and every server field', () => {
    const err = new ServerError(
      { severity: 'ERROR', sqlState: '42704', message: 'replication slot "s" does not exist', hint: 'h' },
      'create the slot first',
    );
    const json = JSON.parse(JSON.stringify(err)) as Record<string, unknown>;
    expect(json).toEqual({
      name: 'ServerError',
      code: 'ERR_PGBB_SERVER',
      message: err.message,
      advice: 'create the slot first',
      severity: 'ERROR',
      sqlState: '42704',
      hint: 'h',
      serverMessage: 'replication slot "s" does not exist',
    });
    expect(Object.keys(json).slice(0, 4)).toEqual(['name', 'code', 'message', 'advice']);
  });

  it('ERR_PGBB_IO: keeps path and syscallCode, and the cause in brief', () => {
    const cause = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const err = new IoError('could not write', { cause, path: '/b/x', syscallCode: 'ENOSPC' });
    expect(err.toJSON()).toEqual({
      name: 'IoError',
      code: 'ERR_PGBB_IO',
      message: 'could not write',
      path: '/b/x',
      syscallCode: 'ENOSPC',
      cause: { name: 'Error', message: 'ENOSPC: no space left on device', code: 'ENOSPC' },
    });
  });

  it('ERR_PGBB_CHECKSUM_FAILURE: keeps the failures', () => {
    const failures = [{ file: 'base/5/1', blocks: [7], count: 1 }];
    const json = new ChecksumFailureError(failures).toJSON();
    expect(json).toMatchObject({ name: 'ChecksumFailureError', code: 'ERR_PGBB_CHECKSUM_FAILURE', failures, totalFailures: 1 });
    expect(json.advice).toMatch(/must not be trusted/);
  });
});

describe('isPgBackupError', () => {
  it('recognises every class, and narrows to the class of a code', () => {
    const classes = Object.values(errors).filter(
      (v): v is typeof PgBackupError => typeof v === 'function' && (v === PgBackupError || v.prototype instanceof PgBackupError),
    );
    expect(classes.length).toBe(31);
    const err: unknown = new ServerError({ severity: 'ERROR', sqlState: '55006', message: 'slot in use' });
    expect(isPgBackupError(err)).toBe(true);
    expect(isPgBackupError(err, 'ERR_PGBB_SERVER')).toBe(true);
    expect(isPgBackupError(err, 'ERR_PGBB_IO')).toBe(false);
    expect(isPgBackupError(new Error('x'))).toBe(false);
    if (isPgBackupError(err) && err.code === 'ERR_PGBB_SERVER') expect(err.sqlState).toBe('55006');
  });

  it('each subclass carries its own code and prints its own name', () => {
    const seen = new Map<PgBackupErrorCode, string>();
    for (const [name, Ctor] of Object.entries(errors)) {
      if (typeof Ctor !== 'function' || !(Ctor.prototype instanceof PgBackupError)) continue;
      const err =
        name === 'ServerError'
          ? new ServerError({ severity: 'ERROR', sqlState: 'XX000', message: 'm' })
          : name === 'ChecksumFailureError'
            ? new ChecksumFailureError([])
            : name === 'WalArchiveGapError'
              ? new WalArchiveGapError('m', { missingFrom: parseLsn('0/3000000') })
              : name === 'StorageError'
                ? new StorageError('m', { operation: 'put', key: 'k' })
                : name === 'RepositoryMismatchError'
                  ? new RepositoryMismatchError('m', {
                      expected: { systemIdentifier: '1', majorVersion: 17 },
                      actual: { systemIdentifier: '2', majorVersion: 17 },
                    })
                  : name === 'PgBinariesNotFoundError'
                    ? new PgBinariesNotFoundError('m', { major: 17 })
                    : new (Ctor as unknown as new (m: string) => PgBackupError)('m');
      expect(err.name, name).toBe(name);
      expect(err.constructor.name).toBe(name);
      expect(inspect(err).startsWith(`${name}: `), inspect(err)).toBe(true);
      expect(seen.has(err.code), `${err.code} used by ${seen.get(err.code)} and ${name}`).toBe(false);
      seen.set(err.code, name);
    }
    expect(seen.size).toBe(30);
  });
});
