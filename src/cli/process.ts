/**
 * The `pgbb` process (loaded by main.ts): process glue only. The first
 * SIGINT/SIGTERM aborts the running command through its AbortSignal, lets it
 * clean up (temporary slot dropped, partial output removed) and exits with the
 * command's status (1 for a command it interrupts, 0 for receive-wal, which stops
 * cleanly); a repeat within the same burst is the same interrupt, and a later one
 * exits at once after removing synchronously what the command registered (interrupt.ts).
 * @module
 */
import { AbortError } from '../index.js';
import type { CliContext } from './context.js';
import { createInterruptHandler, EmergencyCleanups } from './interrupt.js';
import { defaultLibrary } from './library.js';
import { runCli } from './run.js';

/** Wait until everything written to a stream has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/** Runs the command line of this process and exits with its status; `version` is the package's. */
export async function main(version: string): Promise<void> {
  const controller = new AbortController();
  const emergency = new EmergencyCleanups();
  const onSignal = createInterruptHandler({
    abort: (signal) => controller.abort(new AbortError(`interrupted by ${signal}`)),
    exitNow: (signal) => {
      const lines = emergency.run('pgbb', signal);
      process.stderr.write(`${lines.join('\n')}\n`);
      process.exit(1);
    },
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed pipe on stdout (pgbb ... | head) is not worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(1);
  });

  const ctx: CliContext = {
    stdout: process.stdout,
    stdoutStream: process.stdout,
    stderr: process.stderr,
    // A getter: process.stdin opens a stream on fd 0, which only a password prompt needs.
    get stdin() {
      return process.stdin;
    },
    env: process.env,
    signal: controller.signal,
    version,
    lib: defaultLibrary,
    onEmergencyExit: (cleanup) => emergency.add(cleanup),
  };
  let status: number;
  try {
    status = await runCli(process.argv.slice(2), ctx);
  } catch (err) {
    // runCli reports every error itself; this is a bug, still print no secrets.
    process.stderr.write(`pgbb: error: internal error: ${err instanceof Error ? err.name : 'unknown'}\n`);
    status = 1;
  }
  // A command the signal made fail reports 1 itself (AbortError); one that stops cleanly on it
  // (receive-wal, as pg_receivewal 16 does) reports 0.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  // Exit explicitly: a library handle left open by an aborted command must not keep pgbb alive.
  process.exit(status);
}
