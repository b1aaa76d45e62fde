/**
 * A repository's archived WAL (`wal/<segment>[.gz|.lz4|.zst]`, `wal/<tli>.history`, see wal-keys.ts) as
 * the WAL archive a restore reads from: `restore-wal --repo`, the restore pre-flight and the archive
 * probe then apply the same rules as to a WAL archive directory.
 * @module
 */
import type { Readable } from 'node:stream';
import type { WalArchiveOpenOptions, WalArchiveSource } from '../recovery/wal-source.js';
import type { Repository } from './repository.js';
import { WAL_PREFIX } from './wal-keys.js';

/**
 * The repository's `wal/` as a WAL archive. Each lookup lists the keys that start with the name asked
 * for (one request, whatever the compression), so a restore sees segments stored while it runs.
 * @example
 * ```ts
 * import { openRepository, repositoryWalArchive } from 'pg-basebackup/repository';
 * import { restoreWalFile } from 'pg-basebackup/recovery';
 *
 * await using repo = await openRepository('/backups/db1');
 * const r = await restoreWalFile({ fileName: '000000010000000000000003', destination: 'pg_wal/RECOVERYXLOG', source: repositoryWalArchive(repo) });
 * ```
 */
export function repositoryWalArchive(repository: Repository): WalArchiveSource {
  const storage = repository.storage;
  return {
    location: `${repository.location}/${WAL_PREFIX.slice(0, -1)}`,
    async names(fileName: string, options: WalArchiveOpenOptions = {}): Promise<readonly string[]> {
      const names: string[] = [];
      for await (const object of storage.list({ prefix: WAL_PREFIX + fileName, ...(options.signal ? { signal: options.signal } : {}) })) {
        const name = object.key.slice(WAL_PREFIX.length);
        if (!name.includes('/')) names.push(name);
      }
      return names;
    },
    async open(name: string, options: WalArchiveOpenOptions = {}): Promise<Readable> {
      return storage.get(WAL_PREFIX + name, options.signal ? { signal: options.signal } : {});
    },
    locate(name: string): string {
      return `${repository.location}/${WAL_PREFIX}${name}`;
    },
  };
}
