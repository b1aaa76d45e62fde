/**
 * Log sequence numbers (WAL positions): parsing and printing them as PostgreSQL does ({@link parseLsn}
 * and {@link formatLsn}, also in the root entry point), comparing them, and their arithmetic. This
 * entry point reaches nothing else of the library.
 *
 * @example
 * ```ts
 * import { compareLsn, formatLsn, lsnAdd, parseLsn } from 'pg-basebackup/lsn';
 *
 * const start = parseLsn('0/3000028');
 * const end = lsnAdd(start, 16 * 1024 * 1024);
 * console.log(formatLsn(end), compareLsn(start, end)); // 0/4000028 -1
 * ```
 * @module pg-basebackup/lsn
 */
export {
  compareLsn,
  formatLsn,
  INVALID_LSN,
  isLsnText,
  lsn,
  lsnAdd,
  lsnDiff,
  lsnSubtract,
  parseLsn,
  type FormatLsnOptions,
  type Lsn,
} from '../lsn.js';
