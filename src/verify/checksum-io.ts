/**
 * The I/O scheduler of a plain backup's checksums: which files are read where, and how. Small files
 * are read synchronously one after the other; larger ones on a few lanes with the next chunk read on
 * the thread pool while this one is checksummed; or, when spare cores and slow checksums make it pay,
 * whole files on worker threads. The outcome of each file is judged by checks.ts.
 * @module
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { AbortError } from '../errors.js';
import { createChecksum } from '../manifest/checksum.js';
import { crc32cImplementation } from '../manifest/crc32c.js';
import { ChecksumThread } from './checksum-pool.js';
import { checkAbort, checkReadFile, errText, shouldChecksum, type Entry, type RunState } from './checks.js';
import { isIgnored } from './sources.js';
import type { VerifyFinding } from './types.js';

/** Files up to this size are read synchronously, in one read (most of a data directory). */
const SMALL_FILE = 256 * 1024;
/** Read size for larger files. */
const READ_CHUNK = 1024 * 1024;
/**
 * Large files checksummed at once by default, each with a read in flight: on two cores one lane left
 * the disk idle while it checksummed, and more lanes than that gained nothing.
 */
const LARGE_LANES = 2;
/** About this many bytes of small files are read synchronously between turns of the event loop. */
const SYNC_SLICE_BYTES = 4 * 1024 * 1024;

