/**
 * The phase a backup is in and the time spent in each: phases only move forward, a phase
 * entered out of order (a later one already reached) is ignored. No I/O; the clock is
 * injectable for tests.
 * @module
 */
import type { BackupPhase, BackupPhaseDurations } from './events.js';

const ORDER: readonly BackupPhase[] = ['checkpoint', 'data', 'wal', 'manifest', 'done'];

/** Tracks the current {@link BackupPhase} and the durations of the finished ones. @internal */
export class PhaseClock {
  readonly #startedAt: number;
  #phase: BackupPhase | undefined;
  #enteredAt = 0;
  #endedAt: number | undefined;
  readonly #spent = new Map<BackupPhase, number>();

  /** @param startedAt when the backup started (`now()`'s clock), for the total duration. */
  constructor(
    private readonly now: () => number = () => performance.now(),
    startedAt?: number,
  ) {
    this.#startedAt = startedAt ?? now();
  }

  /** The current phase; `undefined` before `checkpoint`. */
  get phase(): BackupPhase | undefined {
    return this.#phase;
  }

  /** Enter `phase`. Returns false (and does nothing) when it is not after the current one. */
  enter(phase: BackupPhase): boolean {
    if (this.#phase !== undefined && ORDER.indexOf(phase) <= ORDER.indexOf(this.#phase)) return false;
    const t = this.now();
    if (this.#phase !== undefined) this.#spent.set(this.#phase, t - this.#enteredAt);
    this.#phase = phase;
    this.#enteredAt = t;
    if (phase === 'done') this.#endedAt = t;
    return true;
  }

  /** Whole milliseconds per phase (the current one counted up to now). */
  durations(): BackupPhaseDurations {
    const ms = (p: BackupPhase): number => {
      const spent = this.#spent.get(p) ?? (p === this.#phase && p !== 'done' ? this.now() - this.#enteredAt : 0);
      return Math.round(spent);
    };
    return { checkpointMs: ms('checkpoint'), dataMs: ms('data'), walMs: ms('wal'), manifestMs: ms('manifest') };
  }

  /** Whole milliseconds from the start to `done` (or to now, before `done`). */
  totalMs(): number {
    return Math.round((this.#endedAt ?? this.now()) - this.#startedAt);
  }
}
