/**
 * Check each manifest WAL range against a {@link WalSource}: the needed segments exist and their pages
 * and records are intact (see {@link WalRangeChecker}); optionally also run `pg_waldump` over the range.
 * @module
 */
import { AbortError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import type { ManifestWalRange } from '../manifest/types.js';
import { DEFAULT_WAL_SEGMENT_SIZE, isValidWalSegmentSize } from '../wal/segments.js';
import type { WalSource } from './sources.js';
import type { VerifyFinding } from './types.js';
import { WalRangeChecker } from './wal-check.js';

/** Options of {@link checkWalRanges}. */
export interface CheckWalOptions {
  /** Expected system identifier in long page headers (from pg_control or the manifest). */
  systemIdentifier?: bigint | undefined;
  signal?: AbortSignal | undefined;
  /** Called with the number of WAL bytes read. */
  onBytes?: ((n: number) => void) | undefined;
  /** Run this pg_waldump over each range too (directory sources only: pass the directory). */
  pgWaldump?: { path: string; walDir: string } | undefined;
}

/** Totals of {@link checkWalRanges}. */
export interface WalCheckTotals {
  ranges: number;
  records: number;
}

/** The segment size the listed files suggest: the most common valid size. */
export function guessSegmentSize(files: ReadonlyMap<string, number>): number {
  const counts = new Map<number, number>();
  for (const size of files.values()) if (isValidWalSegmentSize(size)) counts.set(size, (counts.get(size) ?? 0) + 1);
  let best = DEFAULT_WAL_SEGMENT_SIZE;
  let bestCount = 0;
  for (const [size, n] of counts) {
    if (n > bestCount) {
      best = size;
      bestCount = n;
    }
  }
  return best;
}

/** Yields a finding per problem; returns totals. */
export async function* checkWalRanges(
  ranges: readonly ManifestWalRange[],
  source: WalSource,
  options: CheckWalOptions = {},
): AsyncGenerator<VerifyFinding, WalCheckTotals> {
  const totals: WalCheckTotals = { ranges: 0, records: 0 };
  let files: Map<string, number>;
  try {
    files = await source.list();
  } catch (err) {
    yield { kind: 'unreadable', path: source.description, message: `could not read WAL from ${source.description}`, detail: errText(err) };
    return totals;
  }
  const segmentSize = guessSegmentSize(files);
  for (const range of ranges) {
    totals.ranges++;
    const what = `WAL parsing failed for timeline ${range.timeline}`;
    const checker = new WalRangeChecker({
      timeline: range.timeline,
      startLsn: range.startLsn,
      endLsn: range.endLsn,
      segmentSize,
      systemIdentifier: options.systemIdentifier,
    });
    let problem: VerifyFinding | undefined;
    for (const segno of checker.segments()) {
      if (options.signal?.aborted) throw new AbortError();
      const name = checker.fileName(segno);
      if (!files.has(name)) {
        problem = {
          kind: 'wal-missing',
          path: name,
          message: `${what}: could not find WAL segment "${name}" in ${source.description}`,
          detail: `the range ${formatLsn(range.startLsn)}..${formatLsn(range.endLsn)} needs it`,
        };
        break;
      }
      checker.beginSegment(segno);
      try {
        for await (const chunk of source.read(name)) {
          if (options.signal?.aborted) throw new AbortError();
          checker.push(chunk);
          options.onBytes?.(chunk.length);
          if (checker.finished) break;
        }
      } catch (err) {
        if (err instanceof AbortError) throw err;
        problem = { kind: 'unreadable', path: name, message: `${what}: could not read WAL segment "${name}"`, detail: errText(err) };
        break;
      }
      if (checker.finished) break;
    }
    if (problem) {
      yield problem;
      continue;
    }
    const result = checker.result();
    totals.records += result.records;
    if (!result.ok) {
      const seg = checker.fileName(result.reachedLsn / BigInt(segmentSize));
      yield { kind: 'wal-invalid', path: seg, message: `${what}: ${result.error ?? 'invalid WAL'}` };
      continue;
    }
    if (options.pgWaldump) {
      const r = await runPgWaldump(options.pgWaldump.path, options.pgWaldump.walDir, range, options.signal);
      if (r.code !== 0) {
        yield {
          kind: 'wal-invalid',
          path: options.pgWaldump.walDir,
          message: `${what} (pg_waldump)`,
          detail: r.stderr.trim() || `pg_waldump exited with status ${r.code}`,
        };
      }
    }
  }
  return totals;
}

async function runPgWaldump(
  path: string,
  walDir: string,
  range: ManifestWalRange,
  signal: AbortSignal | undefined,
): Promise<{ code: number; stderr: string }> {
  // Loaded here, not at import: node:child_process costs every pgbb command about a millisecond at
  // start-up, and only --pg-waldump needs it.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    // pg_verifybackup's own invocation.
    const args = [
      '--quiet',
      `--path=${walDir}`,
      `--timeline=${range.timeline}`,
      `--start=${formatLsn(range.startLsn, { padded: false })}`,
      `--end=${formatLsn(range.endLsn, { padded: false })}`,
    ];
    const child = spawn(path, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    child.on('error', (err) => resolve({ code: -1, stderr: err.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
