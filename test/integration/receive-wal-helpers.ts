// Shared by the receive-wal integration tests: a 1 MB-segment cluster, WAL generation, and the
// checks that compare an archive with the server's pg_wal.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ReceiveWalEvent, WalReceiver } from '../../src/index.js';
import { formatLsn, parseLsn, type Lsn } from '../../src/lsn.js';
import { startCluster, type Cluster } from '../harness/index.js';

export const SEG = 1024 * 1024;
export const SEGMENT_RE = /^[0-9A-F]{24}$/;

/** A primary with 1 MB segments, ready for WAL tests. */
export async function walCluster(major: number, conf?: Record<string, string>): Promise<Cluster> {
  const c = await startCluster({ major, ssl: false, walSegmentSizeMb: 1, ...(conf ? { conf } : {}) });
  await c.sql('create table if not exists t(i int, pad text)');
  return c;
}

/** Write some WAL and switch to a new segment; returns the position after the switch. */
export async function makeWal(c: Cluster, segments = 1): Promise<Lsn> {
  for (let i = 0; i < segments; i++) {
    await c.sql(`insert into t select g, repeat('x', 200) from generate_series(1, 500) g`);
    await c.sql('select pg_switch_wal()');
  }
  const [row] = await c.sql<{ lsn: string }>('select pg_current_wal_lsn()::text lsn');
  return parseLsn(row!.lsn);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The server's copy of a segment, if it still has it. */
export function serverSegment(c: Cluster, name: string): Buffer | undefined {
  const p = join(c.dataDir, 'pg_wal', name);
  return existsSync(p) ? readFileSync(p) : undefined;
}

/** Every completed segment event's checksum equals the server's file, and there is no gap between them. */
export function expectSameAsServer(c: Cluster, completed: { segment: string; sha256?: string | undefined }[]): number {
  let compared = 0;
  for (const ev of completed) {
    const server = serverSegment(c, ev.segment);
    if (server === undefined) continue; // recycled since: nothing to compare with
    expect(sha256(server), ev.segment).toBe(ev.sha256);
    compared++;
  }
  return compared;
}

/** Segment names (complete, uncompressed or not) in an archive directory, sorted. */
export function archivedSegments(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^[0-9A-F]{24}(\.gz|\.lz4|\.zst)?$/.test(n))
    .sort();
}

/** Consecutive segment numbers of one timeline: no gap. */
export function expectContiguous(names: string[]): void {
  const byTli = new Map<string, number[]>();
  for (const n of names) {
    const tli = n.slice(0, 8);
    const seg = Number.parseInt(n.slice(8, 24), 16); // 1 MB segments: hi*4096+lo fits easily
    const hi = Number.parseInt(n.slice(8, 16), 16);
    const lo = Number.parseInt(n.slice(16, 24), 16);
    void seg;
    byTli.set(tli, [...(byTli.get(tli) ?? []), hi * 4096 + lo]);
  }
  for (const [tli, segs] of byTli) {
    segs.sort((a, b) => a - b);
    for (let i = 1; i < segs.length; i++) expect(segs[i], `timeline ${tli} after segment ${segs[i - 1]}`).toBe(segs[i - 1]! + 1);
  }
}

export function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Collect events until `until` says stop (or the receiver ends); returns them. */
export async function collect(
  receiver: WalReceiver,
  until?: (ev: ReceiveWalEvent, all: ReceiveWalEvent[]) => boolean | Promise<boolean>,
): Promise<ReceiveWalEvent[]> {
  const all: ReceiveWalEvent[] = [];
  for await (const ev of receiver) {
    all.push(ev);
    if (until && (await until(ev, all))) break;
  }
  return all;
}

export function lsnText(l: Lsn): string {
  return formatLsn(l);
}

/**
 * A TCP proxy in front of a server: `cut()` closes every proxied connection (a network failure),
 * `stall()` keeps them open but forwards nothing more in either direction (a hung server or a
 * black-holed route); new connections are forwarded normally.
 */
