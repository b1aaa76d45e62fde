// Which resource bounds a run: a label for the report, from what GNU time measured of the tool.
// On this kind of machine the server's walsender and the client each have a core: a tool that is busy
// for most of the wall time is CPU-bound (the client's own work is the limit); one that mostly waits is
// waiting on the server to read and send, or (with fsync) on the disk, which the same case run with -N
// shows: the time the fsync run adds over the -N run, when it is a large part of the wall time.
import type { CaseResult, SideResult } from './report.js';

/** The share of the wall time the tool spent on a CPU above which the run counts as CPU-bound. */
const CPU_BOUND_SHARE = 0.8;
/** The share of an fsync run's wall time spent beyond the same -N run above which it counts as disk-bound. */
const DISK_BOUND_SHARE = 0.25;

export type Bound = 'CPU' | 'server' | 'disk';

/** CPU when the tool was busy for most of its wall time, else waiting on the server. */
export function boundOf(side: SideResult): Bound {
  return side.cpuMs.median / side.wallMs.median >= CPU_BOUND_SHARE ? 'CPU' : 'server';
}

/** Relabel fsync runs that spent a large share of their time beyond their -N twin's as disk-bound. */
export function markDiskBound(cases: CaseResult[]): void {
  for (const c of cases) {
    if (c.sync !== 'fsync' || !c.bound) continue;
    const twin = cases.find((x) => x.id === c.id && x.sync === 'nosync');
    for (const who of ['ours', 'reference'] as const) {
      const side = c[who];
      const base = twin?.[who];
      if (!side || !base || !c.bound[who]) continue;
      const extra = side.wallMs.median - base.wallMs.median;
      if (extra / side.wallMs.median > DISK_BOUND_SHARE) c.bound[who] = 'disk';
    }
  }
}
