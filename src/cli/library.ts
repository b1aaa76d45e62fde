/**
 * The CLI's view of the library: the calls that reach a server, behind one interface so commands
 * are tested with fakes and wired to the real library in exactly one place ({@link defaultLibrary}).
 * The commands hand the library its own options (`RunBackupOptions`), mapped straight from the flags.
 * @module
 */
import type { RunBackupOptions, RunBackupResult } from '../entries/backup.js';
import type { ConnectionOptions } from '../entries/connection.js';
import type { IdentifyInfo } from './server-calls.js';

export type { IdentifyInfo } from './server-calls.js';

/** The library calls the commands use. */
export interface CliLibrary {
  identify(options: ConnectionOptions): Promise<IdentifyInfo>;
  /** `runBackup`. */
  backup(options: RunBackupOptions): Promise<RunBackupResult>;
}

/**
 * The real library, imported when a command first calls it: `pgbb verify` and the rest start without
 * the connection and backup code (server-calls.ts).
 */
export const defaultLibrary: CliLibrary = {
  identify: async (options) => (await import('./server-calls.js')).serverCalls.identify(options),
  backup: async (options) => (await import('./server-calls.js')).serverCalls.backup(options),
};
