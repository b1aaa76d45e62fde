/**
 * Errors of WAL archiving that must stop {@link receiveWal} instead of making it reconnect.
 * @module
 */
import { WalStreamError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';

/**
 * The archive cannot continue without a gap: the server no longer has the WAL that follows the
 * archive's newest segment (it was recycled before it was received). Reconnecting cannot help;
 * streaming from the server's oldest WAL would leave a silent hole. Start a new archive after a
 * new base backup, or restore the missing segments from elsewhere.
 */
export class WalArchiveGapError extends WalStreamError {
  override name = 'WalArchiveGapError';
  /** First missing position (the archive's next segment start). */
  readonly missingFrom: Lsn;
  /** First position the server still holds, when known (a slot's restart position). */
  readonly missingTo: Lsn | undefined;
  constructor(o: { from: Lsn; to?: Lsn | undefined; firstMissing: string; lastMissing?: string | undefined; archive: string;
    cause?: unknown }) {
    const range = o.lastMissing !== undefined && o.lastMissing !== o.firstMissing
      ? `segments ${o.firstMissing} to ${o.lastMissing} (${formatLsn(o.from)} to ${formatLsn(o.to ?? o.from)})`
      : `segment ${o.firstMissing} (from ${formatLsn(o.from)})`;
    super(`the archive in ${o.archive} has a gap: ${range} ${o.lastMissing !== undefined && o.lastMissing !== o.firstMissing ? 'are' : 'is'} ` +
      'missing, and the server has already removed that WAL. Archiving cannot continue without a hole: take a new base ' +
      'backup and archive into a new directory, or copy the missing segments into the archive from another source; ' +
      'stream through a replication slot (--slot) so that the server keeps WAL until it is archived.', { cause: o.cause });
    this.missingFrom = o.from;
    this.missingTo = o.to;
  }
}

/** The server is not the one this archive was streaming from (another system identifier or segment size). */
export class WalArchiveMismatchError extends WalStreamError {
  override name = 'WalArchiveMismatchError';
}
