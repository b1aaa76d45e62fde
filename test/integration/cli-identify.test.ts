// `pgbb identify` through the BUILT executable (dist/cli/main.js), against every
// supported major: the printed fields agree with the server's own view, --json is
// machine-readable, and failures exit 1 with a clear message and no password.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort, startCluster, testMajors, type Cluster } from '../harness/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = join(root, 'dist/cli/main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestSource(p) : st.mtimeMs);
  }
  return newest;
}

/** Build with tsup when dist is missing or older than src (`npm test` builds first anyway). */
function ensureBuilt(): void {
  if (existsSync(cliPath) && statSync(cliPath).mtimeMs >= newestSource(join(root, 'src'))) return;
  execFileSync('npx', ['tsup'], { cwd: root, stdio: 'pipe' });
}

interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run pgbb with a clean environment: no PG* variable from the developer's shell leaks in. */
function pgbb(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PGCONNECT_TIMEOUT: '10' };
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { env: { ...base, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

const majors = testMajors();
const clusters = new Map<number, Cluster>();

beforeAll(async () => {
  ensureBuilt();
  const started = await Promise.all(majors.map((major) => startCluster({ major, ssl: false })));
  for (const c of started) clusters.set(c.major, c);
}, 300_000);

function cluster(major: number): Cluster {
  const c = clusters.get(major);
  if (!c) throw new Error(`no cluster for ${major}`);
  return c;
}

async function serverFacts(c: Cluster) {
  const [row] = await c.sql<{ system_identifier: string; timeline_id: number; v: string; n: string }>(
    `SELECT system_identifier::text, timeline_id, current_setting('server_version') AS v,
            current_setting('server_version_num') AS n FROM pg_control_checkpoint(), pg_control_system()`,
  );
  if (!row) throw new Error('no row');
  return row;
}

describe.each(majors)('pgbb identify on PostgreSQL %i', (major) => {
  it('prints system identifier, timeline, WAL position and server version', async () => {
    const c = cluster(major);
    const facts = await serverFacts(c);
    const r = await pgbb(['identify', '-d', c.connectionString()]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const fields = Object.fromEntries(
      r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i), l.slice(i + 1).trim()];
        }),
    );
    expect(fields['system identifier']).toBe(facts.system_identifier);
    expect(fields['timeline']).toBe(String(facts.timeline_id));
    expect(fields['xlogpos']).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(fields['server version']).toBe(`${facts.v} (${facts.n})`);
  });

  it('prints one JSON object with --json, with -h/-p/-U instead of a connection string', async () => {
    const c = cluster(major);
    const facts = await serverFacts(c);
    const r = await pgbb(['identify', '--json', '-h', c.host, '-p', String(c.port), '-U', c.roles.trust], { PGSSLMODE: 'disable' });
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const obj = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(obj).toMatchObject({
      event: 'done',
      systemId: facts.system_identifier,
      timeline: facts.timeline_id,
      dbName: null,
      serverVersion: facts.v,
      serverVersionNum: Number(facts.n),
    });
    expect(obj['xlogPos']).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  });

  it('authenticates with a password from the connection string and never prints it', async () => {
    const c = cluster(major);
    const r = await pgbb(['identify', '-d', c.connectionUri({ user: c.roles.scram, password: c.roles.secret })]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^system identifier: \d+$/m);
    expect(r.stdout + r.stderr).not.toContain(c.roles.secret);
  });

  it('fails with exit 1 and a clear message on a wrong password, without printing it', async () => {
    const c = cluster(major);
    const wrong = 'not-the-Secret-42';
    const r = await pgbb(['identify', '--json', '-d', c.connectionString({ user: c.roles.scram, password: wrong })]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^pgbb: error: .*password authentication failed for user "rep_scram"/);
    expect(JSON.parse(r.stdout.trimEnd())).toMatchObject({ event: 'error' });
    expect(r.stdout + r.stderr).not.toContain(wrong);
  });
});

describe('pgbb identify without a server', () => {
  it('exits 1 with a clear message and no password when nothing listens', async () => {
    const port = await freePort();
    const secret = 'Unreachable-Pw-77';
    const conn = `host=127.0.0.1 port=${port} user=rep password=${secret} sslmode=disable`;
    const r = await pgbb(['identify', '-d', conn]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^pgbb: error: could not connect to .*127\.0\.0\.1.*(ECONNREFUSED|refused)/i);
    expect(r.stderr).not.toContain(secret);

    const j = await pgbb(['identify', '--json', '-d', `postgresql://rep:${secret}@127.0.0.1:${port}/postgres?sslmode=disable`]);
    expect(j.status).toBe(1);
    expect(JSON.parse(j.stdout.trimEnd())).toMatchObject({ event: 'error', code: 'ERR_PGBB_CONNECTION' });
    expect(j.stdout + j.stderr).not.toContain(secret);
  });

  it('exits 1 on a usage error before connecting', async () => {
    const r = await pgbb(['identify', '--bogus']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('pgbb identify: unrecognized option "--bogus"\nTry "pgbb identify --help" for more information.\n');
  });
});
