// The connection layer and the replication commands against real servers of every major
// from testMajors(). (The TLS/authentication matrix lives in tls-auth.test.ts.)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReplicationConnection } from '../../src/connection/connection.js';
import type { ServerNotice } from '../../src/connection/types.js';
import { type ConnectionError, PgBackupError, type ServerError } from '../../src/errors.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import type { StreamMessage } from '../../src/protocol/messages.js';
import {
  createReplicationSlot,
  dropReplicationSlot,
  identifySystem,
  readReplicationSlot,
  show,
  timelineHistory,
} from '../../src/replication/commands.js';
import { MAX_SERVER_MAJOR, MIN_SERVER_MAJOR } from '../../src/server-version.js';
import { parseWalSegmentSize, segmentStartOf } from '../../src/wal/segments.js';
import { chownToServer, freePort, ROLES, testMajors, type Cluster } from '../harness/index.js';
import { clustersForMajors, trustTcp } from '../harness/suite.js';

const majors = testMajors();
const clusters = clustersForMajors(majors, 'connection');
const cluster = (major: number): Cluster => clusters.get(major);
const tcp = trustTcp;

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** BASE_BACKUP with the syntax of the server's version (no WAL, fast checkpoint). */
function baseBackupSql(major: number): string {
  return major >= 15 ? "BASE_BACKUP (LABEL 'pgbb-conn-test', CHECKPOINT 'fast')" : "BASE_BACKUP LABEL 'pgbb-conn-test' FAST";
}

