/**
 * The page checksum failures of a backup, gathered from the server's WARNINGs (basebackup.c
 * reports each failed block, at most 5 per file, then per-file and overall totals). No I/O.
 * @module
 */
import { ChecksumFailureError, type ChecksumFailureReport } from '../errors.js';
import { parseChecksumNotice, type ChecksumFailureEvent } from './events.js';

/** Per-file checksum failure reports, built from notice messages. @internal */
export class ChecksumReports {
  readonly #files = new Map<string, ChecksumFailureReport>();
  #total: number | undefined;

  /** Takes a notice message; returns the event to report, when it named a block or a file total. */
  note(message: string): ChecksumFailureEvent | undefined {
    const parsed = parseChecksumNotice(message);
    if (!parsed) return undefined;
    if (parsed.kind === 'total') {
      this.#total = parsed.count;
      return undefined;
    }
    let report = this.#files.get(parsed.file);
    if (!report) {
      report = { file: parsed.file, blocks: [], count: 0 };
      this.#files.set(parsed.file, report);
    }
    if (parsed.kind === 'block') {
      report.blocks.push(parsed.block);
      report.count = Math.max(report.count, report.blocks.length);
      return { file: parsed.file, block: parsed.block };
    }
    if (parsed.kind === 'file-total') {
      report.count = parsed.count;
      return { file: parsed.file, count: parsed.count };
    }
    return undefined;
  }

  /** Copies of the reports so far, in the order the files were first named. */
  reports(): ChecksumFailureReport[] {
    return [...this.#files.values()].map((f) => ({ ...f, blocks: [...f.blocks] }));
  }

  /** The error for a backup the server ended with ERRCODE_DATA_CORRUPTED (`cause`). */
  error(cause: unknown): ChecksumFailureError {
    return new ChecksumFailureError(this.reports(), this.#total, { cause });
  }
}
