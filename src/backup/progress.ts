/**
 * Progress accounting of a backup session: bytes per archive and in total against the
 * server's estimate, throttled to one report per interval plus a final one. No I/O; the
 * clock is injectable for tests.
 * @module
 */
import type { BackupProgress } from './events.js';

/** Counts received archive bytes and decides when a progress report is due. */
export class ProgressTracker {
  #bytesDone = 0;
  #estimate: number | undefined;
  #archive: { name: string; index: number; bytesDone: number } | undefined;
  #archivesDone = 0;
  #archivesTotal = 0;
  #serverBytesDone: number | undefined;
  #finished = false;
  #lastReport = -Infinity;

  constructor(private readonly intervalMs: number, private readonly now: () => number = () => performance.now()) {}

  /** Tablespace sizes in kB from the header (`null` entries: no estimate). */
  setTablespaces(sizesKb: (number | null)[]): void {
    this.#archivesTotal = sizesKb.length;
    this.#estimate = sizesKb.every((s) => s !== null) ? sizesKb.reduce<number>((n, s) => n + (s ?? 0) * 1024, 0) : undefined;
  }

  startArchive(name: string, index: number): void {
    this.#archive = { name, index, bytesDone: 0 };
  }

  /** Returns true when a report is due. */
  addBytes(n: number): boolean {
    this.#bytesDone += n;
    if (this.#archive) this.#archive.bytesDone += n;
    return this.#due();
  }

  endArchive(): boolean {
    this.#archivesDone++;
    this.#archive = undefined;
    return this.#due();
  }

  serverProgress(bytesDone: number): void {
    this.#serverBytesDone = bytesDone;
  }

  /** Marks the transfer finished; the next snapshot is the final report. */
  finish(): void {
    this.#finished = true;
    this.#archive = undefined;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Current state, as reported. */
  snapshot(): BackupProgress {
    const total = this.#finished
      ? this.#bytesDone
      : this.#estimate === undefined ? undefined : Math.max(this.#estimate, this.#bytesDone);
    return {
      bytesDone: this.#bytesDone,
      totalBytes: total,
      archive: this.#archive ? { ...this.#archive } : undefined,
      archivesDone: this.#archivesDone,
      archivesTotal: this.#archivesTotal,
      serverBytesDone: this.#serverBytesDone,
      finished: this.#finished,
    };
  }

  #due(): boolean {
    const t = this.now();
    if (t - this.#lastReport < this.intervalMs) return false;
    this.#lastReport = t;
    return true;
  }
}