describe.each(majors)('PostgreSQL %i', (major) => {
  it('connects with trust over TCP and reads the startup parameters', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c, { applicationName: 'pgbb-conn-test' }));
    try {
      expect(conn.state).toBe('ready');
      expect(conn.serverMajor).toBe(major);
      expect(conn.serverVersionNum).toBe(c.versionNum);
      expect(conn.backendPid).toBeGreaterThan(0);
      expect(conn.parameters.get('server_version')).toBe(c.version);
      expect(conn.encrypted).toBe(false);
      const rows = await c.sql<{ application_name: string; backend_type: string }>(
        'SELECT application_name, backend_type FROM pg_stat_activity WHERE pid = $1',
        [conn.backendPid],
      );
      expect(rows).toEqual([{ application_name: 'pgbb-conn-test', backend_type: 'walsender' }]);
    } finally {
      await conn.close();
    }
    expect(conn.state).toBe('closed');
  });

  it('accepts the server (a supported major), given a conninfo string or a URI in place of options', async () => {
    const c = cluster(major);
    expect(major).toBeGreaterThanOrEqual(MIN_SERVER_MAJOR);
    expect(major).toBeLessThanOrEqual(MAX_SERVER_MAJOR);
    const host = c.host.includes(':') ? `[${c.host}]` : c.host;
    for (const conninfo of [
      `host=${c.host} port=${c.port} user=${ROLES.trust} sslmode=disable connect_timeout=20`,
      `postgresql://${ROLES.trust}@${host}:${c.port}/?sslmode=disable&connect_timeout=20`,
    ]) {
      const conn = await ReplicationConnection.connect(conninfo);
      try {
        expect(conn.serverVersionNum).toBe(c.versionNum);
        expect((await identifySystem(conn)).timeline).toBe(1);
      } finally {
        await conn.close();
      }
    }
  });

  it('connects over the Unix socket', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect({ host: c.socketDir, port: c.port, user: ROLES.trust, env: {} });
    try {
      expect((await identifySystem(conn)).timeline).toBe(1);
    } finally {
      await conn.close();
    }
  });

  it('logs in with MD5 and with SCRAM (plain and SCRAM-SHA-256-PLUS over TLS)', async () => {
    const c = cluster(major);
    for (const opts of [
      tcp(c, { user: ROLES.md5, password: ROLES.secret }),
      tcp(c, { user: ROLES.scram, password: ROLES.secret }),
      tcp(c, { user: ROLES.scram, password: ROLES.secret, sslmode: 'require', channelBinding: 'require' }),
    ]) {
      const conn = await ReplicationConnection.connect(opts);
      expect(conn.encrypted).toBe(opts.sslmode === 'require');
      expect((await identifySystem(conn)).dbName).toBeNull();
      await conn.close();
    }
  });

  it('reads the password from a password file only when asked', async () => {
    const c = cluster(major);
    const passfile = join(clusters.tmp, `pgpass-${major}`);
    writeFileSync(passfile, `127.0.0.1:${c.port}:replication:${ROLES.scram}:${ROLES.secret.replace(/[:\\]/g, '\\$&')}\n`, { mode: 0o600 });
    const conn = await ReplicationConnection.connect(tcp(c, { user: ROLES.scram, passfile }));
    await conn.close();
    const err = await errorOf(ReplicationConnection.connect(tcp(c, { user: ROLES.scram, passfile: join(clusters.tmp, 'none') })));
    expect(err).toMatchObject({ code: 'ERR_PGBB_AUTH' });
    expect(err.message).toMatch(/PGPASSWORD/);
  });

  it('says the password was wrong without echoing it', async () => {
    const c = cluster(major);
    const err = await errorOf(ReplicationConnection.connect(tcp(c, { user: ROLES.scram, password: 'Wr0ng-S3cret' })));
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).sqlState).toBe('28P01');
    expect(err.message).toMatch(/password was rejected/);
    expect(err.message).not.toContain('Wr0ng-S3cret');
  });

  it('gives pg_hba.conf advice when there is no replication entry', async () => {
    const c = cluster(major);
    const err = await errorOf(ReplicationConnection.connect({ host: c.socketDir, port: c.port, user: ROLES.noReplication, env: {} }));
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).sqlState).toBe('28000');
    expect(err.message).toMatch(/local {3}replication pgbb_norepl/);
  });

  it('gives REPLICATION-attribute advice to a role without it', async () => {
    const c = cluster(major);
    const err = await errorOf(ReplicationConnection.connect(tcp(c, { user: ROLES.noReplication })));
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect(err.message).toMatch(/ALTER ROLE "pgbb_norepl" REPLICATION/);
  });

  it('runs IDENTIFY_SYSTEM, SHOW and TIMELINE_HISTORY', async () => {
    const c = cluster(major);
    await using conn = await ReplicationConnection.connect(tcp(c));
    const id = await identifySystem(conn);
    const [control] = await c.sql<{ system_identifier: string }>('SELECT system_identifier::text FROM pg_control_system()');
    expect(id.systemId).toBe(control!.system_identifier);
    expect(id.timeline).toBe(1);
    expect(id.dbName).toBeNull();
    const [flush] = await c.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    expect(id.xlogPos).toBeGreaterThan(0n);
    expect(id.xlogPos).toBeLessThanOrEqual(parseLsn(flush!.lsn));
    expect(parseWalSegmentSize(await show(conn, 'wal_segment_size'))).toBe(16 * 1024 * 1024);
    expect(await show(conn, 'server_version_num')).toBe(String(c.versionNum));
    const err = await errorOf(timelineHistory(conn, 1));
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect(err.message).toMatch(/Timeline 1 is the first timeline/);
    expect(conn.state).toBe('ready');
  });

  it('creates, reads and drops permanent and temporary slots', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c));
    const name = `pgbb_conn_${major}`;
    const temp = `pgbb_temp_${major}`;
    try {
      const created = await createReplicationSlot(conn, { name });
      expect(created.slotName).toBe(name);
      await createReplicationSlot(conn, { name: temp, temporary: true });
      const rows = await c.sql<{ slot_name: string; temporary: boolean; has_lsn: boolean }>(
        "SELECT slot_name, temporary, restart_lsn IS NOT NULL AS has_lsn FROM pg_replication_slots WHERE slot_name LIKE 'pgbb\\_%' ORDER BY 1",
      );
      expect(rows).toEqual([
        { slot_name: name, temporary: false, has_lsn: true },
        { slot_name: temp, temporary: true, has_lsn: true },
      ]);
      const dup = await errorOf(createReplicationSlot(conn, { name }));
      expect(dup).toMatchObject({ code: 'ERR_PGBB_SERVER' });
      expect((dup as ServerError).sqlState).toBe('42710');
      expect(dup.message).toMatch(/pg_drop_replication_slot/);

      if (major >= 15) {
        const info = await readReplicationSlot(conn, name);
        expect(info?.slotType).toBe('physical');
        expect(info?.restartLsn).toBeGreaterThan(0n);
        expect(info?.restartTli).toBe(1);
        expect(await readReplicationSlot(conn, 'pgbb_no_such_slot')).toBeNull();
      } else {
        await expect(readReplicationSlot(conn, name)).rejects.toMatchObject({ code: 'ERR_PGBB_UNSUPPORTED_SERVER' });
      }

      await dropReplicationSlot(conn, name);
      const missing = await errorOf(dropReplicationSlot(conn, name, { wait: true }));
      expect((missing as ServerError).sqlState).toBe('42704');
      expect(missing.message).toMatch(/no replication slot named/);
    } finally {
      await conn.close();
    }
    // The temporary slot went away with its connection.
    await expect
      .poll(async () => (await c.sql('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [temp])).length, { timeout: 10_000 })
      .toBe(0);
  });

  it('allows one command at a time (StateError)', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c));
    try {
      conn.stream('IDENTIFY_SYSTEM'); // sent, never consumed
      expect(conn.state).toBe('busy');
      await expect(conn.query('IDENTIFY_SYSTEM')).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
      expect(() => conn.sendCopyData(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'ERR_PGBB_STATE' }));
    } finally {
      conn.destroy();
    }
  });

  it('refuses SQL in replication mode with a ServerError and stays usable', async () => {
    const c = cluster(major);
    await using conn = await ReplicationConnection.connect(tcp(c));
    const err = await errorOf(conn.query('SELECT 1'));
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).serverMessage).toMatch(/WAL sender|replication/i);
    expect(conn.state).toBe('ready');
    expect((await identifySystem(conn)).timeline).toBe(1);
  });

  it('streams a BASE_BACKUP with backpressure and delivers its NOTICE as an event', async () => {
    const c = cluster(major);
    const notices: ServerNotice[] = [];
    let copyBytes = 0;
    const types = new Set<string>();
    const conn2 = await ReplicationConnection.connect(tcp(c), { highWaterMarkBytes: 64 * 1024 });
    conn2.on('notice', (n) => notices.push(n));
    try {
      let slowed = 0;
      for await (const m of conn2.stream(baseBackupSql(major))) {
        types.add(m.type);
        if (m.type === 'CopyData') {
          copyBytes += m.payload.length;
          // A slow consumer for a while: the server must wait for us.
          if (slowed++ < 20) await new Promise((r) => setTimeout(r, 5));
        }
        expect(() => conn2.stream('IDENTIFY_SYSTEM')).toThrow(expect.objectContaining({ code: 'ERR_PGBB_STATE' }));
      }
      expect(conn2.state).toBe('ready');
    } finally {
      await conn2.close();
    }
    expect(types.has('CopyOutResponse')).toBe(true);
    expect(types.has('CopyData')).toBe(true);
    expect(copyBytes).toBeGreaterThan(1024 * 1024);
    // Without archiving, pg_backup_stop's NOTICE says WAL must be copied by other means.
    expect(notices.some((n) => /WAL archiving is not enabled/.test(n.message))).toBe(true);
  });

  it('aborts a running COPY through an AbortSignal and destroys the connection', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c));
    const closes: (Error | undefined)[] = [];
    conn.on('close', (e) => closes.push(e));
    const ac = new AbortController();
    const seen: StreamMessage['type'][] = [];
    const err = await errorOf(
      (async () => {
        for await (const m of conn.stream(baseBackupSql(major), { signal: ac.signal })) {
          seen.push(m.type);
          if (m.type === 'CopyData') ac.abort();
        }
      })(),
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    expect(seen).toContain('CopyData');
    expect(conn.state).toBe('closed');
    await expect.poll(() => closes.length).toBe(1);
    expect(closes[0]).toMatchObject({ code: 'ERR_PGBB_ABORTED' });
    await conn.close(); // idempotent after destroy
    expect(closes).toHaveLength(1);
    await expect(conn.query('IDENTIFY_SYSTEM')).rejects.toMatchObject({ code: 'ERR_PGBB_STATE' });
  });

  it('turns a walsender terminated mid-stream into a typed ServerError', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c));
    const id = await identifySystem(conn);
    const start = segmentStartOf(id.xlogPos, 16 * 1024 * 1024);
    const err = await errorOf(
      (async () => {
        for await (const m of conn.stream(`START_REPLICATION PHYSICAL ${formatLsn(start, { padded: false })} TIMELINE ${id.timeline}`)) {
          if (m.type === 'CopyBothResponse') {
            expect(conn.state).toBe('copy-both');
            await c.sql('SELECT pg_terminate_backend($1)', [conn.backendPid]);
          }
        }
      })(),
    );
    expect(err).toMatchObject({ code: 'ERR_PGBB_SERVER' });
    expect((err as ServerError).sqlState).toBe('57P01');
    expect(conn.state).toBe('closed');
  });
  // Last in this block: it moves the cluster to timeline 2.
  it('reads TIMELINE_HISTORY after a promotion', async () => {
    const c = cluster(major);
    await c.stop('fast');
    const signal = join(c.dataDir, 'standby.signal');
    writeFileSync(signal, '');
    await chownToServer(signal);
    await c.start();
    const [promoted] = await c.sql<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
    expect(promoted!.ok).toBe(true);
    await using conn = await ReplicationConnection.connect(tcp(c));
    const id = await identifySystem(conn);
    expect(id.timeline).toBe(2);
    const h = await timelineHistory(conn, 2);
    expect(h.fileName).toBe('00000002.history');
    expect(h.content.equals(readFileSync(join(c.dataDir, 'pg_wal', '00000002.history')))).toBe(true);
    expect(h.entries).toHaveLength(1);
    expect(h.entries[0]!.parentTli).toBe(1);
    expect(h.entries[0]!.switchLsn).toBeGreaterThan(0n);
    expect(h.entries[0]!.switchLsn).toBeLessThanOrEqual(id.xlogPos);
  });
});

