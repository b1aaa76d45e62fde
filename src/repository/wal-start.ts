/**
 * Which files decide where `receive-wal --repo` resumes: the repository's complete segments, and the
 * spool's `.partial` when it continues them. Pure; `findArchiveStart` then picks the newest.
 * @module
 */
import { parseArchiveFileName } from '../archive/names.js';
import type { ArchiveFile } from '../archive/start.js';

/**
 * The stored files, plus the spooled `.partial`s that may decide the start: one counts when the
 * repository holds no segment yet, or when its segment is at most one past the newest stored segment
 * (the segment in progress, on any timeline). A `.partial` further ahead (a spool that served another
 * repository, or a repository whose newest segments were removed) is ignored: resuming there would
 * leave a silent hole in the repository.
 * @example
 * ```ts
 * const files = walStartFiles([{ name: '000000010000000000000005', bytes: 16 << 20 }], spoolFiles, 16 << 20);
 * const start = await findArchiveStart(files, { segmentSize: 16 << 20, uncompressedBytes });
 * ```
 */
export function walStartFiles(stored: readonly ArchiveFile[], spooled: readonly ArchiveFile[], segmentSize: number): ArchiveFile[] {
  let newest: bigint | undefined;
  for (const file of stored) {
    const parsed = parseArchiveFileName(file.name, segmentSize);
    if (parsed?.kind === 'segment' && !parsed.partial && (newest === undefined || parsed.segno > newest)) newest = parsed.segno;
  }
  const continuing = spooled.filter((file) => {
    const parsed = parseArchiveFileName(file.name, segmentSize);
    return parsed?.kind === 'segment' && parsed.partial && (newest === undefined || parsed.segno <= newest + 1n);
  });
  return [...stored, ...continuing];
}
