/**
 * The repository lock: a lease that one backup or expire holds while it changes the repository, renewed
 * while held and taken over once it expired (its holder died), built from plain puts, lists and deletes.
 * Conditional writes (`If-None-Match`) would make this a single put, but some S3-compatible servers
 * refuse them (Swift answers 501), so the lock is Lamport's bakery algorithm over objects, which needs
 * only that a completed put is seen by a later list (S3's strong read-after-write consistency):
 *
 * 1. put `locks/<name>/choosing-<holder>.json` (I am taking a ticket);
 * 2. list the live leases; my ticket is one more than the highest;
 * 3. put `locks/<name>/lease-<holder>.json` with the ticket, delete the choosing marker;
 * 4. wait until no other live choosing marker remains (a contender that read the leases before my lease
 *    was visible may be about to take a ticket as low as mine), and until a listing shows no marker that
 *    is gone by the time it is read (its holder's lease may have been put after the listing);
 * 5. list the live leases: if another has a lower (ticket, holder), delete mine and fail with
 *    {@link pg-basebackup/errors!RepositoryLockedError}; otherwise the lock is mine.
 *
 * A lease or marker is live until its `expiresAt` (the holder renews it every third of the lease), or
 * until its holder is seen to be gone: one written from this host by a process that no longer exists
 * is dead at once (a backup killed by SIGKILL does not block the next one for a whole lease). Expiry
 * compares clocks of different hosts: keep them synchronised (NTP) well within the lease duration.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { RepositoryLockedError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import { encodeRecord, RecordReader } from './json.js';
import { lockPrefix } from './layout.js';
import { readSmallObject } from './objects.js';

/** Options of {@link acquireLock}. */
export interface AcquireLockOptions {
  /** What the holder does (`backup`, `expire`): shown to whoever is refused. */
  operation: string;
  /**
   * How long the lease lasts without renewal, in milliseconds; it is renewed every third of it. A
   * holder that dies blocks others on other hosts for at most this long.
   * @default 60000
   */
  leaseMs?: number | undefined;
  /** Called when the lease could not be renewed in time: the holder must stop changing the repository. */
  onLost?: ((err: Error) => void) | undefined;
  /** Cancels waiting for contenders (step 4). */
  signal?: AbortSignal | undefined;
}

/** Who holds a lease, as its object says. */
export interface LockHolder {
  /** Random id of this acquisition. */
  holder: string;
  operation: string;
  hostname: string;
  pid: number;
}

