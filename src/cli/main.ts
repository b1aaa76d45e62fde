#!/usr/bin/env node
/**
 * The `pgbb` executable (built to dist/cli/main.js): process glue only. The first
 * SIGINT/SIGTERM aborts the running command through its AbortSignal, lets it
 * clean up (temporary slot dropped, partial output removed) and exits with 1; a
 * second signal exits at once.
 * @module
 */
import { readFileSync } from 'node:fs';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AbortError } from '../index.js';
import type { CliContext } from './context.js';
import { defaultLibrary } from './library.js';
import { runCli } from './run.js';

function packageVersion(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two levels below package.json.
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** How often `pgbb backup` collects the young generation while it works, in milliseconds. */
const YOUNG_GC_INTERVAL_MS = 5;

/**
 * Peak memory of a backup, bounded by collecting the young generation every few milliseconds.
 * Every byte of a backup arrives in a 512 KiB receive buffer that is garbage a millisecond or
 * two later, but V8 collects when the JavaScript heap fills, and a backup allocates little
 * JavaScript: 20-40 MB of dead receive buffers piled up between collections (peak RSS 91-95 MB
 * for 300 MB in tar format, 78-81 MB with this, for about 0.02 s of CPU). A minor collection of a
 * young generation this small takes a fraction of a millisecond, and a buffer dead by then never
 * reaches the old generation, which only a costly full collection empties. Skipped while the heap
 * does not change (waiting for a checkpoint or an fsync). Process glue, not library code: the
 * library leaves the garbage collector alone.
 */
function collectYoungGarbage(): void {
  let gc: ((options: { type: 'minor' }) => void) | undefined;
  try {
    setFlagsFromString('--expose-gc');
    // The flag takes effect for contexts created from now on: take `gc` from a fresh one.
    const fn = runInNewContext('gc') as unknown;
    if (typeof fn === 'function') gc = fn as typeof gc;
  } catch {
    // Only memory is at stake.
  }
  if (gc === undefined) return;
  const collect = gc;
  let lastUsed = -1;
  setInterval(() => {
    if (getHeapStatistics().used_heap_size === lastUsed) return;
    collect({ type: 'minor' });
    lastUsed = getHeapStatistics().used_heap_size;
  }, YOUNG_GC_INTERVAL_MS).unref();
}

/** Wait until everything written to a stream has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

async function main(): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    controller.abort(new AbortError(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed pipe on stdout (pgbb ... | head) is not worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(1);
  });

  const ctx: CliContext = {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: controller.signal,
    version: packageVersion(),
    lib: defaultLibrary,
  };
  if (process.argv[2] === 'backup') collectYoungGarbage();
  let status: number;
  try {
    status = await runCli(process.argv.slice(2), ctx);
  } catch (err) {
    // runCli reports every error itself; this is a bug, still print no secrets.
    process.stderr.write(`pgbb: error: internal error: ${err instanceof Error ? err.name : 'unknown'}\n`);
    status = 1;
  }
  if (controller.signal.aborted) status = 1;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  // Exit explicitly: a library handle left open by an aborted command must not keep pgbb alive.
  process.exit(status);
}

void main();
