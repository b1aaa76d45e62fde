/**
 * The pgbb command line (dist/cli/main.js) as the tests run it: started, or run to its end, with a
 * minimal environment. And as the servers' unprivileged user can run it: `pgbb restore` writes a
 * restore_command that PostgreSQL runs as that user, so the Node executable and dist/cli/main.js must
 * be reachable by it. When root runs the tests from a tree that user cannot enter (a home directory),
 * both are copied once per run to a world-readable directory under os.tmpdir().
 */
import { execFileSync, spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { beforeAll } from 'vitest';
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
  /** The signal that ended it (a test's SIGKILL), or `null`. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running pgbb process. */
export interface PgbbProcess {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** Resolves once it exited (never rejects). */
  exited: Promise<PgbbRun>;
  /** What it printed on stdout so far. */
  stdout(): string;
  /** What it printed on stderr so far (for failure messages). */
  stderr(): string;
}

/**
 * Starts `pgbb ARGS` with `runnable` and a minimal environment (no PG* variables) plus `env` (S3
 * credentials, for instance).
 */
export function spawnPgbb(runnable: ServerPgbb, args: readonly string[], env: Readonly<Record<string, string>> = {}): PgbbProcess {
  const child = spawn(runnable.node, [runnable.cli, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      // The SDK warns on Node < 22 about its own future releases; not what the tests look at.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
    },
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
  const exited = new Promise<PgbbRun>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** Runs `pgbb ARGS` as {@link spawnPgbb} starts it; resolves once it exited. */
export function runPgbb(runnable: ServerPgbb, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<PgbbRun> {
  return spawnPgbb(runnable, args, env).exited;
}

const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Builds dist/ in the file's beforeAll when it is missing; with `forServer`, makes pgbb runnable by the
 * server user too ({@link pgbbForServer}: restore_command runs `pgbb restore-wal` as that user). The
 * returned function gives it once beforeAll ran.
 */
export function pgbbForFile(options: { forServer?: boolean } = {}): () => ServerPgbb {
  let runnable: ServerPgbb | undefined;
  beforeAll(async () => {
    const cli = join(packageRoot, 'dist', 'cli', 'main.js');
    if (!existsSync(cli)) execFileSync('npx', ['tsup'], { cwd: packageRoot, stdio: 'pipe' });
    runnable = options.forServer ? await pgbbForServer(packageRoot) : { node: process.execPath, cli };
  }, 180_000);
  return () => {
    if (runnable === undefined) throw new Error('pgbb is runnable once beforeAll ran');
    return runnable;
  };
}
