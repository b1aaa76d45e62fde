// SIGINT/SIGTERM handling of the BUILT executable: the first signal aborts the
// running command through its AbortSignal and pgbb exits 1 with a message; no
// PostgreSQL needed: a TCP server that accepts and never answers keeps
// `pgbb identify` waiting in the connection attempt.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliPath = join(root, 'dist/cli/main.js');

let server: Server;
let port = 0;
const sockets: Socket[] = [];

beforeAll(async () => {
  if (!existsSync(cliPath)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'pipe' });
  server = createServer((s) => { sockets.push(s); s.on('error', () => undefined); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
}, 120_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function startHanging(): { child: ReturnType<typeof spawn>; output: () => { stdout: string; stderr: string }; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [cliPath, 'identify', '-d', `host=127.0.0.1 port=${port} user=u password=Sig-Secret-1 sslmode=disable`],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
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

  it('exits at once on a second signal', async () => {
    const connected = once(server, 'connection');
    const run = startHanging();
    await connected;
    run.child.kill('SIGINT');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(1);
  }, 30_000);
});