export interface TcpProxy {
  port: number;
  /** Connections proxied so far. */
  readonly connections: number;
  cut(): void;
  stall(): void;
  /** Send new connections to another port (e.g. another server). */
  retarget(port: number): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const { createServer, connect } = await import('node:net');
  type Pair = { client: import('node:net').Socket; upstream: import('node:net').Socket };
  const live = new Set<Pair>();
  const stalled = new Set<Pair>();
  let connections = 0;
  let target = targetPort;
  const server = createServer((client) => {
    connections++;
    const upstream = connect(target, targetHost);
    const pair = { client, upstream };
    live.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const cut = (): void => {
    for (const p of [...live]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    live.clear();
  };
  return {
    port,
    get connections() {
      return connections;
    },
    cut,
    retarget(p: number) {
      target = p;
    },
    stall() {
      for (const p of [...live]) {
        p.client.unpipe(p.upstream);
        p.upstream.unpipe(p.client);
        p.client.pause();
        p.upstream.pause();
        stalled.add(p);
      }
      live.clear();
    },
    async close() {
      cut();
      for (const p of stalled) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Events of a running receiver, collected in the background, with waits on them. */
export class EventLog {
  readonly events: ReceiveWalEvent[] = [];
  readonly done: Promise<unknown>;
  #ended = false;
  #outcome: unknown;
  #wake: (() => void)[] = [];
  constructor(receiver: WalReceiver) {
    this.done = (async () => {
      try {
        for await (const ev of receiver) {
          this.events.push(ev);
          this.#notify();
        }
        return undefined;
      } catch (err) {
        this.#outcome = err;
        return err;
      } finally {
        this.#ended = true;
        this.#notify();
      }
    })();
  }

  #notify(): void {
    for (const w of this.#wake.splice(0)) w();
  }

  count(type: ReceiveWalEvent['type'], from = 0): number {
    return this.events.slice(from).filter((e) => e.type === type).length;
  }

  /**
   * Wait until `n` events of `type` arrived after index `from`; returns the index after the n-th.
   * Fails at once if the receiver ends first.
   */
  async waitFor(type: ReceiveWalEvent['type'], n = 1, from = 0, timeoutMs = 50_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let seen = 0;
      for (let i = from; i < this.events.length; i++) {
        if (this.events[i]!.type === type && ++seen === n) return i + 1;
      }
      if (this.#ended) throw new Error(`the receiver ended before ${n} ${type} events: ${String(this.#outcome)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} ${type} events after #${from} (have ${seen})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** Background write load (inserts, a WAL switch every few); errors while the server is down are retried. */
export function startLoad(c: Cluster): () => Promise<number> {
  let stop = false;
  let writes = 0;
  const running = (async () => {
    while (!stop) {
      try {
        await c.sql(`insert into t select g, repeat('l', 100) from generate_series(1, 300) g`);
        if (++writes % 4 === 0) await c.sql('select pg_switch_wal()');
        // Paced: flat out, a 1 MB-segment server writes dozens of segments a second and checkpoints
        // (max_wal_size is 64 segments) recycle them faster than a test can look at them.
        await new Promise((r) => setTimeout(r, 20));
      } catch {
        // The server is restarting: try again shortly.
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  return async () => {
    stop = true;
    await running;
    return writes;
  };
}

/**
 * The archive is whole: complete segments contiguous and equal to the server's, each completed
 * once; the .partial (if any) is the segment after the last complete one and agrees with the
 * server's bytes as far as it was written.
 */
export function expectWholeArchive(c: Cluster, dir: string, events: ReceiveWalEvent[]): void {
  const done = events.filter((e): e is Extract<ReceiveWalEvent, { type: 'segment-completed' }> => e.type === 'segment-completed');
  expect(new Set(done.map((e) => e.segment)).size, 'each segment completed once').toBe(done.length);
  expect(expectSameAsServer(c, done)).toBe(done.length);
  const names = archivedSegments(dir);
  expectContiguous(names);
  for (const n of names) {
    const archived = readFileSync(join(dir, n));
    const server = serverSegment(c, n);
    if (server) expect(sha256(archived), n).toBe(sha256(server));
  }
  const partials = readdirSync(dir).filter((f) => f.endsWith('.partial'));
  expect(partials.length).toBeLessThanOrEqual(1);
  const lastPartial = events.filter((e) => e.type === 'segment-partial').at(-1);
  if (partials.length === 1 && lastPartial?.type === 'segment-partial') {
    const seg = partials[0]!.slice(0, 24);
    expect(seg).toBe(lastPartial.segment);
    if (names.length > 0) expectContiguous([...names, seg]);
    const written = Number(lastPartial.endLsn - lastPartial.startLsn);
    const mine = readFileSync(join(dir, partials[0]!)).subarray(0, written);
    const server = serverSegment(c, seg);
    if (server) expect(mine.equals(server.subarray(0, written)), `${seg} prefix of ${written} bytes`).toBe(true);
  }
}
