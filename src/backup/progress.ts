/**
 * Progress accounting of a backup session: bytes per archive and in total against the
 * server's estimate, throttled to one report per interval plus a final one. No I/O; the
 * clock is injectable for tests.
 * @module
 */
import type { BackupPhase, BackupProgress } from './events.js';

/** Counts received archive bytes and decides when a progress report is due. */
export class ProgressTracker {
  #bytesDone = 0;
  #estimate: number | undefined;
  #archive: { name: string; index: number; bytesDone: number } | undefined;
  #archivesDone = 0;
  #archivesTotal = 0;
  #serverBytesDone: number | undefined;
  #walBytesDone = 0;
  #phase: BackupPhase = 'checkpoint';
  /** The tablespace data is complete: the total is what arrived. */
  #dataDone = false;
  #finished = false;
  #lastReport = -Infinity;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

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

  /** WAL bytes written by the WAL stream. Returns true when a report is due. */
  addWalBytes(n: number): boolean {
    this.#walBytesDone += n;
    return this.#due();
  }

  /** The spooled `pg_wal.tar` is being handed over (it counts in neither bytes nor archives). */
  startWalArchive(name: string, index: number): void {
    this.#archive = { name, index, bytesDone: 0 };
  }

  /** Bytes of the spooled `pg_wal.tar` handed over. Returns true when a report is due. */
  addWalArchiveBytes(n: number): boolean {
    if (this.#archive) this.#archive.bytesDone += n;
    return this.#due();
  }

  endWalArchive(): void {
    this.#archive = undefined;
  }

  setPhase(phase: BackupPhase): void {
    this.#phase = phase;
  }

  /** Every tablespace archive arrived (the end position came): the total is now exact. */
  endData(): void {
    this.#dataDone = true;
    this.#archive = undefined;
  }

  /** Marks the transfer finished; the next snapshot is the final report. */
  finish(): void {
    this.endData();
    this.#finished = true;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Current state, as reported. */
  snapshot(): BackupProgress {
    const total = this.#dataDone ? this.#bytesDone : this.#estimate === undefined ? undefined : Math.max(this.#estimate, this.#bytesDone);
    return {
      bytesDone: this.#bytesDone,
      totalBytes: total,
      archive: this.#archive ? { ...this.#archive } : undefined,
      archivesDone: this.#archivesDone,
      archivesTotal: this.#archivesTotal,
      serverBytesDone: this.#serverBytesDone,
      walBytesDone: this.#walBytesDone,
      phase: this.#phase,
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