describe('connection failures', () => {
  const major = Math.max(...majors);

  it('names host and port and gives advice when the connection is refused', async () => {
    const port = await freePort();
    const err = await errorOf(ReplicationConnection.connect({ host: '127.0.0.1', port, user: 'x', sslmode: 'disable', env: {} }));
    expect(err).toMatchObject({ code: 'ERR_PGBB_CONNECTION' });
    expect((err as ConnectionError).syscallCode).toBe('ECONNREFUSED');
    expect(err.message).toContain(`port ${port}`);
    expect(err.message).toMatch(/listen_addresses/);
  });

  it('names the socket path when there is no socket', async () => {
    const err = await errorOf(ReplicationConnection.connect({ host: clusters.tmp, port: 1, user: 'x', env: {} }));
    expect(err).toMatchObject({ code: 'ERR_PGBB_CONNECTION' });
    expect((err as ConnectionError).syscallCode).toBe('ENOENT');
    expect(err.message).toContain(`${clusters.tmp}/.s.PGSQL.1`);
  });

  it('stops the server mid-stream: a typed error, never a hang', async () => {
    const c = cluster(major);
    const conn = await ReplicationConnection.connect(tcp(c));
    const id = await identifySystem(conn);
    const start = segmentStartOf(id.xlogPos, 16 * 1024 * 1024);
    const err = await errorOf(
      (async () => {
        for await (const m of conn.stream(`START_REPLICATION PHYSICAL ${formatLsn(start)} TIMELINE ${id.timeline}`)) {
          if (m.type === 'CopyBothResponse') await c.stop('immediate');
        }
      })(),
    );
    expect(err).toBeInstanceOf(PgBackupError);
    expect(['ERR_PGBB_SERVER', 'ERR_PGBB_CONNECTION_CLOSED', 'ERR_PGBB_CONNECTION']).toContain((err as PgBackupError).code);
    expect(conn.state).toBe('closed');
    await c.start();
  });
});
