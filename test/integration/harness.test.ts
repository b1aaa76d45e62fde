import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALL_MAJORS,
  debianBinDir,
  makeTempDir,
  oracleBin,
  ROLES,
  serverIdentity,
  startCluster,
  testMajors,
  type Cluster,
} from '../harness/index.js';
import { isPostgres, killPostmasters, livePostmasterPid } from '../harness/teardown.js';

const majors = testMajors();
const clusters = new Map<number, Cluster>();

beforeAll(async () => {
  // Parallel: the per-major templates (initdb) are independent, and startup is mostly waiting.
  const started = await Promise.all(majors.map((major) => startCluster({ major })));
  for (const c of started) clusters.set(c.major, c);
}, 300_000);

afterAll(() => {
  // One line for CI logs: the first cluster of a major includes building the run's template (initdb + roles).
  const parts = [...clusters.values()].map((c) => `${c.major}: prepare ${c.timings.prepareMs} ms, start ${c.timings.startMs} ms`);
  process.stderr.write(`harness timings (parallel start): ${parts.join('; ')}\n`);
});

function cluster(major: number): Cluster {
  const c = clusters.get(major);
  if (!c) throw new Error(`no cluster for ${major}`);
  return c;
}

async function tcpClient(c: Cluster, cfg: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client({ host: c.host, port: c.port, database: 'postgres', ...cfg });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function tryConnect(c: Cluster, cfg: pg.ClientConfig): Promise<{ ssl: boolean } | Error> {
  let client: pg.Client | undefined;
  try {
    client = await tcpClient(c, cfg);
    const { rows } = await client.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    return { ssl: rows[0]!.ssl };
  } catch (err) {
    return err as Error;
  } finally {
    await client?.end().catch(() => undefined);
  }
}

describe('testMajors', () => {
  it('defaults to all six and honours PGBB_TEST_MAJORS', () => {
    const saved = process.env.PGBB_TEST_MAJORS;
    try {
      delete process.env.PGBB_TEST_MAJORS;
      expect(testMajors()).toEqual([...ALL_MAJORS]);
      process.env.PGBB_TEST_MAJORS = '13, 17';
      expect(testMajors()).toEqual([13, 17]);
      process.env.PGBB_TEST_MAJORS = '12';
      expect(() => testMajors()).toThrow(/not one of/);
    } finally {
      if (saved === undefined) delete process.env.PGBB_TEST_MAJORS;
      else process.env.PGBB_TEST_MAJORS = saved;
    }
  });
});

describe.each(majors)('PostgreSQL %i cluster', (major) => {
  it('runs the requested major with the harness configuration', async () => {
    const c = cluster(major);
    const [v] = await c.sql<{ version: string }>('select version()');
    expect(v!.version).toMatch(new RegExp(`^PostgreSQL ${major}\\.`));
    expect(c.version.startsWith(`${major}.`)).toBe(true);
    expect(Math.floor(c.versionNum / 10000)).toBe(major);
    const settings = await c.sql<{ name: string; setting: string }>(`select name, setting from pg_settings where name = any($1)`, [
      [
        'wal_level',
        'data_checksums',
        'max_wal_senders',
        'max_replication_slots',
        'ssl',
        'fsync',
        'listen_addresses',
        'unix_socket_directories',
        'port',
      ],
    ]);
    const s = Object.fromEntries(settings.map((r) => [r.name, r.setting]));
    expect(s).toEqual({
      wal_level: 'replica',
      data_checksums: 'on',
      max_wal_senders: '10',
      max_replication_slots: '10',
      ssl: 'on',
      fsync: 'on',
      listen_addresses: '127.0.0.1',
      unix_socket_directories: c.socketDir,
      port: String(c.port),
    });
    // The server runs as the unprivileged user when we are root (PostgreSQL refuses root).
    const pid = livePostmasterPid(c.dataDir);
    expect(pid).toBeDefined();
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    expect(uid).toBe(serverIdentity()?.uid ?? process.getuid!());
  });

  it('has the roles with the right password hashes', async () => {
    const c = cluster(major);
    const rows = await c.sql<{ rolname: string; rolreplication: boolean; rolcanlogin: boolean; hash: string | null }>(
      `select rolname, rolreplication, rolcanlogin, left(rolpassword, 14) as hash from pg_authid where rolname = any($1) order by rolname`,
      [[ROLES.trust, ROLES.md5, ROLES.scram, ROLES.password, ROLES.sslOnly, ROLES.noReplication]],
    );
    const byName = Object.fromEntries(rows.map((r) => [r.rolname, r]));
    for (const role of [ROLES.trust, ROLES.md5, ROLES.scram, ROLES.password, ROLES.sslOnly]) {
      expect(byName[role], role).toMatchObject({ rolreplication: true, rolcanlogin: true });
    }
    expect(byName[ROLES.noReplication]).toMatchObject({ rolreplication: false, rolcanlogin: true });
    expect(byName[ROLES.trust]!.hash).toBeNull();
    expect(byName[ROLES.md5]!.hash).toMatch(/^md5[0-9a-f]{11}$/);
    expect(byName[ROLES.scram]!.hash).toBe('SCRAM-SHA-256$');
  });

  it('authenticates each role over TCP with its method, TLS or not', async () => {
    const c = cluster(major);
    const password = c.roles.secret;
    for (const user of [c.roles.trust, c.roles.md5, c.roles.scram, c.roles.password]) {
      expect(await tryConnect(c, { user, password }), user).toEqual({ ssl: false });
    }
    expect(await tryConnect(c, { user: c.roles.scram, password: 'wrong' })).toBeInstanceOf(Error);
    const tls = { ca: readFileSync(c.tls!.caFile, 'utf8'), servername: 'localhost' };
    expect(await tryConnect(c, { user: c.roles.scram, password, ssl: tls })).toEqual({ ssl: true });
    // hostssl only: no pg_hba.conf entry without TLS.
    const plain = await tryConnect(c, { user: c.roles.sslOnly, password });
    expect(plain).toBeInstanceOf(Error);
    expect((plain as Error).message).toMatch(/no pg_hba\.conf entry/);
    expect(await tryConnect(c, { user: c.roles.sslOnly, password, ssl: tls })).toEqual({ ssl: true });
  });

  it('restarts on the same port and keeps the pool usable', async () => {
    const c = cluster(major);
    const port = c.port;
    const before = livePostmasterPid(c.dataDir);
    await c.restart();
    expect(c.port).toBe(port);
    expect(livePostmasterPid(c.dataDir)).not.toBe(before);
    const [r] = await c.sql<{ one: number }>('select 1 as one');
    expect(r!.one).toBe(1);
    expect(c.logText()).toMatch(/database system is ready to accept connections/);
  });
});

describe('TLS material', () => {
  const major = majors[0]!;

  it('fails verify-full against 127.0.0.1 (no IP SAN) and verification with the other CA', async () => {
    const c = cluster(major);
    const ca = readFileSync(c.tls!.caFile, 'utf8');
    const otherCa = readFileSync(c.tls!.otherCaFile, 'utf8');
    const user = c.roles.trust;
    const noIp = await tryConnect(c, { user, ssl: { ca } });
    expect(noIp).toBeInstanceOf(Error);
    expect((noIp as NodeJS.ErrnoException).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    const other = await tryConnect(c, { user, ssl: { ca: otherCa, servername: 'localhost' } });
    expect(other).toBeInstanceOf(Error);
    expect((other as NodeJS.ErrnoException).code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    const key = execFileSync('stat', ['-c', '%a %u', c.tls!.serverKeyFile]).toString().trim();
    expect(key).toBe(`600 ${serverIdentity()?.uid ?? process.getuid!()}`);
  });

  it('builds key=value strings and URIs that quote and percent-encode', () => {
    const c = cluster(major);
    expect(c.connectionString()).toBe(`host=127.0.0.1 port=${c.port} dbname=postgres user=rep_trust sslmode=disable`);
    expect(c.connectionString({ user: c.roles.md5, password: c.roles.secret, sslmode: 'require' })).toBe(
      `host=127.0.0.1 port=${c.port} dbname=postgres user=rep_md5 sslmode=require password='p@ss:w/rd %1'`,
    );
    expect(c.connectionUri({ user: c.roles.scram, password: c.roles.secret })).toBe(
      `postgresql://rep_scram:p%40ss%3Aw%2Frd%20%251@127.0.0.1:${c.port}/postgres?sslmode=disable`,
    );
    expect(() => c.pgBin('pg_basebackup')).toThrow(/debianBinDir/);
    expect(existsSync(c.pgBin('postgres'))).toBe(true);
  });
});

describe('clusters without the template, and teardown', () => {
  it('gives a fresh initdb its own system identifier', async () => {
    const major = majors[0]!;
    const fresh = await startCluster({ major, template: false, ssl: false });
    const sysid = async (c: Cluster) =>
      (await c.sql<{ id: string }>('select system_identifier::text as id from pg_control_system()'))[0]!.id;
    expect(await sysid(fresh)).not.toBe(await sysid(cluster(major)));
    expect(fresh.tls).toBeUndefined();
    const [s] = await fresh.sql<{ ssl: string }>('show ssl');
    expect(s!.ssl).toBe('off');
    const copied = await startCluster({ major, ssl: false });
    process.stderr.write(
      `harness timings: PostgreSQL ${major} new cluster by initdb ${fresh.timings.prepareMs} ms, by template copy ${copied.timings.prepareMs} ms (+ start ${copied.timings.startMs} ms)\n`,
    );
    await copied.destroy();
    await fresh.destroy();
  }, 120_000);

  it('destroy() stops the server and removes its directories', async () => {
    const c = await startCluster({ major: majors[0]!, conf: { work_mem: '7MB' }, hba: ['host all rep_md5 127.0.0.1/32 reject'] });
    const [w] = await c.sql<{ work_mem: string }>('show work_mem');
    expect(w!.work_mem).toBe('7MB');
    expect(await tryConnect(c, { user: c.roles.md5, password: c.roles.secret })).toBeInstanceOf(Error);
    const pid = livePostmasterPid(c.dataDir)!;
    await c.destroy();
    expect(isPostgres(pid)).toBe(false);
    expect(existsSync(c.dataDir)).toBe(false);
  });

  it('killPostmasters (global teardown) stops a server whose worker forgot it', async () => {
    const c = await startCluster({ major: majors[0]!, ssl: false });
    const pid = livePostmasterPid(c.dataDir)!;
    expect(killPostmasters([c.dataDir], 5_000)).toEqual([]);
    expect(livePostmasterPid(c.dataDir)).toBeUndefined();
    expect(isPostgres(pid)).toBe(false);
    await c.destroy();
  });
});

describe('cleanup when tests misbehave', () => {
  it('stops the servers of a test that times out, one that throws, and one whose worker is killed', async () => {
    const report = join(await makeTempDir('leak'), 'report.jsonl');
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env, PGBB_LEAK_REPORT: report, PGBB_TEST_MAJORS: String(majors[0]) };
    // The nested run gets its own run root from its own global setup.
    delete env.PGBB_HARNESS_ROOT;
    delete env.VITEST;
    delete env.VITEST_POOL_ID;
    delete env.VITEST_WORKER_ID;
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(repo, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/harness/fixtures/vitest.config.ts'],
        { cwd: repo, env, timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
      );
    });
    expect(result.code, result.output).not.toBe(0);
    if (!/stopped 1 leftover/.test(result.output)) console.log(result.output);
    expect(result.output).toMatch(/stopped 1 leftover PostgreSQL server/);
    const leaks = readFileSync(report, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; dataDir: string; pid: number });
    expect(leaks.map((l) => l.kind).sort()).toEqual(['crash', 'throw', 'timeout']);
    for (const leak of leaks) {
      expect(leak.pid, leak.kind).toBeGreaterThan(0);
      expect(isPostgres(leak.pid), `${leak.kind} server still running`).toBe(false);
      expect(existsSync(leak.dataDir), `${leak.kind} data dir left behind`).toBe(false);
    }
  }, 150_000);
});

