/**
 * Checking a backup against its manifest while it is restored, for backups that are not local files (a
 * repository's): each archive is read once, and every member's size and checksum are judged as it
 * streams into the data directory, with pg_verifybackup's judgements (verify/checks.ts). The restore
 * asks for the findings at the end and takes everything back when there are any. WAL is not checked
 * here: the restore pre-flight walks the WAL archive, or recovery checks the backup's own WAL.
 * @module
 */
import { createChecksum } from '../manifest/checksum.js';
import type { BackupManifest } from '../manifest/types.js';
import {
  CONTROL_FILE,
  checkControlBytes,
  compareChecksum,
  newRunState,
  reportMissing,
  setManifest,
  type RunState,
} from '../verify/checks.js';
import { PG_CONTROL_FILE_SIZE } from '../verify/control-file.js';
import { canonicalRelPath, isIgnored } from '../verify/sources.js';
import type { VerifyFinding } from '../verify/types.js';
import type { MemberObserver, MemberTap } from './layout.js';

/** The manifest check of one restore: an observer per archive, then {@link StreamingManifestCheck.finish}. */
export class StreamingManifestCheck {
  readonly #s: RunState;
  readonly #findings: VerifyFinding[] = [];

  constructor(manifest: BackupManifest) {
    this.#s = newRunState({ backupDir: '', format: 'tar', noWal: true });
    setManifest(this.#s, manifest);
  }

  /** Files whose checksum was compared so far. */
  get filesChecksummed(): number {
    return this.#s.filesChecksummed;
  }

  /** Bytes checksummed so far. */
  get bytesRead(): number {
    return this.#s.bytesRead;
  }

  /** Files the manifest lists. */
  get manifestFiles(): number {
    return this.#s.entries.size;
  }

  /** The observer for archive `archiveName`, holding tablespace `oid` (0: the data directory). */
  observer(archiveName: string, oid: number): MemberObserver {
    return (member, size) => this.#member(archiveName, oid, member, size);
  }

  #member(archive: string, oid: number, member: string, size: number): MemberTap | undefined {
    const s = this.#s;
    const path = oid !== 0 ? canonicalRelPath(`pg_tblspc/${oid}/${member}`) : canonicalRelPath(member);
    if (isIgnored(path, s.ignore)) return undefined;
    const e = s.entries.get(path);
    if (!e) {
      this.#findings.push({
        kind: 'extra-file',
        path,
        archive,
        message: `file "${member}" is present in archive "${archive}" but not in the manifest`,
      });
      return undefined;
    }
    e.matched = true;
    if (e.file.size !== size) {
      e.bad = true;
      this.#findings.push({
        kind: 'size-mismatch',
        path,
        archive,
        message: `file "${member}" has size ${size} in archive "${archive}" but size ${e.file.size} in the manifest`,
      });
      return undefined;
    }
    const isControl = path === CONTROL_FILE;
    const sum = createChecksum(e.file.checksumAlgorithm);
    const control: Buffer[] = [];
    let controlBytes = 0;
    let read = 0;
    return {
      update: (chunk) => {
        sum.update(chunk);
        read += chunk.length;
        s.bytesRead += chunk.length;
        if (isControl && controlBytes < PG_CONTROL_FILE_SIZE) {
          const part = Buffer.from(chunk.subarray(0, PG_CONTROL_FILE_SIZE - controlBytes));
          control.push(part);
          controlBytes += part.length;
        }
      },
      end: () => {
        if (isControl) this.#findings.push(...checkControlBytes(s, Buffer.concat(control), `${archive}: ${CONTROL_FILE}`, read));
        if (e.file.checksumAlgorithm === 'NONE') return;
        s.filesChecksummed++;
        const f = compareChecksum(e, sum.digest(), ` in archive "${archive}"`, archive);
        if (f) this.#findings.push(f);
      },
    };
  }

  /** Every problem found, with the listed files no archive held; call it once every archive was read. */
  finish(): VerifyFinding[] {
    return [...this.#findings, ...reportMissing(this.#s)];
  }
}
