/**
 * The restore pre-flight, before any file is written: walk the WAL archive from the backup's start
 * along the timeline history to the target, as recovery will, checking every page and record (the
 * {@link WalRangeChecker} that `verify` uses), and resolve the target to an LSN. A target the archive
 * cannot reach, or one before the backup's end, is refused here with the missing segment or the newest
 * reachable commit named, instead of a recovery that ends early and promotes with less data.
 * @module
 */
import { ConfigError, PgBackupError, WalArchiveError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { parseTimelineHistory } from '../replication/commands.js';
import { WalRangeChecker } from '../verify/wal-check.js';
import { segmentFileName, segmentNumber, timelineHistoryFileName } from '../wal/segments.js';
import { decompressorForArchived, walSourceOf } from './restore-wal.js';
import { directoryWalArchive, findInArchive, type WalArchiveSource } from './wal-source.js';
import { RecoveryTargetFinder, targetWantsBody, type RecoveryTarget, type TargetResolution } from './wal-targets.js';

/** `recovery_target_timeline`. */
export type TargetTimeline = 'current' | 'latest' | number;

/** Options of {@link preflightRestore}. */
export interface PreflightOptions {
  /** The WAL archive directory. Give this or {@link source}. */
  archiveDir?: string | undefined;
  /** The WAL archive when it is not a directory (a repository's `wal/`). Give this or {@link archiveDir}. */
  source?: WalArchiveSource | undefined;
  /** The backup's start (its checkpoint's redo LSN) and timeline. */
  startLsn: Lsn;
  timeline: number;
  /** The backup's end LSN: recovery is consistent from there. */
  endLsn: Lsn;
  /** Where to stop; `undefined` replays to the end of the archive. */
  target: RecoveryTarget | undefined;
  /** `recovery_target_inclusive`. @default true */
  inclusive?: boolean;
  /** @default 'latest' (PostgreSQL's default since 12) */
  targetTimeline?: TargetTimeline;
  /** The WAL segment size (from the backup's control file or WAL). */
  segmentSize: number;
  /** The cluster's system identifier: every segment's long header must carry it. */
  systemIdentifier?: bigint | undefined;
  /** The server major (record layouts differ a little). */
  major: number;
  signal?: AbortSignal | undefined;
}

/** The timeline path: each timeline with the LSN where it begins, oldest first. */
export interface TimelineStep {
  timeline: number;
  /** Where this timeline begins (0 for the first in the path). */
  beginLsn: Lsn;
}

/** What {@link preflightRestore} found. */
export interface PreflightResult {
  /** The timeline recovery will end on, and the path to it. */
  targetTimeline: number;
  path: TimelineStep[];
  /** The target resolved against the WAL (undefined target: the end of the archive). */
  resolution: TargetResolution;
  /** Where readable WAL ended, and the first segment the archive lacks (if the walk stopped on one). */
  endOfWal: Lsn;
  missingSegment: string | undefined;
  /** Segments read. */
  segmentsRead: number;
  /** The newest commit seen. */
  lastCommit: { lsn: Lsn; time: Date; xid: number } | undefined;
}

/**
 * Walk the archive and resolve the target.
 * @throws ConfigError when the target cannot be met (with why), WalArchiveError when a segment is damaged.
 */
export async function preflightRestore(o: PreflightOptions): Promise<PreflightResult> {
  const source = walSourceOf(o);
  const { targetTimeline, path } = await timelinePath(source, o.timeline, o.startLsn, o.targetTimeline ?? 'latest');
  const finder = o.target
    ? new RecoveryTargetFinder(o.target, { consistentAt: o.endLsn, inclusive: o.inclusive ?? true, major: o.major })
    : undefined;
  const checker = new WalRangeChecker({
    timeline: targetTimeline,
    startLsn: o.startLsn,
    endLsn: 0xffffffffffffffffn as Lsn,
    segmentSize: o.segmentSize,
    systemIdentifier: o.systemIdentifier,
    ...(finder ? { onRecord: (r) => finder.record(r), wantBody: targetWantsBody } : {}),
  });
  let missing: string | undefined;
  let segmentsRead = 0;
  let lastName = '';
  for (let segno = segmentNumber(o.startLsn, o.segmentSize); ; segno++) {
    o.signal?.throwIfAborted();
    if (finder?.found || checker.finished) break;
    const tli = timelineOfSegment(path, segno, o.segmentSize);
    const name = segmentFileName(tli, segno, o.segmentSize);
    const file = await findInArchive(source, name, { signal: o.signal });
    if (!file) {
      missing = name;
      break;
    }
    checker.beginSegment(segno);
    const raw = await source.open(file.name, { signal: o.signal });
    const input = raw.pipe(decompressorForArchived(file.name));
    raw.once('error', (err) => input.destroy(err));
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        checker.push(chunk);
        if (finder?.found || checker.finished) break;
      }
    } catch (err) {
      if (err instanceof PgBackupError && err.code === 'ERR_PGBB_COMPRESSION') {
        throw new WalArchiveError(`${file.location}: ${err.message}`, { cause: err, path: file.location });
      }
      throw err;
    } finally {
      input.destroy();
      raw.destroy();
    }
    segmentsRead++;
    lastName = name;
    if (file.partial) break; // nothing comes after the segment still being received
  }
  const checked = checker.result();
  const endOfWal = checked.reachedLsn;
  if (!checked.ok && missing === undefined && !finder?.found) {
    // The walk stopped on a problem. At the end of the archive's newest segment that is where WAL ends
    // (recovery sees the same); with a later segment in the archive it is damage recovery would stop at.
    const failedSeg = segmentNumber(endOfWal, o.segmentSize);
    const next = segmentFileName(timelineOfSegment(path, failedSeg + 1n, o.segmentSize), failedSeg + 1n, o.segmentSize);
    if (await findInArchive(source, next)) {
      throw new WalArchiveError(
        `the WAL archive is damaged at ${formatLsn(endOfWal)} (${lastName}), before ${next}: ${checked.error ?? 'unreadable'}`,
      );
    }
  }
  if (endOfWal < o.endLsn && !finder?.found) {
    throw new ConfigError(
      `the WAL archive does not reach the end of the backup (${formatLsn(o.endLsn)}): ` +
        (missing ? `${missing} is missing` : `the WAL ends at ${formatLsn(endOfWal)}`) +
        '. Restore with the WAL included in the backup (-X stream or fetch), or point --wal-archive at the archive that holds it.',
    );
  }
  const resolution: TargetResolution = finder
    ? finder.resolve({ lsn: endOfWal, missing })
    : { reached: true, lsn: endOfWal, detail: `the end of the archive${missing ? ` (${missing} is the first segment it lacks)` : ''}` };
  if (!resolution.reached) throw new ConfigError(`the recovery target cannot be reached: ${resolution.why}`);
  return {
    targetTimeline,
    path,
    resolution,
    endOfWal,
    missingSegment: missing,
    segmentsRead,
    lastCommit: finder?.lastCommit,
  };
}

