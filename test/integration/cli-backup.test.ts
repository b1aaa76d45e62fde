// `pgbb backup` as users run it: the built executable (dist/cli/main.js) against real
// servers. Success writes a backup and exits 0; a non-empty target, a missing slot, an
// unreachable server and SIGINT/SIGTERM mid-backup exit 1 with a clear message, leave
// nothing that looks like a finished backup, and leave no replication slot behind.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort, makeTempDir, testMajors } from '../harness/index.js';
import { describeEachMajor } from '../harness/suite.js';
import { expectNoBackupLeft, slotsAfterSettling, tarMembers } from './backup-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = join(root, 'dist/cli/main.js');

interface Run {
  child: ReturnType<typeof spawn>;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function pgbb(args: string[]): Run {
  // No PG* variables from the developer's environment.
  const child = spawn(process.execPath, [cliPath, 'backup', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, exited };
}

async function untilWritten(path: string, minBytes: number): Promise<void> {
  await vi.waitFor(
    async () => {
      expect(existsSync(path), `${path} did not appear`).toBe(true);
      expect((await stat(path)).size).toBeGreaterThanOrEqual(minBytes);
    },
    { timeout: 20_000, interval: 25 },
  );
}

beforeAll(() => {
  // Built once per run by whichever file needs it first (cli-signals does the same).
  if (!existsSync(cliPath)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'pipe' });
}, 180_000);

// Refused before any server is involved: once, not per major.
describe('pgbb backup without a server', () => {
  it('refuses a non-empty target: exit 1, the target untouched', async () => {
    const dir = await makeTempDir('cli-nonempty');
    await writeFile(join(dir, 'keep'), 'x');
    // Refused before connecting: the server named here need not exist.
    const r = await pgbb(['-d', `host=127.0.0.1 port=${await freePort()} user=x sslmode=disable`, '-D', dir, '-c', 'fast']).exited;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pgbb: error: .*(not empty|exists)/m);
    expect(await readdir(dir)).toEqual(['keep']);
  });

  it('an unreachable server: exit 1 with a connection error, nothing left', async () => {
    const dir = join(await makeTempDir('cli-unreachable'), 'data');
    const port = await freePort();
    const r = await pgbb(['-d', `host=127.0.0.1 port=${port} user=x sslmode=disable`, '-D', dir]).exited;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pgbb: error: .*(connect|refused)/im);
    await expectNoBackupLeft(dir, false);
  });
});

describeEachMajor('pgbb backup', testMajors(), (_major, primary) => {
  it('-Ft -R writes the archives and the manifest and exits 0', async () => {
    const dir = join(await makeTempDir('cli-ok'), 'out');
    const r = await pgbb(['-d', primary().connectionString(), '-D', dir, '-Ft', '-R', '-c', 'fast', '-N']).exited;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['backup_manifest', 'base.tar', 'pg_wal.tar']);
    expect(await tarMembers(join(dir, 'base.tar'))).toEqual(expect.arrayContaining(['standby.signal', 'postgresql.auto.conf']));
    expect(await slotsAfterSettling(primary())).toEqual([]);
  });

  it('-D - -Ft: the tar, its manifest inside, through a pipe; a reader that goes away fails it with exit 1', async () => {
    const args = ['-d', primary().connectionString(), '-D', '-', '-Ft', '-Xfetch', '-c', 'fast'];
    const child = spawn(process.execPath, [cliPath, 'backup', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const parts: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => parts.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr.replace(/^pgbb: warning: NOTICE: .*\n/gm, '')).toBe('');
    expect(code).toBe(0);
    const file = join(await makeTempDir('cli-stdout'), 'base.tar');
    await writeFile(file, Buffer.concat(parts));
    // In archive order: the manifest is the last member, as pg_basebackup writes it.
    const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      .trim()
      .split('\n');
    expect(names.at(-1)).toBe('backup_manifest');
    expect(await tarMembers(file)).toEqual(expect.arrayContaining(['PG_VERSION', 'global/pg_control']));

    // The reader closes its end after the first bytes: a clean error naming standard output, exit 1.
    const cut = spawn(process.execPath, [cliPath, 'backup', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let cutErr = '';
    cut.stderr.on('data', (d: Buffer) => {
      cutErr += d.toString();
    });
    cut.stdout.once('data', () => cut.stdout.destroy());
    const cutCode = await new Promise<number | null>((resolve) => cut.on('close', resolve));
    expect(cutCode).toBe(1);
    expect(cutErr).toMatch(/^pgbb: error: standard output was closed by its reader/m);
  });

  it('-S nonexistent: exit 1 naming the slot, nothing left', async () => {
    const dir = join(await makeTempDir('cli-noslot'), 'data');
    const r = await pgbb(['-d', primary().connectionString(), '-D', dir, '-c', 'fast', '-S', 'nonexistent']).exited;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pgbb: error: .*nonexistent/m);
    await expectNoBackupLeft(dir, false);
    expect(await slotsAfterSettling(primary())).toEqual([]);
  });

  for (const [signal, format] of [
    ['SIGINT', 'p'],
    ['SIGTERM', 't'],
  ] as const) {
    it(`${signal} mid-backup (-F${format}, -C -S): exit 1, the target removed, the slot dropped`, async () => {
      const dir = join(await makeTempDir(`cli-${signal}`), 'out');
      const slot = `pgbb_cli_${signal.toLowerCase()}`;
      const run = pgbb(['-d', primary().connectionString(), '-D', dir, `-F${format}`, '-c', 'fast', '-r', '32', '-C', '-S', slot]);
      // Data is flowing: plain has extracted backup_label (sent first), tar has opened base.tar.
      const probe = join(dir, format === 'p' ? 'backup_label' : 'base.tar');
      let r: Awaited<Run['exited']>;
      try {
        await untilWritten(probe, format === 'p' ? 1 : 0);
        expect(await primary().sql('select slot_name from pg_replication_slots')).toEqual([{ slot_name: slot }]);
        run.child.kill(signal);
        r = await run.exited;
      } finally {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      }
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^pgbb: error: .*${signal}`, 'm'));
      await expectNoBackupLeft(dir, false);
      // pgbb dropped it before exiting.
      expect(await primary().sql('select slot_name from pg_replication_slots')).toEqual([]);
    });
  }
});