/** A held lock. Release it (or `await using`) when done. */
export interface RepositoryLock {
  /** The lock's name. */
  readonly name: string;
  /** This holder. */
  readonly holder: LockHolder;
  /** Aborted when the lease was lost (a renewal failed or came too late). */
  readonly signal: AbortSignal;
  /** Stops renewing and deletes the lease. Idempotent. */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_LEASE_MS = 60_000;
/** Pause between two looks at contenders still taking a ticket. */
const CHOOSING_POLL_MS = 100;

interface LockObject extends LockHolder {
  kind: 'choosing' | 'lease';
  key: string;
  ticket: number;
  expiresAt: Date;
}

function keyOf(name: string, kind: 'choosing' | 'lease', holder: string): string {
  return `${lockPrefix(name)}${kind}-${holder}.json`;
}

function encodeLockObject(o: Omit<LockObject, 'key'>): Buffer {
  return encodeRecord({
    kind: o.kind,
    holder: o.holder,
    operation: o.operation,
    hostname: o.hostname,
    pid: o.pid,
    ticket: o.ticket,
    expiresAt: o.expiresAt.toISOString(),
  });
}

function decodeLockObject(key: string, bytes: Buffer): LockObject {
  const r = RecordReader.parse(key, bytes);
  return {
    key,
    kind: r.oneOf('kind', ['choosing', 'lease'] as const),
    holder: r.string('holder'),
    operation: r.string('operation'),
    hostname: r.string('hostname'),
    pid: r.integer('pid'),
    ticket: r.integer('ticket'),
    expiresAt: r.date('expiresAt'),
  };
}

/** Whether a process with this id exists on this host (EPERM: it exists, under another user). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isLive(o: LockObject, now: number, host: string): boolean {
  if (o.expiresAt.getTime() <= now) return false;
  if (o.hostname === host && o.pid !== process.pid && !processExists(o.pid)) return false;
  return true;
}

/** One look at the lock's objects. */
interface LockView {
  /** The live objects other than `self`; dead ones are deleted (taken over) on the way. */
  live: LockObject[];
  /**
   * Another holder's choosing marker was listed but gone when read. Its holder deletes it only after
   * putting its lease, which a listing taken before that put does not show: this look may have missed a
   * contender, and must be taken again before deciding anything.
   */
  stale: boolean;
}

async function lookAtLock(storage: Storage, name: string, self: string): Promise<LockView> {
  const live: LockObject[] = [];
  const dead: string[] = [];
  let stale = false;
  const host = osHostname();
  for await (const info of storage.list({ prefix: lockPrefix(name) })) {
    const bytes = await readSmallObject(storage, info.key);
    if (bytes === undefined) {
      // A lease gone between the list and the read was released or lost: it blocks nothing.
      if (info.key.startsWith(`${lockPrefix(name)}choosing-`) && info.key !== keyOf(name, 'choosing', self)) stale = true;
      continue;
    }
    let o: LockObject;
    try {
      o = decodeLockObject(info.key, bytes);
    } catch {
      // Not ours to interpret (a partial write cannot happen: puts are atomic): it blocks nothing.
      continue;
    }
    if (o.holder === self) continue;
    if (isLive(o, Date.now(), host)) live.push(o);
    else dead.push(info.key);
  }
  if (dead.length > 0) await storage.deleteMany(dead);
  return { live, stale };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Take the repository lock `name` (see the module documentation), or fail with
 * {@link pg-basebackup/errors!RepositoryLockedError} naming the live holder.
 *
 * @example
 * ```ts
 * await using lock = await acquireLock(storage, 'repository', { operation: 'backup' });
 * // ... change the repository; stop when lock.signal aborts
 * ```
 */
export async function acquireLock(storage: Storage, name: string, options: AcquireLockOptions): Promise<RepositoryLock> {
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const me: LockHolder = { holder: randomBytes(8).toString('hex'), operation: options.operation, hostname: osHostname(), pid: process.pid };
  const choosingKey = keyOf(name, 'choosing', me.holder);
  const leaseKey = keyOf(name, 'lease', me.holder);
  const expiry = (): Date => new Date(Date.now() + leaseMs);

  await storage.put(choosingKey, encodeLockObject({ ...me, kind: 'choosing', ticket: 0, expiresAt: expiry() }));
  let ticket: number;
  try {
    // A lease this look misses (stale) is caught by step 4, which sees its holder choosing or its lease.
    const before = (await lookAtLock(storage, name, me.holder)).live;
    ticket = 1 + Math.max(0, ...before.filter((o) => o.kind === 'lease').map((o) => o.ticket));
    await storage.put(leaseKey, encodeLockObject({ ...me, kind: 'lease', ticket, expiresAt: expiry() }));
  } finally {
    await storage.delete(choosingKey);
  }
  let leaseExpiresAt = Date.now() + leaseMs;
  try {
    let view = await lookAtLock(storage, name, me.holder);
    while (view.stale || view.live.some((o) => o.kind === 'choosing')) {
      await sleep(CHOOSING_POLL_MS, options.signal);
      view = await lookAtLock(storage, name, me.holder);
    }
    const live = view.live;
    const ahead = live
      .filter((o) => o.kind === 'lease' && (o.ticket < ticket || (o.ticket === ticket && o.holder < me.holder)))
      .sort((a, b) => a.ticket - b.ticket);
    const first = ahead[0];
    if (first !== undefined) {
      throw new RepositoryLockedError(
        `the repository ${storage.location} is locked by ${first.operation} (process ${first.pid} on ${first.hostname}) until ${first.expiresAt.toISOString()} unless renewed`,
        {
          holder: { operation: first.operation, hostname: first.hostname, pid: first.pid },
          expiresAt: first.expiresAt,
          advice: 'wait for it to finish; a holder that died loses the lock when its lease expires',
        },
      );
    }
  } catch (err) {
    await storage.delete(leaseKey).catch(() => undefined);
    throw err;
  }

  const lost = new AbortController();
  let released = false;
  let renewing: Promise<void> = Promise.resolve();
  const renew = async (): Promise<void> => {
    try {
      // Gone means someone took it over after it expired: renewing would bring it back beside theirs.
      if (Date.now() >= leaseExpiresAt || (await storage.stat(leaseKey)) === undefined) {
        throw new RepositoryLockedError(`the lease on the repository lock of ${storage.location} expired before it was renewed`);
      }
      const next = Date.now() + leaseMs;
      await storage.put(leaseKey, encodeLockObject({ ...me, kind: 'lease', ticket, expiresAt: new Date(next) }));
      leaseExpiresAt = next;
    } catch (err) {
      if (released || lost.signal.aborted) return;
      clearInterval(timer);
      const error = err instanceof Error ? err : new Error(String(err));
      lost.abort(error);
      options.onLost?.(error);
    }
  };
  const timer = setInterval(
    () => {
      renewing = renewing.then(renew);
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  // A pending renewal must not keep a finished program alive.
  timer.unref();

  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    clearInterval(timer);
    await renewing;
    await storage.delete(leaseKey);
  };
  return { name, holder: me, signal: lost.signal, release, [Symbol.asyncDispose]: release };
}