/** Computes and compares the checksum of every matched file of a plain backup, yielding the mismatches. */
export async function* plainChecksums(s: RunState): AsyncGenerator<VerifyFinding, void> {
  const o = s.o;
  const queue = [...s.entries.values()].filter((e) => shouldChecksum(e) && !isIgnored(e.file.path, s.ignore));
  // Large files first: the longest jobs start early, so the lanes finish together.
  queue.sort((a, b) => b.file.size - a.file.size);
  const out: VerifyFinding[] = [];
  let wake: (() => void) | undefined;
  let stop = false;
  let failure: unknown;
  let done = 0;
  const concurrency = Math.max(1, o.concurrency ?? LARGE_LANES);
  const cores = availableParallelism();
  // Threads pay for themselves only with spare cores and enough slow work: with the CPU's CRC
  // instruction this thread checksums CRC-32C faster than the thread pool copies files in, and on two
  // busy cores the measured cost of starting and warming threads up exceeded the gain.
  const crcNative = crc32cImplementation() === 'native';
  const slowBytes = queue.reduce((n, e) => n + (e.file.checksumAlgorithm === 'CRC32C' && crcNative ? 0 : e.file.size), 0);
  const threads = Math.max(0, o.threads ?? (slowBytes > 256 * 1024 * 1024 && cores >= 4 ? Math.min(o.concurrency ?? 4, cores - 1) : 0));
  const pool: ChecksumThread[] = [];

  const countBytes = (n: number) => {
    done += n;
    s.bytesRead += n;
    o.onProgress?.({ phase: 'checksums', doneBytes: done, totalBytes: s.totalBytes });
  };

  const checkOnThread = async (e: Entry, thread: ChecksumThread): Promise<VerifyFinding | undefined> => {
    const path = e.file.path;
    checkAbort(o.signal);
    const r = await thread.checksum(join(o.backupDir, path), e.file.checksumAlgorithm, countBytes);
    if (!r.ok) {
      return { kind: 'unreadable', path, message: `could not ${r.stage} file "${path}"`, detail: r.error };
    }
    return checkReadFile(s, e, r.bytes, () => r.digest);
  };

  // Most files of a data directory are small (one to a few pages). Each is opened, read and closed
  // synchronously, as pg_verifybackup does: three thread-pool round trips would cost more than the read.
  const checkSmall = (e: Entry, buf: Buffer): VerifyFinding | undefined => {
    const path = e.file.path;
    const ctx = createChecksum(e.file.checksumAlgorithm);
    let read = 0;
    let fd: number;
    try {
      fd = openSync(join(o.backupDir, path), 'r');
    } catch (err) {
      return { kind: 'unreadable', path, message: `could not open file "${path}"`, detail: errText(err) };
    }
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        ctx.update(buf.subarray(0, n));
        read += n;
        countBytes(n);
        // A short read of a regular file is its end: saves the read that would return 0.
        if (n < buf.length) break;
      }
    } catch (err) {
      return { kind: 'unreadable', path, message: `could not read file "${path}"`, detail: errText(err) };
    } finally {
      closeSync(fd);
    }
    return checkReadFile(s, e, read, () => ctx.digest());
  };

  // Larger files are read on the thread pool, one chunk ahead: the next chunk is copied in on another
  // core while this thread checksums the current one.
  const checkLarge = async (e: Entry, bufs: readonly [Buffer, Buffer]): Promise<VerifyFinding | undefined> => {
    const path = e.file.path;
    const ctx = createChecksum(e.file.checksumAlgorithm);
    let read = 0;
    let fh: FileHandle;
    try {
      fh = await open(join(o.backupDir, path), 'r');
    } catch (err) {
      return { kind: 'unreadable', path, message: `could not open file "${path}"`, detail: errText(err) };
    }
    let pending: Promise<{ bytesRead: number }> | undefined = fh.read(bufs[0], 0, bufs[0].length, 0);
    try {
      let which = 0;
      while (pending) {
        const { bytesRead } = await pending;
        pending = undefined;
        if (stop) return undefined;
        checkAbort(o.signal);
        if (bytesRead === 0) break;
        const buf = bufs[which]!;
        read += bytesRead;
        const more = bytesRead === buf.length;
        if (more) {
          which ^= 1;
          pending = fh.read(bufs[which]!, 0, bufs[which]!.length, read);
        }
        // The whole buffer when full (nearly every read): no view object per chunk.
        ctx.update(more ? buf : buf.subarray(0, bytesRead));
        countBytes(bytesRead);
      }
    } catch (err) {
      if (err instanceof AbortError) throw err;
      return { kind: 'unreadable', path, message: `could not read file "${path}"`, detail: errText(err) };
    } finally {
      // The read ahead writes into a buffer of this lane: let it land before the lane goes on.
      await pending?.catch(() => undefined);
      await fh.close();
    }
    return checkReadFile(s, e, read, () => ctx.digest());
  };

  const report = (f: VerifyFinding | undefined) => {
    if (f) {
      out.push(f);
      wake?.();
    }
  };

  /** Checks entries taken from `take` one at a time until none is left, the run stops or one fails. */
  const drain = async (take: () => Entry | undefined, check: (e: Entry) => Promise<VerifyFinding | undefined>) => {
    try {
      while (!stop && failure === undefined) {
        const e = take();
        if (!e) return;
        report(await check(e));
      }
    } catch (err) {
      failure ??= err;
    }
  };
  const threadLane = (thread: ChecksumThread) =>
    drain(
      () => queue.shift(),
      (e) => checkOnThread(e, thread),
    );

  const large = threads > 0 ? [] : queue.filter((e) => e.file.size > SMALL_FILE);
  const small = threads > 0 ? [] : queue.filter((e) => e.file.size <= SMALL_FILE);
  const largeLane = () => {
    const bufs = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)] as const;
    return drain(
      () => large.shift(),
      (e) => checkLarge(e, bufs),
    );
  };
  const smallLane = async () => {
    const buf = Buffer.allocUnsafe(SMALL_FILE);
    try {
      let slice = 0;
      while (!stop && failure === undefined) {
        const e = small.pop();
        if (!e) return;
        checkAbort(o.signal);
        report(checkSmall(e, buf));
        slice += e.file.size + 4096;
        // Give the event loop a turn now and then: the large-file lanes' reads complete there.
        if (slice >= SYNC_SLICE_BYTES) {
          slice = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } catch (err) {
      failure ??= err;
    }
  };

  for (let i = 0; i < threads; i++) pool.push(new ChecksumThread());
  const lanes: Promise<void>[] =
    threads > 0 ? pool.map(threadLane) : [...Array.from({ length: Math.min(concurrency, large.length) }, largeLane), smallLane()];
  let active = lanes.length;
  const workers = lanes.map((l) =>
    l.finally(() => {
      active--;
      wake?.();
    }),
  );
  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      const f = out.shift();
      if (f) {
        yield f;
        continue;
      }
      if (active === 0) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    if (failure !== undefined) throw failure;
  } finally {
    stop = true;
    // Threads first: a file still being read on one is abandoned, which also settles its lane.
    await Promise.allSettled(pool.map((t) => t.close()));
    await Promise.allSettled(workers);
  }
}
