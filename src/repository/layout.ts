/**
 * Where everything lives in a repository: the one place that names its keys (docs/repository.md
 * describes the same layout for operators). Pure.
 *
 * ```
 * repository.json                  format version and the cluster it serves (written on first use)
 * backups/<id>/base.tar[.gz|...]   the archives of one backup, as the tar format names them
 * backups/<id>/backup_manifest
 * catalog/<id>.json                the backup's record: written last, it makes the backup exist
 * failures/<id>.json               the record of a backup run that failed (history for status)
 * rehearsals/<id>.json             the record of a restore rehearsal
 * locks/<name>/<holder>.json       lock leases and tickets
 * ```
 * @module
 */

/** The repository format this version writes and reads. A repository with a higher one is refused. */
export const REPOSITORY_FORMAT_VERSION = 1;

/** The object that holds the format version and the cluster identity. */
export const REPOSITORY_INFO_KEY = 'repository.json';

/** Prefix of every backup's data objects. */
export const BACKUPS_PREFIX = 'backups/';

/** Prefix of the catalog records. */
export const CATALOG_PREFIX = 'catalog/';

/** Prefix of the lock objects. */
export const LOCKS_PREFIX = 'locks/';

/** Prefix of the records of failed backup runs. */
export const FAILURES_PREFIX = 'failures/';

/** Prefix of the rehearsal records. */
export const REHEARSALS_PREFIX = 'rehearsals/';

/** Suffix of a catalog record's key. */
const RECORD_SUFFIX = '.json';

/** Prefix of one backup's data objects (`backups/<id>/`). */
export function backupDataPrefix(id: string): string {
  return `${BACKUPS_PREFIX}${id}/`;
}

/** Key of one object of a backup (`backups/<id>/base.tar`). */
export function backupObjectKey(id: string, name: string): string {
  return `${backupDataPrefix(id)}${name}`;
}

/** Key of a backup's catalog record (`catalog/<id>.json`). */
export function catalogKey(id: string): string {
  return `${CATALOG_PREFIX}${id}${RECORD_SUFFIX}`;
}

/** The backup id of a catalog key, or `undefined` for a key that is not a record. */
export function idOfCatalogKey(key: string): string | undefined {
  return idOfRecordKey(CATALOG_PREFIX, key);
}

/** Key of the record of a failed backup run (`failures/<id>.json`, the id the backup would have had). */
export function failureKey(id: string): string {
  return `${FAILURES_PREFIX}${id}${RECORD_SUFFIX}`;
}

/** Key of a rehearsal record (`rehearsals/<id>.json`). */
export function rehearsalKey(id: string): string {
  return `${REHEARSALS_PREFIX}${id}${RECORD_SUFFIX}`;
}

/** The id of a record key under `prefix` (`catalog/`, `failures/`, `rehearsals/`), or `undefined`. */
export function idOfRecordKey(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix) || !key.endsWith(RECORD_SUFFIX)) return undefined;
  const id = key.slice(prefix.length, -RECORD_SUFFIX.length);
  return id === '' || id.includes('/') ? undefined : id;
}

/** The backup id of a data object key (`backups/<id>/...`), or `undefined`. */
export function idOfBackupObjectKey(key: string): string | undefined {
  if (!key.startsWith(BACKUPS_PREFIX)) return undefined;
  const slash = key.indexOf('/', BACKUPS_PREFIX.length);
  return slash <= BACKUPS_PREFIX.length ? undefined : key.slice(BACKUPS_PREFIX.length, slash);
}

/** Prefix of one lock's objects (`locks/<name>/`). */
export function lockPrefix(name: string): string {
  return `${LOCKS_PREFIX}${name}/`;
}
