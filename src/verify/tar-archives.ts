/**
 * The checks of a tar-format backup: which files of the backup directory are archives (base, WAL,
 * tablespaces), and every member of each archive against the manifest (presence, size, checksum,
 * pg_control), read in one pass through the {@link ArchiveOpener}. No file is opened here: the
 * directory is listed by io.ts, archives are opened by the opener.
 * @module
 */
import { AbortError } from '../errors.js';
import { createChecksum } from '../manifest/checksum.js';
import { extractTar } from '../tar/extract.js';
import { CONTROL_FILE, checkAbort, checkControlBytes, compareChecksum, errText, type RunState } from './checks.js';
import { PG_CONTROL_FILE_SIZE } from './control-file.js';
import type { ListedFile } from './io.js';
import { canonicalRelPath, classifyArchive, isIgnored } from './sources.js';
import { defaultArchiveOpener } from './sources-io.js';
import type { ArchiveRef, VerifyFinding } from './types.js';

/** An archive to check, with the tablespace it holds (0: the data directory). */
export interface ArchiveToCheck {
  ref: ArchiveRef;
  oid: number;
}

/** The archives of a tar-format backup directory, and where its WAL is. */
export interface TarLayout {
  archives: ArchiveToCheck[];
  base?: ArchiveRef;
  wal?: ArchiveRef;
}

/** Sorts a tar-format backup directory's files into archives, yielding the files that do not belong. */
export function* classifyBackupFiles(listing: readonly ListedFile[]): Generator<VerifyFinding, TarLayout> {
  const layout: TarLayout = { archives: [] };
  for (const f of listing) {
    const name = f.name;
    if ('error' in f) {
      yield { kind: 'unreadable', path: name, message: `could not stat file or directory "${name}"`, detail: errText(f.error) };
      continue;
    }
    if (!f.isFile) {
      yield { kind: 'extra-file', path: name, message: `file "${name}" is not a regular file` };
      continue;
    }
    const kind = classifyArchive(name);
    if (kind.kind === 'unexpected') {
      yield { kind: 'extra-file', path: name, message: `file "${name}" is not expected in a tar format backup` };
      continue;
    }
    const ref: ArchiveRef = { name, path: f.path, compression: kind.compression };
    if (kind.kind === 'wal') {
      layout.wal = ref;
      continue;
    }
    if (kind.kind === 'base') layout.base = ref;
    layout.archives.push({ ref, oid: kind.kind === 'tablespace' ? kind.oid : 0 });
  }
  return layout;
}

/** Reads every archive through, checking each member against the manifest. */
export async function* checkArchives(s: RunState, archives: readonly ArchiveToCheck[]): AsyncGenerator<VerifyFinding, void> {
  const o = s.o;
  const open = o.openArchive ?? defaultArchiveOpener;
  for (const e of s.entries.values()) {
    if (!o.skipChecksums && e.file.checksumAlgorithm !== 'NONE' && !isIgnored(e.file.path, s.ignore)) s.totalBytes += e.file.size;
  }
  let done = 0;
  for (const { ref, oid } of archives) {
    checkAbort(o.signal);
    let src: AsyncIterable<Uint8Array> | undefined;
    try {
      src = open(ref);
    } catch (err) {
      yield {
        kind: 'unreadable',
        path: ref.name,
        archive: ref.name,
        message: `could not read archive "${ref.name}"`,
        detail: errText(err),
      };
      continue;
    }
    if (!src) {
      yield {
        kind: 'unreadable',
        path: ref.name,
        archive: ref.name,
        message: `could not read archive "${ref.name}": no decompressor for ${ref.compression} is available`,
      };
      continue;
    }
    try {
      for await (const entry of extractTar(src as AsyncIterable<Buffer>)) {
        checkAbort(o.signal);
        const h = entry.header;
        if (h.type === 'directory' || h.type === 'symlink' || h.type === 'hardlink') continue;
        const member = h.name;
        const path = oid !== 0 ? canonicalRelPath(`pg_tblspc/${oid}/${member}`) : canonicalRelPath(member);
        if (isIgnored(path, s.ignore)) continue;
        const e = s.entries.get(path);
        if (!e) {
          yield {
            kind: 'extra-file',
            path,
            archive: ref.name,
            message: `file "${member}" is present in archive "${ref.name}" but not in the manifest`,
          };
          continue;
        }
        e.matched = true;
        if (e.file.size !== h.size) {
          yield {
            kind: 'size-mismatch',
            path,
            archive: ref.name,
            message: `file "${member}" has size ${h.size} in archive "${ref.name}" but size ${e.file.size} in the manifest`,
          };
          e.bad = true;
          continue;
        }
        const verifySum = !o.skipChecksums && e.file.checksumAlgorithm !== 'NONE';
        const isControl = path === CONTROL_FILE;
        if (!verifySum && !isControl) continue;
        const ctx = createChecksum(verifySum ? e.file.checksumAlgorithm : 'NONE');
        const control: Buffer[] = [];
        let controlBytes = 0;
        let read = 0;
        for await (const chunk of entry.body) {
          if (verifySum) ctx.update(chunk);
          if (isControl && controlBytes < PG_CONTROL_FILE_SIZE) {
            control.push(Buffer.from(chunk.subarray(0, PG_CONTROL_FILE_SIZE - controlBytes)));
            controlBytes += Math.min(chunk.length, PG_CONTROL_FILE_SIZE - controlBytes);
          }
          read += chunk.length;
          if (verifySum) {
            done += chunk.length;
            s.bytesRead += chunk.length;
            o.onProgress?.({ phase: 'archives', doneBytes: done, totalBytes: s.totalBytes });
          }
        }
        if (isControl) yield* checkControlBytes(s, Buffer.concat(control), `${ref.name}: ${CONTROL_FILE}`, read);
        if (!verifySum) continue;
        if (read !== e.file.size) {
          yield {
            kind: 'size-mismatch',
            path,
            archive: ref.name,
            message: `file "${path}" in archive "${ref.name}" should contain ${e.file.size} bytes, but ${read} bytes were read`,
          };
          continue;
        }
        s.filesChecksummed++;
        const f = compareChecksum(e, ctx.digest(), ` in archive "${ref.name}"`, ref.name);
        if (f) yield f;
      }
    } catch (err) {
      if (err instanceof AbortError) throw err;
      yield {
        kind: 'unreadable',
        path: ref.name,
        archive: ref.name,
        message: `could not read archive "${ref.name}"`,
        detail: errText(err),
      };
    }
  }
}