/** The timeline of segment `segno` on the path: the newest timeline that begins at or before its end. */
export function timelineOfSegment(path: readonly TimelineStep[], segno: bigint, segmentSize: number): number {
  let tli = path[0]!.timeline;
  for (const step of path) if (segmentNumber(step.beginLsn, segmentSize) <= segno) tli = step.timeline;
  return tli;
}

/**
 * The timeline to recover to and the path to it from `fromTimeline`, from the archive's `.history` files
 * (recovery reads the same files through restore_command).
 */
export async function timelinePath(
  archive: string | WalArchiveSource,
  fromTimeline: number,
  startLsn: Lsn,
  wanted: TargetTimeline,
): Promise<{ targetTimeline: number; path: TimelineStep[] }> {
  const source = typeof archive === 'string' ? directoryWalArchive(archive) : archive;
  const histories = new Map<number, TimelineStep[]>();
  const load = async (tli: number): Promise<TimelineStep[] | undefined> => {
    if (tli === 1) return [{ timeline: 1, beginLsn: 0n as Lsn }];
    const cached = histories.get(tli);
    if (cached) return cached;
    const found = await findInArchive(source, timelineHistoryFileName(tli));
    if (!found) return undefined;
    let text: string;
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await source.open(found.name)) chunks.push(chunk as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      throw new WalArchiveError(`cannot read ${found.location}: ${(err as Error).message}`, { cause: err, path: found.location });
    }
    let entries;
    try {
      entries = parseTimelineHistory(text);
    } catch (err) {
      throw new WalArchiveError(`${found.location} is not a timeline history file: ${(err as Error).message}`, {
        cause: err,
        path: found.location,
      });
    }
    const steps: TimelineStep[] = [];
    let begin = 0n as Lsn;
    for (const e of entries) {
      steps.push({ timeline: e.parentTli, beginLsn: begin });
      begin = e.switchLsn;
    }
    steps.push({ timeline: tli, beginLsn: begin });
    histories.set(tli, steps);
    return steps;
  };
  const descends = (steps: TimelineStep[]): boolean => {
    const i = steps.findIndex((s) => s.timeline === fromTimeline);
    if (i < 0) return false;
    // The backup's timeline must still be current at its start LSN on this path.
    const next = steps[i + 1];
    return next === undefined || next.beginLsn > startLsn;
  };
  let target: number;
  if (wanted === 'current') target = fromTimeline;
  else if (typeof wanted === 'number') target = wanted;
  else {
    target = fromTimeline;
    const names = await source.names('');
    const tlis = names
      .map((n) => /^([0-9A-F]{8})\.history/.exec(n)?.[1])
      .filter((x): x is string => x !== undefined)
      .map((h) => Number.parseInt(h, 16))
      .sort((a, b) => a - b);
    for (const t of tlis) {
      if (t <= target) continue;
      const steps = await load(t);
      if (steps && descends(steps)) target = t;
    }
  }
  const steps = await load(target);
  if (!steps) throw new ConfigError(`timeline ${target} has no history file (${timelineHistoryFileName(target)}) in the WAL archive`);
  if (!descends(steps)) {
    throw new ConfigError(
      `timeline ${target} did not branch from the backup's timeline ${fromTimeline} after the backup's start (${formatLsn(startLsn)})`,
    );
  }
  const from = steps.findIndex((s) => s.timeline === fromTimeline);
  const path = steps.slice(from).map((s, i) => (i === 0 ? { timeline: s.timeline, beginLsn: 0n as Lsn } : s));
  return { targetTimeline: target, path };
}

/** The archive's newest segment name on any timeline (for messages). */
export async function newestArchivedSegment(archive: string | WalArchiveSource): Promise<string | undefined> {
  const source = typeof archive === 'string' ? directoryWalArchive(archive) : archive;
  const names = await source.names('').catch(() => [] as string[]);
  return names
    .map((n) => n.slice(0, 24))
    .filter((n) => /^[0-9A-F]{24}$/.test(n))
    .sort()
    .at(-1);
}
