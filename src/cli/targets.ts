/**
 * What `pgbb backup` may remove on a forced exit: the directories a backup writes (`-D`, `--waldir`,
 * the `-T` targets), each as it was before the run: absent (the run creates it: remove it) or empty
 * (the run fills it: empty it again). A non-empty one is refused by the library before anything is
 * written, so it is never touched. The removal is synchronous because it runs in a signal handler
 * just before `process.exit`, when no promise will settle any more.
 * @module
 */
import { readdirSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BackupCliOptions } from './backup-flags.js';

/** A directory the backup writes, and what it was before. */
export interface BackupTarget {
  /** Absolute path. */
  path: string;
  /** `absent`: the run creates it; `empty`: it existed, empty. */
  before: 'absent' | 'empty';
}

/** The directories `cli` writes and their state now; non-empty ones (refused by the library) are left out. */
export async function snapshotTargets(
  cli: Pick<BackupCliOptions, 'toStdout' | 'pgdata' | 'walDir' | 'tablespaceMapping'>,
): Promise<BackupTarget[]> {
  if (cli.toStdout) return [];
  const paths = [cli.pgdata, ...(cli.walDir !== undefined ? [cli.walDir] : []), ...cli.tablespaceMapping.values()];
  const out: BackupTarget[] = [];
  for (const p of new Set(paths.map((x) => resolve(x)))) {
    try {
      if ((await readdir(p)).length === 0) out.push({ path: p, before: 'empty' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') out.push({ path: p, before: 'absent' });
    }
  }
  return out;
}

/** What {@link emergencyCleanupFor} did. */
export interface EmergencyCleanup {
  /** Targets removed (absent before) or emptied (empty before). */
  removed: string[];
  /** Targets that could not be put back, for the message. */
  failed: string[];
  /** What is left to the user, one sentence each. */
  notes?: string[];
}

/** Put every target back as it was: remove what was absent, empty what was empty. Synchronous. */
export function emergencyCleanupFor(targets: readonly BackupTarget[]): EmergencyCleanup {
  const removed: string[] = [];
  const failed: string[] = [];
  for (const t of targets) {
    try {
      if (t.before === 'absent') {
        rmSync(t.path, { recursive: true, force: true });
      } else {
        for (const entry of readdirSync(t.path)) rmSync(join(t.path, entry), { recursive: true, force: true });
      }
      removed.push(t.path);
    } catch {
      failed.push(t.path);
    }
  }
  return { removed, failed };
}
