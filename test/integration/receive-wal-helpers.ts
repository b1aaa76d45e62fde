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
export async function walCluster(major: number): Promise<Cluster> {
  const c = await startCluster({ major, ssl: false, walSegmentSizeMb: 1 });
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
export function expectSameAsServer(c: Cluster, completed: { segment: string; sha256: string }[]): number {
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
  return readdirSync(dir).filter((n) => /^[0-9A-F]{24}(\.gz|\.lz4|\.zst)?$/.test(n)).sort();
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
export async function collect(receiver: WalReceiver, until?: (ev: ReceiveWalEvent, all: ReceiveWalEvent[]) => boolean | Promise<boolean>): Promise<ReceiveWalEvent[]> {
  const all: ReceiveWalEvent[] = [];
  for await (const ev of receiver) {
    all.push(ev);
    if (until && await until(ev, all)) break;
  }
  return all;
}

export function lsnText(l: Lsn): string {
  return formatLsn(l);
}
