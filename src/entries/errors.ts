/**
 * Every error class pg-basebackup raises, with the union and map that let TypeScript narrow a caught
 * error by its literal `code`. The root entry point re-exports the base class, {@link isPgBackupError}
 * and the classes applications most often catch; they are the same objects as these, so `instanceof`
 * gives the same answer whichever entry point a class came from.
 *
 * @example
 * ```ts
 * import { isPgBackupError, TlsError } from 'pg-basebackup/errors';
 *
 * function explain(err: unknown): string {
 *   if (err instanceof TlsError) return `TLS: ${err.message}`;
 *   if (isPgBackupError(err)) {
 *     switch (err.code) {
 *       case 'ERR_PGBB_SERVER': return `server ${err.sqlState}: ${err.serverMessage}`; // a ServerError
 *       case 'ERR_PGBB_IO': return `${err.path ?? ''}: ${err.syscallCode ?? err.message}`; // an IoError
 *       default: return err.advice ?? err.message;
 *     }
 *   }
 *   return String(err);
 * }
 * ```
 * @module pg-basebackup/errors
 */
export * from '../errors.js';
