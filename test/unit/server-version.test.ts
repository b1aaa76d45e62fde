import { describe, expect, it } from 'vitest';
import { UnsupportedServerError } from '../../src/errors.js';
import { checkServerVersion, MAX_SERVER_MAJOR, MIN_SERVER_MAJOR, serverMajorOf } from '../../src/server-version.js';

const where = '"db", port 5432';

describe('server-version policy', () => {
  it('supports 13 to 18', () => {
    expect([MIN_SERVER_MAJOR, MAX_SERVER_MAJOR]).toEqual([13, 18]);
    expect(serverMajorOf(170002)).toBe(17);
    for (const num of [130000, 150012, 180000, 189999]) {
      expect(() => checkServerVersion({ serverVersionNum: num, endpoint: where })).not.toThrow();
    }
  });

  it('refuses a server newer than the newest tested major, saying so', () => {
    let err: unknown;
    try {
      checkServerVersion({ serverVersionNum: 190000, serverVersion: '19devel', endpoint: where });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedServerError);
    expect((err as UnsupportedServerError).code).toBe('ERR_PGBB_UNSUPPORTED_SERVER');
    expect((err as Error).message).toBe(
      'server major 19 is newer than the newest PostgreSQL version pg-basebackup is tested with (18): ' +
        'the server at "db", port 5432 runs PostgreSQL 19devel (server_version_num 190000); ' +
        'use the pg_basebackup of that server version, or a pg-basebackup release tested with PostgreSQL 19',
    );
  });

  it('refuses a server older than 13, naming the range', () => {
    expect(() => checkServerVersion({ serverVersionNum: 120015, endpoint: where })).toThrow(
      /runs PostgreSQL 120015 \(server_version_num 120015\); pg-basebackup supports PostgreSQL 13 to 18/,
    );
  });
});
