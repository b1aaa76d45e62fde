/**
 * What SIGINT/SIGTERM do to a running pgbb, as a small state machine apart from the process so it
 * is tested with a clock of its own:
 *
 * - running → (first signal) → stopping: the command is aborted through its AbortSignal and cleans
 *   up as after any failure (temporary slot dropped, partial output removed), then exits 1.
 * - stopping → (signal within {@link INTERRUPT_BURST_MS} of the first) → stopping: the same
 *   interrupt delivered twice. `timeout`, and process managers that signal the whole process group,
 *   send one signal to the child and one to the group, so pgbb receives two within microseconds;
 *   taking the second as "stop at once" used to skip the cleanup and leave a partial backup behind.
 * - stopping → (a later signal) → exit: the user asked again. pgbb stops waiting for the cleanup, but
 *   still removes synchronously what the command registered, says so, and exits 1.
 * @module
 */

/** Signals closer together than this are one interrupt delivered twice. A person pressing Ctrl-C twice is slower. */
export const INTERRUPT_BURST_MS = 250;

/** Options of {@link createInterruptHandler}. */
export interface InterruptHandlerOptions {
  /** The first interrupt: abort the running command. */
  abort(signal: NodeJS.Signals): void;
  /** A deliberate second interrupt: clean up synchronously and exit. */
  exitNow(signal: NodeJS.Signals): void;
  /** @default Date.now */
  now?: () => number;
  /** @default INTERRUPT_BURST_MS */
  burstMs?: number;
}

/** The listener for SIGINT/SIGTERM. */
export function createInterruptHandler(o: InterruptHandlerOptions): (signal: NodeJS.Signals) => void {
  const now = o.now ?? Date.now;
  const burstMs = o.burstMs ?? INTERRUPT_BURST_MS;
  let state: { kind: 'running' } | { kind: 'stopping'; since: number } | { kind: 'exiting' } = { kind: 'running' };
  return (signal) => {
    const t = now();
    switch (state.kind) {
      case 'running':
        state = { kind: 'stopping', since: t };
        o.abort(signal);
        return;
      case 'stopping':
        if (t - state.since < burstMs) return;
        state = { kind: 'exiting' };
        o.exitNow(signal);
        return;
      case 'exiting':
        return;
    }
  };
}

/** What one emergency cleanup did (see `CliContext.onEmergencyExit`). */
export interface EmergencyCleanupResult {
  removed: string[];
  failed: string[];
  notes?: string[];
}

/** Emergency cleanups registered by the running command (see `CliContext.onEmergencyExit`). */
export class EmergencyCleanups {
  readonly #cleanups = new Set<() => EmergencyCleanupResult>();

  /** Register one; returns the function that unregisters it. */
  add(cleanup: () => EmergencyCleanupResult): () => void {
    this.#cleanups.add(cleanup);
    return () => this.#cleanups.delete(cleanup);
  }

  /** Run them all, synchronously; returns the lines to print. */
  run(prog: string, signal: NodeJS.Signals): string[] {
    const removed: string[] = [];
    const failed: string[] = [];
    const notes: string[] = [];
    for (const c of this.#cleanups) {
      const r = c();
      removed.push(...r.removed);
      failed.push(...r.failed);
      notes.push(...(r.notes ?? []));
    }
    this.#cleanups.clear();
    const lines = [`${prog}: ${signal} again: stopping at once`];
    for (const p of removed) lines.push(`${prog}: removed "${p}"`);
    for (const p of failed) lines.push(`${prog}: warning: could not remove "${p}": remove it yourself`);
    for (const n of notes) lines.push(`${prog}: warning: ${n}`);
    return lines;
  }
}
