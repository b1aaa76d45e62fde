import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One postmaster started by some worker in this run, as recorded for the final teardown. */
export interface RegistryEntry {
  id: string;
  dataDir: string;
  binDir: string;
  workerPid: number;
}

/** Every postmaster recorded under a run root. */
export function readRegistry(root: string): RegistryEntry[] {
  const regDir = join(root, 'registry');
  let names: string[];
  try {
    names = readdirSync(regDir);
  } catch {
    return [];
  }
  const out: RegistryEntry[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(regDir, name), 'utf8')) as RegistryEntry);
    } catch {
      // A half-written entry belongs to a worker killed mid-write, before its server started.
    }
  }
  return out;
}

/**
 * The postmaster pid of a data directory, when that process is still a live postgres. The first line of
 * postmaster.pid is the pid; we check /proc/<pid>/comm so that a recycled pid is never signalled.
 */
export function livePostmasterPid(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && isPostgres(pid) ? pid : undefined;
}

/** Whether a pid is a live (non-zombie) postgres process. */
export function isPostgres(pid: number): boolean {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    // A zombie is dead for our purposes; its parent (pg_ctl's shell or us) reaps it.
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return (comm === 'postgres' || comm === 'postmaster') && state !== 'Z';
  } catch {
    return false;
  }
}

/** Children of a process, from /proc (the backends, walsenders and auxiliary processes of a postmaster). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised comm, which may itself contain spaces or parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // Process exited while we looked.
    }
  }
  return out;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Stop postmasters the way `pg_ctl stop -m immediate` does (SIGQUIT: children exit at once, no shutdown
 * checkpoint), then SIGKILL whatever remains after `graceMs`, children included. Synchronous so that it also
 * works from a process 'exit' handler. Returns the pids that needed SIGKILL.
 */
export function killPostmasters(dataDirs: readonly string[], graceMs = 10_000): number[] {
  const pids = dataDirs.map(livePostmasterPid).filter((p): p is number => p !== undefined);
  for (const pid of pids) signal(pid, 'SIGQUIT');
  const deadline = Date.now() + graceMs;
  let alive = pids;
  while (alive.length > 0 && Date.now() < deadline) {
    sleepSync(50);
    alive = alive.filter(isPostgres);
  }
  for (const pid of alive) {
    for (const child of childrenOf(pid)) signal(child, 'SIGKILL');
    signal(pid, 'SIGKILL');
  }
  return alive;
}

/** Stop every postmaster registered under a run root and delete the root. */
export function teardownRunRoot(root: string): { stopped: number; killed: number } {
  const entries = readRegistry(root);
  const live = entries.filter((e) => livePostmasterPid(e.dataDir) !== undefined);
  const killed = killPostmasters(live.map((e) => e.dataDir));
  rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  return { stopped: live.length, killed: killed.length };
}

/**
 * Clean up after earlier runs whose runner died without teardown (SIGKILL, OOM): any
 * `<tmpdir>/<prefix>*` root whose owner.pid is no longer alive.
 */
export function sweepStaleRunRoots(prefix: string): string[] {
  const swept: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(prefix)) continue;
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8').trim());
    } catch {
      continue;
    }
    if (owner > 0 && processAlive(owner)) continue;
    teardownRunRoot(dir);
    swept.push(dir);
  }
  return swept;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
