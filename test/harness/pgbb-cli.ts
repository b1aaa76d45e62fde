/**
 * The pgbb command line as the servers' unprivileged user can run it: `pgbb restore` writes a
 * restore_command that PostgreSQL runs as that user, so the Node executable and dist/cli/main.js must
 * be reachable by it. When root runs the tests from a tree that user cannot enter (a home directory),
 * both are copied once per run to a world-readable directory under os.tmpdir().
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverIdentity } from './os-user.js';

/** How to run pgbb so that the server user can too. */
export interface ServerPgbb {
  node: string;
  cli: string;
}

function serverCanRun(node: string, args: string[]): boolean {
  const id = serverIdentity();
  if (!id) return true;
  return spawnSync(node, args, { uid: id.uid, gid: id.gid, stdio: 'pipe', cwd: '/' }).status === 0;
}

async function worldReadable(path: string): Promise<void> {
  const st = await stat(path);
  await chmod(path, st.isDirectory() || (st.mode & 0o100) !== 0 ? 0o755 : 0o644);
  if (st.isDirectory()) for (const name of await readdir(path)) await worldReadable(join(path, name));
}

let cached: Promise<ServerPgbb> | undefined;

/** `root` is the package root (holding dist/ and package.json). */
export function pgbbForServer(root: string): Promise<ServerPgbb> {
  cached ??= (async () => {
    const cli = join(root, 'dist', 'cli', 'main.js');
    if (serverCanRun(process.execPath, [cli, '--version'])) return { node: process.execPath, cli };
    const dir = join(tmpdir(), `pgbb-cli-${process.pid}`);
    await mkdir(join(dir, 'bin'), { recursive: true });
    let node = process.execPath;
    if (!serverCanRun(node, ['--version'])) {
      node = join(dir, 'bin', 'node');
      await cp(process.execPath, node);
    }
    await cp(join(root, 'dist'), join(dir, 'pkg', 'dist'), { recursive: true });
    await cp(join(root, 'package.json'), join(dir, 'pkg', 'package.json'));
    await chmod(dir, 0o755);
    await worldReadable(dir);
    const copied = join(dir, 'pkg', 'dist', 'cli', 'main.js');
    if (!serverCanRun(node, [copied, '--version'])) throw new Error(`the server user cannot run pgbb even from ${dir}`);
    return { node, cli: copied };
  })();
  return cached;
}

/** What a pgbb run printed and how it exited. */
export interface PgbbRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `pgbb ARGS` with `runnable` and a minimal environment (no PG* variables) plus `env`; resolves once
 * it exited.
 */
export function runPgbb(runnable: ServerPgbb, args: readonly string[], env: Record<string, string> = {}): Promise<PgbbRun> {
  const child = spawn(runnable.node, [runnable.cli, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
