/**
 * The `pgbb` process (loaded by main.ts): process glue only. The first
 * SIGINT/SIGTERM aborts the running command through its AbortSignal, lets it
 * clean up (temporary slot dropped, partial output removed) and exits with the
 * command's status (1 for a command it interrupts, 0 for receive-wal, which stops
 * cleanly); a repeat within the same burst is the same interrupt, and a later one
 * exits at once after removing synchronously what the command registered (interrupt.ts).
 * @module
 */
import { isatty } from 'node:tty';
import type { Writable } from 'node:stream';
import { AbortError } from '../entries/errors.js';
import type { CliContext } from './context.js';
import { FdWritable, writableByFd } from './fd-writable.js';
import { keepYoungGenerationSmall } from './gc.js';
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

/**
 * Standard output, made on first use. `process.stdout` is created only when text is written: creating
 * it makes a pipe's descriptor non-blocking, which would turn {@link FdWritable}'s thread-pool writes
 * into `EAGAIN`. The tar of `backup -D -` goes through an FdWritable when fd 1 is a file, pipe, socket
 * or `/dev/null`, else through `process.stdout` too.
 */
class StandardOutput {
  #text: NodeJS.WriteStream | undefined;
  #fd: FdWritable | undefined;

  /** `process.stdout`; a closed pipe on it (pgbb ... | head) is not worth a stack trace. */
  text(): NodeJS.WriteStream {
    if (this.#text === undefined) {
      this.#text = process.stdout;
      this.#text.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(1);
      });
    }
    return this.#text;
  }

  /** The stream `backup -D -` writes its tar to. */
  stream(): Writable {
    if (this.#fd !== undefined) return this.#fd;
    if (this.#text !== undefined || !writableByFd(1, isatty(1))) return this.text();
    this.#fd = new FdWritable(1, { fallback: () => this.text() });
    return this.#fd;
  }

  /** Waits until everything written has been handed to the OS. */
  async flushed(): Promise<void> {
    const fd = this.#fd;
    if (fd !== undefined && !fd.destroyed && !fd.writableFinished) {
      await new Promise<void>((resolve) => {
        fd.once('error', () => resolve());
        fd.end(() => resolve());
      });
    }
    if (this.#text !== undefined) await flushed(this.#text);
  }
}

/** Runs the command line of this process and exits with its status; `version` is the package's. */
export async function main(version: string): Promise<void> {
  keepYoungGenerationSmall();
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
  const stdout = new StandardOutput();
  const ctx: CliContext = {
    stdout: {
      write: (chunk: string | Uint8Array) => stdout.text().write(chunk),
      get isTTY() {
        return isatty(1);
      },
    },
    get stdoutStream() {
      return stdout.stream();
    },
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
  await Promise.all([stdout.flushed(), flushed(process.stderr)]);
  // Exit explicitly: a library handle left open by an aborted command must not keep pgbb alive.
  process.exit(status);
}
