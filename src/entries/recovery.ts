/**
 * Making a backup start as a standby: the `primary_conninfo` line and the recovery settings
 * pg_basebackup `-R` writes, and the name of the `standby.signal` file.
 *
 * @example
 * ```ts
 * import { writeFile } from 'node:fs/promises';
 * import { join } from 'node:path';
 * import { recoveryConfigContents, STANDBY_SIGNAL_FILE } from 'pg-basebackup/recovery';
 *
 * const dir = '/var/lib/postgresql/standby';
 * await writeFile(join(dir, STANDBY_SIGNAL_FILE), '', { mode: 0o600 });
 * const settings = recoveryConfigContents({ primaryConninfo: 'host=db user=replicator', slotName: 'standby1' });
 * await writeFile(join(dir, 'postgresql.auto.conf'), settings, { flag: 'a', mode: 0o600 });
 * ```
 * @module pg-basebackup/recovery
 */
export {
  buildPrimaryConninfo, recoveryConfigContents, STANDBY_SIGNAL_FILE, type PrimaryConninfoOptions,
} from '../recovery/standby.js';
