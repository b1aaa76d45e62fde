// One timed child process. GNU time (/usr/bin/time) reports the child's user and system CPU time and
// its peak resident set size from wait4()'s rusage, which also covers the descendants the child waited
// for (pg_basebackup forks its WAL streamer and waits for it), so both tools are measured the same way.
// Wall time is taken here, around the spawn, with the monotonic clock.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

/** What one run cost. */
export interface Sample {
  wallMs: number;
  userMs: number;
  sysMs: number;
  /** Peak RSS of the child (and waited-for descendants), in bytes. */
  peakRssBytes: number;
}

export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
}

let statsDir: string | undefined;

/**
 * Run `program args` under GNU time and measure it. Rejects when it exits non-zero, with its stderr.
 * @param stdout `devnull`: standard output is /dev/null; `pipe`: it is a pipe read by `cat > /dev/null`
 *   (bash with pipefail, so either side failing fails the run). GNU time measures the tool alone; the
 *   wall time lasts until cat has read everything, as a user's pipeline does.
 */
export async function measure(program: string, args: string[], stdout: 'devnull' | 'pipe', env?: NodeJS.ProcessEnv): Promise<Sample> {
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} is missing: install GNU time (apt-get install time)`);
  statsDir ??= await mkdtemp(join(tmpdir(), 'pgbb-bench-time-'));
  const statsFile = join(statsDir, 'stats');
  await rm(statsFile, { force: true });
  // %e/%U/%S in seconds (centiseconds resolution), %M in KiB.
  const timed = [GNU_TIME, '-o', statsFile, '-f', '%e %U %S %M', program, ...args];
  const [file, argv] =
    stdout === 'pipe'
      ? (['/bin/bash', ['-c', 'set -o pipefail; "$@" | cat > /dev/null', 'bash', ...timed]] as const)
      : ([timed[0]!, timed.slice(1)] as const);
  const t0 = performance.now();
  // 'ignore' connects standard output to /dev/null.
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}) });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    if (stderr.length < 20_000) stderr += s;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  const wallMs = performance.now() - t0;
  if (code !== 0) {
    throw new CommandFailed(`${program} ${args.join(' ')} exited with ${String(code)}:\n${stderr.trim()}`);
  }
  const [, user, sys, maxKb] = (await readFile(statsFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  return {
    wallMs,
    userMs: (user ?? 0) * 1000,
    sysMs: (sys ?? 0) * 1000,
    peakRssBytes: (maxKb ?? 0) * 1024,
  };
}

/** Remove the scratch directory of GNU time's output. */
export async function cleanupMeasure(): Promise<void> {
  if (statsDir) await rm(statsDir, { recursive: true, force: true });
  statsDir = undefined;
}

/** Summary statistics of a list of numbers. */
export interface Stats {
  median: number;
  min: number;
  max: number;
}

export function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? Number.NaN : n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { median, min: s[0] ?? Number.NaN, max: s[n - 1] ?? Number.NaN };
}
