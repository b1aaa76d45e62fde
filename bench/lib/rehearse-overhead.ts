// The rehearse case: what `pgbb rehearse --repo` adds beyond the restore itself, on one backup of the S3
// repository. Each run times `pgbb restore --repo ADDR -D DIR --no-verify --no-sync` (the restore an operator
// would run; the rehearsal does not fsync either: its directory is thrown away), then `pgbb rehearse --repo
// ADDR --json`, whose report gives its own phase timings: restore (fetch and lay out), start, recovery
// (replay to the end of the archive, here the backup's own WAL), the checks (every table read, amcheck,
// checksums) and stop and cleanup. The overhead is the rehearsal's wall time minus the restore's.
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { measure, stats, type Stats } from './measure.js';

/** The phases of one rehearsal, from its JSON report, in milliseconds. */
export interface RehearsePhases {
  restore: number;
  /** Finding the binaries and starting the server. */
  start: number;
  /** From the server's start to the end of recovery (promotion). */
  recovery: number;
  /** read-tables + amcheck + checksums + sql-checks. */
  checks: number;
  /** stop + cleanup. */
  stop: number;
}

export interface RehearseOverheadResult {
  status: 'ok' | 'not available' | 'failed';
  reason?: string;
  restoreCommand?: string[];
  rehearseCommand?: string[];
  /** Wall time of each `pgbb restore --repo` run, ms. */
  restoreWallMs?: Stats;
  /** Wall time of each `pgbb rehearse --repo` run, ms. */
  rehearseWallMs?: Stats;
  /** Median of each phase over the rehearsal runs, ms. */
  phasesMs?: RehearsePhases;
  /** Every run's figures. */
  runs?: { restoreWallMs: number; rehearseWallMs: number; phases: RehearsePhases }[];
}

export interface RehearseOverheadSetup {
  /** `[node, main.js]`. */
  ours: string[];
  /** The repository holding one backup. */
  address: string;
  /** The server binaries of the backup's major. */
  pgBin: string;
  /** The OS user the rehearsal's server runs as (when the bench runs as root). */
  runAs: string | undefined;
  env: NodeJS.ProcessEnv;
  work: string;
  runs: number;
  log: (line: string) => void;
}

interface StepJson {
  name: string;
  status: string;
  durationMs: number;
}

/** The phases of a rehearsal report. */
export function phasesOf(steps: readonly StepJson[]): RehearsePhases {
  const sum = (...names: string[]) => steps.filter((s) => names.includes(s.name)).reduce((n, s) => n + s.durationMs, 0);
  return {
    restore: sum('restore', 'archive'),
    start: sum('binaries', 'start'),
    recovery: sum('recovery'),
    checks: sum('read-tables', 'amcheck', 'checksums', 'sql-checks'),
    stop: sum('stop', 'cleanup'),
  };
}

function rehearseOnce(program: string[], env: NodeJS.ProcessEnv): Promise<{ wallMs: number; steps: StepJson[] }> {
  const t0 = performance.now();
  const child = spawn(program[0]!, program.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 20_000) stderr += s;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) {
        reject(new Error(`pgbb rehearse exited with ${String(code)}: ${stderr.trim()} ${stdout.slice(0, 2000)}`));
        return;
      }
      resolve({ wallMs, steps: (JSON.parse(stdout) as { steps: StepJson[] }).steps });
    });
  });
}

const median = (values: number[]) => stats(values).median;

export async function runRehearseOverhead(s: RehearseOverheadSetup): Promise<RehearseOverheadResult> {
  const target = join(s.work, 'rehearse-restore-target');
  const restoreArgs = ['restore', '--repo', s.address, '-D', target, '--no-verify', '--no-sync'];
  const rehearseArgs = ['rehearse', '--repo', s.address, '--pg-bin', s.pgBin, ...(s.runAs ? ['--run-as', s.runAs] : []), '--json'];
  const runs: NonNullable<RehearseOverheadResult['runs']> = [];
  try {
    for (let i = 0; i < s.runs; i++) {
      await rm(target, { recursive: true, force: true });
      const restore = await measure(s.ours[0]!, [...s.ours.slice(1), ...restoreArgs], 'devnull', s.env);
      await rm(target, { recursive: true, force: true });
      const rehearsal = await rehearseOnce([...s.ours, ...rehearseArgs], s.env);
      const phases = phasesOf(rehearsal.steps);
      runs.push({ restoreWallMs: restore.wallMs, rehearseWallMs: rehearsal.wallMs, phases });
      s.log(
        `  rehearse run ${i + 1}: restore ${(restore.wallMs / 1000).toFixed(2)} s, rehearse ${(rehearsal.wallMs / 1000).toFixed(2)} s ` +
          `(its restore ${(phases.restore / 1000).toFixed(2)} s, start ${(phases.start / 1000).toFixed(2)} s, recovery ${(phases.recovery / 1000).toFixed(2)} s, ` +
          `checks ${(phases.checks / 1000).toFixed(2)} s, stop ${(phases.stop / 1000).toFixed(2)} s)`,
      );
    }
  } catch (err) {
    return { status: 'failed', reason: err instanceof Error ? err.message : String(err) };
  }
  const phase = (k: keyof RehearsePhases) => median(runs.map((r) => r.phases[k]));
  return {
    status: 'ok',
    restoreCommand: ['pgbb', ...restoreArgs],
    rehearseCommand: ['pgbb', ...rehearseArgs],
    restoreWallMs: stats(runs.map((r) => r.restoreWallMs)),
    rehearseWallMs: stats(runs.map((r) => r.rehearseWallMs)),
    phasesMs: {
      restore: phase('restore'),
      start: phase('start'),
      recovery: phase('recovery'),
      checks: phase('checks'),
      stop: phase('stop'),
    },
    runs,
  };
}
