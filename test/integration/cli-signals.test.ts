// SIGINT/SIGTERM handling of the BUILT executable: the first signal aborts the
// running command through its AbortSignal and pgbb exits 1 with a message. The
// first tests need no PostgreSQL: a TCP server that accepts and never answers
// keeps `pgbb identify` waiting in the connection attempt. The last interrupts a
// real backup the way `timeout` does, with the same signal twice at once.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, testMajors } from '../harness/index.js';
import { describeEachMajor } from '../harness/suite.js';
import { expectNoBackupLeft, slotsAfterSettling } from './backup-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = join(root, 'dist/cli/main.js');

let server: Server;
let port = 0;
const sockets: Socket[] = [];

beforeAll(async () => {
  if (!existsSync(cliPath)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'pipe' });
  server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
}, 120_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function startHanging(): {
  child: ReturnType<typeof spawn>;
  output: () => { stdout: string; stderr: string };
  exited: Promise<number | null>;
} {
  const child = spawn(
    process.execPath,
    [cliPath, 'identify', '-d', `host=127.0.0.1 port=${port} user=u password=Sig-Secret-1 sslmode=disable`],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => ({ stdout, stderr }), exited };
}

describe('pgbb signals', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`aborts the running command on ${signal} and exits 1`, async () => {
      const connected = once(server, 'connection');
      const run = startHanging();
      await connected;
      run.child.kill(signal);
      const code = await run.exited;
      expect(code).toBe(1);
      const { stdout, stderr } = run.output();
      expect(stdout).toBe('');
      expect(stderr).toMatch(/^pgbb: error: .*(interrupted|abort)/m);
      expect(stderr).not.toContain('Sig-Secret-1');
    }, 30_000);
  }

  it('takes the same signal twice at once as one interrupt', async () => {
    const connected = once(server, 'connection');
    const run = startHanging();
    await connected;
    run.child.kill('SIGINT');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(1);
    // The command's own error report, which a "kill now" exit would have skipped.
    expect(run.output().stderr).toMatch(/^pgbb: error: .*interrupted by SIGINT/m);
  }, 30_000);
});

/** `pgbb backup` with a handle on its output, line by line. */
function backup(args: string[]) {
  const child = spawn(process.execPath, [cliPath, 'backup', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of [...waiters]) {
      if (w.re.test(stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stderr }));
  });
  /** Resolves when stderr matches `re`; rejects if pgbb exits first. */
  const untilStderr = (re: RegExp) =>
    Promise.race([
      new Promise<void>((resolve) => {
        if (re.test(stderr)) resolve();
        else waiters.push({ re, resolve });
      }),
      exited.then((r) => {
        throw new Error(`pgbb exited (${r.code}) before printing ${re}: ${r.stderr}`);
      }),
    ]);
  return { child, exited, untilStderr };
}

describeEachMajor('pgbb backup interrupted by a process manager', testMajors(), (_major, primary) => {
  it('SIGINT twice back to back (timeout signals the child and its group): one interrupt, cleanup done', async () => {
    const dir = join(await makeTempDir('cli-double-sigint'), 'data');
    const slot = 'pgbb_cli_double_sigint';
    // -C -S: a slot that only pgbb's cleanup drops (a temporary one would go with the connection).
    const run = backup(['-d', primary().connectionString(), '-D', dir, '-c', 'fast', '-r', '8M', '-P', '-C', '-S', slot]);
    let r: Awaited<typeof run.exited>;
    try {
      // A progress line (stderr is no terminal: one line a second) past the first megabyte: data is
      // being written into the target, backup_label first.
      await run.untilStderr(/^ *[1-9]\d{3,}\/\d+ kB/m);
      expect(existsSync(join(dir, 'backup_label'))).toBe(true);
      expect(await primary().sql('select slot_name from pg_replication_slots')).toEqual([{ slot_name: slot }]);
      run.child.kill('SIGINT');
      run.child.kill('SIGINT');
      r = await run.exited;
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    }
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pgbb: error: .*interrupted by SIGINT/m);
    await expectNoBackupLeft(dir, false);
    expect(await slotsAfterSettling(primary())).toEqual([]);
  }, 120_000);
});
