import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FdWritable, writableByFd } from '../../../src/cli/fd-writable.js';
import { makeTempDir } from '../../harness/index.js';

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function write(w: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => w.write(chunk, (err) => (err ? reject(err) : resolve())));
}

function end(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.end(() => resolve());
  });
}

const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // closed by the test (a fallback socket owns it)
    }
  }
  vi.useRealTimers();
});

async function scratchFile(): Promise<{ path: string; fd: number }> {
  const path = join(await makeTempDir('fd-writable'), 'out');
  const fd = openSync(path, 'w', 0o600);
  fds.push(fd);
  return { path, fd };
}

describe('FdWritable', () => {
  it('reports the bytes it holds until they are written (heldBytes), so a reusing source knows when to release', async () => {
    const { path, fd } = await scratchFile();
    const out = new FdWritable(fd, { batchBytes: 1000 });
    expect(out.heldBytes).toBe(0);
    await write(out, pattern(600, 1));
    expect(out.heldBytes).toBe(600);
    expect(statSync(path).size).toBe(0);
    await write(out, pattern(500, 2)); // the batch is full: written
    expect(out.heldBytes).toBe(0);
    expect(statSync(path).size).toBe(1100);
    await write(out, pattern(10, 3));
    expect(out.heldBytes).toBe(10);
    await end(out);
    expect(out.heldBytes).toBe(0);
  });

  it('gathers chunks into batches and writes them in order, the rest at end()', async () => {
    const { path, fd } = await scratchFile();
    const out = new FdWritable(fd, { batchBytes: 100_000 });
    const chunks = [1, 7, 32_768, 65_536, 3, 99_999, 100_000, 250_001, 5].map((n, i) => pattern(n, i));
    for (const c of chunks.slice(0, 3)) await write(out, c);
    // Less than a batch: nothing written yet.
    expect(statSync(path).size).toBe(0);
    for (const c of chunks.slice(3)) await write(out, c);
    expect(statSync(path).size).toBeGreaterThan(0);
    await end(out);
    // equals(): toEqual walks a large Buffer element by element.
    expect(readFileSync(path).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('a zero-length write completes once every byte before it is written', async () => {
    const { path, fd } = await scratchFile();
    const out = new FdWritable(fd);
    out.write(pattern(10, 1));
    out.write(pattern(20, 2));
    await write(out, Buffer.alloc(0));
    expect(readFileSync(path)).toEqual(Buffer.concat([pattern(10, 1), pattern(20, 2)]));
    expect(out.writableEnded).toBe(false);
  });

  it('writes gathered bytes after the flush delay when no full batch comes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { path, fd } = await scratchFile();
    const out = new FdWritable(fd, { flushDelayMs: 20 });
    await write(out, pattern(1000, 3));
    vi.advanceTimersByTime(19);
    expect(statSync(path).size).toBe(0);
    vi.advanceTimersByTime(1);
    expect(readFileSync(path)).toEqual(pattern(1000, 3));
  });

  it('completes partial writes and goes on through the fallback on EAGAIN (a non-blocking pipe)', async () => {
    const dir = await makeTempDir('fd-writable-fifo');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const reader = new Socket({ fd: readFd, readable: true, writable: false });
    const received: Buffer[] = [];
    reader.on('data', (d: Buffer) => received.push(d));
    const readAll = new Promise<void>((resolve) => reader.on('end', resolve));
    let fallback: Socket | undefined;
    const out = new FdWritable(writeFd, {
      batchBytes: 256 * 1024,
      fallback: () => {
        fallback = new Socket({ fd: writeFd, readable: false, writable: true });
        return fallback;
      },
    });
    // More than a pipe holds (64 KiB): the first batch is written in part, then the pipe is full.
    const chunks = Array.from({ length: 32 }, (_, i) => pattern(32 * 1024 + i, i));
    for (const c of chunks) await write(out, c);
    await end(out);
    expect(fallback).toBeDefined();
    fallback?.end();
    await readAll;
    expect(Buffer.concat(received).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('a reader that went away fails the write with an IoError naming the output (EPIPE)', async () => {
    const dir = await makeTempDir('fd-writable-epipe');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(fifo, constants.O_WRONLY);
    fds.push(writeFd);
    closeSync(readFd);
    const out = new FdWritable(writeFd, { batchBytes: 1024 });
    const emitted = new Promise<unknown>((resolve) => out.once('error', resolve));
    const err = await write(out, pattern(4096, 1)).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_PGBB_IO',
      syscallCode: 'EPIPE',
      message: 'standard output was closed by its reader before the backup was written whole',
    });
    expect(await emitted).toBe(err);
    expect(out.destroyed).toBe(true);
  });

  it('writableByFd: files, pipes and /dev/null, not terminals or closed descriptors', async () => {
    const { fd } = await scratchFile();
    expect(writableByFd(fd, false)).toBe(true);
    expect(writableByFd(fd, true)).toBe(false);
    const devnull = openSync('/dev/null', 'w');
    fds.push(devnull);
    expect(writableByFd(devnull, false)).toBe(true);
    const closed = openSync('/dev/null', 'w');
    closeSync(closed);
    expect(writableByFd(closed, false)).toBe(false);
  });
});
