/**
 * The file checks of a plain-format backup: what the walk over the directory finds, judged against
 * the manifest (extra, special and unreadable files, sizes, pg_control). The checksums follow in
 * checksum-io.ts.
 * @module
 */
import { CONTROL_FILE, checkControlBytes, checkPlainFile, errText, type RunState } from './checks.js';
import { PG_CONTROL_FILE_SIZE } from './control-file.js';
import { readHead, walkDirectory } from './io.js';
import type { VerifyFinding } from './types.js';

/** Directory entries walked between turns of the event loop (the walk itself is synchronous). */
const WALK_SLICE = 2000;

/** Walks the backup directory, yielding what does not match the manifest and marking what does. */
export async function* walkPlain(s: RunState): AsyncGenerator<VerifyFinding, void> {
  let slice = 0;
  for (const item of walkDirectory(s.o.backupDir, undefined, s.ignore, s.o.signal)) {
    if (++slice >= WALK_SLICE) {
      slice = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    switch (item.kind) {
      case 'unlistable':
        yield {
          kind: 'unreadable',
          path: item.rel ?? '.',
          message: `could not open directory "${item.full}"`,
          detail: errText(item.error),
        };
        if (item.rel !== undefined) s.ignore.push(item.rel);
        break;
      case 'unstatable':
        yield {
          kind: 'unreadable',
          path: item.rel,
          message: `could not stat file or directory "${item.rel}"`,
          detail: errText(item.error),
        };
        s.ignore.push(item.rel);
        break;
      case 'special':
        yield { kind: 'extra-file', path: item.rel, message: `"${item.rel}" is not a regular file or directory` };
        break;
      case 'file': {
        const { finding, entry } = checkPlainFile(s, item.rel, item.size);
        if (finding) yield finding;
        if (entry && item.rel === CONTROL_FILE) {
          let head: Buffer | undefined;
          try {
            head = await readHead(item.full, PG_CONTROL_FILE_SIZE);
          } catch (err) {
            yield { kind: 'unreadable', path: item.rel, message: `could not read file "${item.rel}"`, detail: errText(err) };
          }
          if (head) yield* checkControlBytes(s, head, CONTROL_FILE, item.size);
        }
        break;
      }
    }
  }
}
