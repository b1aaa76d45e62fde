/**
 * The CLI's view of the library: the few calls the commands make, behind one
 * interface so commands are tested with fakes and wired to the real library in
 * exactly one place ({@link defaultLibrary}).
 * @module
 */
import { formatLsn, runBackup, type BaseBackupOptions, type ConnectionOptions, type RunBackupOptions } from '../index.js';
import { ReplicationConnection } from '../entries/connection.js';
import { identifySystem } from '../entries/replication.js';
import type { BackupOutputPlan } from './backup.js';
import type { ProgressSnapshot } from './output.js';
import { collectYoungGarbage } from './young-gc.js';

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

/** Callbacks a backup run reports through. */
export interface BackupHooks {
  progress(p: ProgressSnapshot, force?: boolean): void;
  /** A verbose message (shown with `-v`). */
  info(message: string): void;
  /** A warning that does not fail the backup (server WARNING notices, cleanup problems). */
  warning(message: string): void;
}

/** What a finished backup reports (printed with `-v`, and as the JSON `done` event). */
export interface BackupOutcome {
  startLsn?: string;
  endLsn?: string;
  timeline?: number;
  /** Archive bytes received. */
  bytes?: number;
  /** Files written (tar format), or directories (plain). */
  outputs?: string[];
}

/** A backup to take: the library's options plus where the output goes. */
export interface BackupRequest {
  backup: BaseBackupOptions;
  output: BackupOutputPlan;
}

/** The library calls the commands use. */
export interface CliLibrary {
  identify(options: ConnectionOptions): Promise<IdentifyInfo>;
  backup(request: BackupRequest, hooks: BackupHooks): Promise<BackupOutcome>;
}

/**
 * The real library: `runBackup` fed `request.backup` and the output chosen from `request.output`, its
 * progress mapped with {@link progressFromLibrary} into `hooks.progress`.
 */
export const defaultLibrary: CliLibrary = {
  async identify(options) {
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
  async backup(request, hooks) {
    const { backup, output } = request;
    const mapping = new Map(output.tablespaceMappings.map((m) => [m.oldDir, m.newDir] as const));
    let target: RunBackupOptions['output'];
    if (output.kind === 'plain') {
      target = {
        format: 'plain', directory: output.directory!,
        ...(mapping.size ? { tablespaceMapping: mapping } : {}),
        ...(output.walDir !== undefined ? { waldir: output.walDir } : {}),
      };
    } else if (output.kind === 'tar') {
      target = { format: 'tar', directory: output.directory! };
    } else {
      target = { format: 'tar-stream', stream: process.stdout };
    }
    // Tar output only: see collectYoungGarbage for why not plain.
    const stopGc = output.kind === 'plain' ? undefined : collectYoungGarbage();
    let result;
    try {
      result = await runBackup({
        ...backup,
        // -i: UPLOAD_MANIFEST + BASE_BACKUP (INCREMENTAL); the session reads the file.
        ...(output.incrementalManifest !== undefined ? { incrementalManifest: output.incrementalManifest } : {}),
        output: target,
        // -Z: client-side compression is applied by the tar outputs, server-side asked of the server.
        ...(output.compression.algorithm !== 'none' ? { compression: output.compression } : {}),
        writeRecoveryConf: output.writeRecoveryConf,
        noClean: output.noClean,
        noSync: !output.sync,
        onStart: (s) => {
          hooks.info(`initiating base backup, waiting for checkpoint to complete`);
          hooks.info(`write-ahead log start point: ${formatLsn(s.startLsn)} on timeline ${s.startTimeline}`);
        },
        onProgress: (p) => hooks.progress(progressFromLibrary(p), p.finished),
        onNotice: (n) => hooks.warning(`${n.severity}: ${n.message}`),
        onChecksumFailure: (f) => hooks.warning(f.block !== undefined
          ? `checksum failure in file "${f.file}", block ${f.block}`
          : `file "${f.file}" has ${f.count ?? 'several'} checksum failures`),
        onWarning: (w) => hooks.warning(w.message),
      });
    } finally {
      stopGc?.();
    }
    return {
      startLsn: formatLsn(result.startLsn),
      endLsn: formatLsn(result.endLsn),
      timeline: result.endTimeline,
      bytes: result.stats.totalBytes,
      outputs: result.outputs,
    };
  },
};

/**
 * Map the library's `progress` event (BackupProgress in src/backup/events.ts) to the
 * reporter's snapshot: pg_basebackup counts finished tablespaces.
 */
export function progressFromLibrary(p: {
  bytesDone: number;
  totalBytes: number | undefined;
  archivesDone: number;
  archivesTotal: number;
  archive?: { name: string } | undefined;
}): ProgressSnapshot {
  return {
    doneBytes: p.bytesDone, totalBytes: p.totalBytes, tablespace: p.archivesDone, tablespaces: p.archivesTotal,
    filename: p.archive?.name,
  };
}
