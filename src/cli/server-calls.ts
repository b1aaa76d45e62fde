/**
 * The calls of library.ts's `CliLibrary` made with the real library: loaded by library.ts when a command
 * first reaches a server.
 * @module
 */
import { runBackup, type RunBackupOptions, type RunBackupResult } from '../entries/backup.js';
import { ReplicationConnection, type ConnectionOptions } from '../entries/connection.js';
import { identifySystem } from '../entries/replication.js';
import { formatLsn } from '../entries/lsn.js';
import { compressionSupport, resolveCompression } from '../entries/compress.js';
import { startGarbageCollection } from './gc.js';

/** IDENTIFY_SYSTEM's answer plus the server version, as `pgbb identify` prints it. */
export interface IdentifyInfo {
  /** Database system identifier, a 64-bit number in decimal. */
  systemId: string;
  timeline: number;
  /** Current WAL flush position, `X/X`. */
  xlogPos: string;
  /** The database of the connection; `null` for physical replication. */
  dbName: string | null;
  /** `server_version`, e.g. `17.2`. */
  serverVersion: string;
  /** `server_version_num`, e.g. 170002. */
  serverVersionNum: number;
}

/** The library calls behind library.ts's `defaultLibrary` (its `CliLibrary`). */
export const serverCalls = {
  async identify(options: ConnectionOptions): Promise<IdentifyInfo> {
    const conn = await ReplicationConnection.connect(options);
    try {
      const id = await identifySystem(conn, options.signal ? { signal: options.signal } : {});
      return {
        systemId: id.systemId,
        timeline: id.timeline,
        // As the server prints it (%X/%X on 13–18).
        xlogPos: formatLsn(id.xlogPos),
        dbName: id.dbName,
        serverVersion: conn.parameters.get('server_version') ?? String(conn.serverVersionNum),
        serverVersionNum: conn.serverVersionNum,
      };
    } finally {
      await conn.close();
    }
  },
  async backup(options: RunBackupOptions): Promise<RunBackupResult> {
    const stopGc = leavesNativeGarbage(options) ? startGarbageCollection() : undefined;
    try {
      return await runBackup(options);
    } finally {
      stopGc?.();
    }
  },
};

/**
 * Whether a backup leaves its memory to the garbage collector: client zstd through the `@mongodb-js/zstd`
 * package (Node before 22.15), whose every result is a native buffer that only a collection frees (peak
 * RSS 95 MB with the collections of startGarbageCollection, 130 MB without, at 300 MB). Every other path
 * hands its receive buffers back and compresses into kept buffers: forced collections there only
 * promoted short-lived objects, for more CPU and a larger heap (docs/performance.md, "Stop 20").
 */
export function leavesNativeGarbage(options: RunBackupOptions): boolean {
  if (options.compression === undefined || options.output.format === 'plain') return false;
  try {
    const spec = resolveCompression(options.compression);
    return spec.location === 'client' && spec.algorithm === 'zstd' && compressionSupport().zstd.compress === '@mongodb-js/zstd';
  } catch {
    // An invalid spec: runBackup reports it.
    return false;
  }
}