describe('Debian PostgreSQL 15', () => {
  let debian: Cluster;
  afterAll(async () => debian?.destroy());

  it('is installed and starts with the same configuration', async () => {
    expect(debianBinDir(), 'Debian postgresql-15 must be installed (.ci/run installs it)').toBe('/usr/lib/postgresql/15/bin');
    debian = await startCluster({ major: 15, flavor: 'debian' });
    const [v] = await debian.sql<{ version: string }>('select version()');
    expect(v!.version).toMatch(/^PostgreSQL 15\.\d+ \(Debian/);
    const [w] = await debian.sql<{ wal_level: string }>('show wal_level');
    expect(w!.wal_level).toBe('replica');
    expect(await tryConnect(debian, { user: ROLES.scram, password: ROLES.secret })).toEqual({ ssl: false });
    expect(existsSync(debian.pgBin('pg_basebackup'))).toBe(true);
  }, 120_000);

  it('restores a pg_basebackup of an embedded cluster, tablespace included, with startCluster({ dataDir })', async () => {
    const source = await startCluster({ major: 15 });
    const tsDir = await makeTempDir('ts');
    await source.sql(`create tablespace harness_ts location '${tsDir}'`);
    await source.sql('create table harness_probe tablespace harness_ts as select generate_series(1, 1000) as n');
    const dir = await makeTempDir('restore');
    const target = join(dir, 'data');
    const tsTarget = join(dir, 'ts');
    // Runs as the test's own user (root in CI): the files are root's until startCluster hands them over.
    execFileSync(
      oracleBin('pg_basebackup'),
      ['-d', source.connectionString(), '-D', target, '-T', `${tsDir}=${tsTarget}`, '-X', 'stream', '-c', 'fast', '--no-sync'],
      { stdio: 'pipe' },
    );
    const restored = await startCluster({ major: 15, dataDir: target, chownPaths: [tsTarget], conf: { work_mem: '5MB' } });
    expect(restored.port).not.toBe(source.port);
    const [r] = await restored.sql<{ count: string }>('select count(*) from harness_probe');
    expect(r!.count).toBe('1000');
    const [t] = await restored.sql<{ location: string }>(
      "select pg_tablespace_location(oid) as location from pg_tablespace where spcname = 'harness_ts'",
    );
    expect(t!.location).toBe(tsTarget);
    const [w] = await restored.sql<{ work_mem: string }>('show work_mem');
    expect(w!.work_mem).toBe('5MB');
    await restored.destroy();
    await source.destroy();
  }, 120_000);
});
