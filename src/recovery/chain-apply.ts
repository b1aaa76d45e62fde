/**
 * Restoring an incremental chain (PostgreSQL 17+) of tar backups in place: the full backup is streamed
 * into the data directory and tablespaces, then each incremental backup, oldest first, is streamed over
 * it: a file sent whole replaces the file, an `INCREMENTAL.<name>` is applied block by block to `<name>`,
 * and what a backup no longer has is removed after it. The result is what `combineBackups` makes of the
 * chain (combine/in-place.ts says why), without a copy of any backup on local disk. Each backup is
 * checked against its own manifest while it streams, and the chain as combine checks it: labels in
 * order, one system identifier in every pg_control and manifest.
 * @module
 */
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { combinedBackupLabel } from '../combine/backup-label.js';
import { checkChain, checkControlFile } from '../combine/chain.js';
import { IncrementalApplier, InPlaceChain } from '../combine/in-place.js';
import { incrementalTarget } from '../combine/incremental-file.js';
import { CombineError, ConfigError, VerifyError } from '../errors.js';
import type { BackupSource } from './backup-source.js';
import type { MemberRoute, RestoreLayout } from './layout.js';
import { StreamingManifestCheck } from './stream-verify.js';

const LITTLE_ENDIAN = endianness() === 'LE';
/** pg_combinebackup's bounds for the small files it reads whole. */
const LABEL_MAX = 10000 + 1024;
const CONTROL_MAX = 1 << 20;

/** Where the chain goes: the restore's routes, as {@link restoreSource} resolved them. */
export interface ChainTargets {
  dataDir: string;
  /** The base archive's members (dataRoute: what the restore writes itself is left out). */
  route: MemberRoute;
  /** The newest backup's tablespaces and where they go; an older backup's other tablespaces are not written. */
  tablespaces: readonly { oid: number; newLocation: string }[];
  /** `pg_wal` elsewhere (--waldir). */
  walDir: string | undefined;
  /** Check each backup against its manifest while it streams. */
  verify: boolean;
}

/**
 * Before anything is written: the backups form one chain, as combine checks it (the first full, each
 * later one incremental to the one before it; manifests of one cluster).
 * @throws CombineError otherwise.
 */
export function checkChainSources(members: readonly BackupSource[]): void {
  const plain = members.find((m) => m.format !== 'tar');
  if (plain) throw new ConfigError(`${plain.dir} is a plain backup: an incremental chain is combined in place from tar backups only`);
  checkChain(
    members.map((m) => m.dir),
    members.map((m) => m.label),
  );
  const ids = members.map((m) => m.manifest?.systemIdentifier).filter((x) => x !== undefined);
  const other = ids.find((x) => x !== ids[0]);
  if (other !== undefined) {
    throw new CombineError(
      `the backups of the chain belong to different database systems (${ids[0]} and ${other}): combine only backups of one server`,
    );
  }
}

/**
 * Apply `members` (the full backup first, the newest last) in place into the claimed directories.
 * @returns the files the data directory and tablespaces hold afterwards (to be synced).
 * @throws CombineError where combine would refuse the chain; VerifyError when a backup does not match
 *   its manifest; IoError, AbortError. The caller undoes what was written.
 */
export async function applyChain(layout: RestoreLayout, members: readonly BackupSource[], t: ChainTargets): Promise<string[]> {
  const chain = new InPlaceChain(members.length);
  const where = new Map(t.tablespaces.map((ts) => [ts.oid, ts.newLocation]));
  const roots = new Set([t.dataDir, ...where.values(), ...(t.walDir ? [t.walDir] : [])]);
  /** Files written, by their path relative to the data directory. */
  const files = new Map<string, string>();
  let sysid = members.find((m) => m.manifest?.systemIdentifier !== undefined)?.manifest?.systemIdentifier;

  const physical = (rel: string): string | undefined => {
    const m = /^pg_tblspc\/(\d+)(?:\/(.+))?$/.exec(rel);
    if (!m) return t.route(rel, 'directory');
    const loc = where.get(Number(m[1]));
    return loc === undefined || m[2] === undefined ? loc : join(loc, m[2]);
  };

  for (const [step, source] of members.entries()) {
    chain.begin(step);
    const newest = chain.newest;
    const check = t.verify && source.manifest ? new StreamingManifestCheck(source.manifest) : undefined;

    /** A route that notes directories, under `prefix` (`pg_tblspc/<oid>/` for a tablespace). */
    const noting =
      (prefix: string, inner: MemberRoute): MemberRoute =>
      (name, type) => {
        const dest = inner(name, type);
        if (dest !== undefined && type === 'directory') chain.directory(prefix + name);
        return dest;
      };
    const writer =
      (prefix: string) =>
      async (dest: string, body: AsyncIterable<Buffer>, member: string): Promise<void> => {
        const rel = prefix + member;
        const target = incrementalTarget(rel);
        if (target === undefined) {
          chain.fullFile(rel);
          files.set(rel, dest);
          if (rel === 'backup_label') {
            // The newest backup's label without its INCREMENTAL FROM lines, as combine writes it.
            await layout.replaceFile(dest, [combinedBackupLabel(await readAll(body, LABEL_MAX, dest))]);
          } else if (rel === 'global/pg_control') {
            const bytes = await readAll(body, CONTROL_MAX, dest);
            sysid = checkControlFile(source.dir, `${source.dir}:${rel}`, bytes, sysid);
            await layout.replaceFile(dest, [bytes]);
          } else {
            await layout.replaceFile(dest, body);
          }
          return;
        }
        const to = join(dirname(dest), target.slice(target.lastIndexOf('/') + 1));
        if (chain.incremental(target, rel) === 'skip') {
          for await (const _ of body);
          return;
        }
        files.set(target, to);
        const r = await layout.applyIncremental(
          to,
          body,
          (size) => new IncrementalApplier(`${source.dir}:${rel}`, size, newest, { littleEndian: LITTLE_ENDIAN }),
        );
        if ('failed' in r) chain.headerFailed(target, r.failed);
        else chain.applied(target, r.applied);
      };

    // An older backup's WAL is not the combined backup's: only the newest backup's pg_wal is written.
    const base: MemberRoute = (name, type) => (!newest && type === 'file' && name.startsWith('pg_wal/') ? undefined : t.route(name, type));
    await layout.extractArchive(source.baseArchive!, noting('', base), check?.observer('base', 0), writer(''));
    for (const ts of source.tablespaces) {
      const loc = where.get(ts.oid);
      const prefix = `pg_tblspc/${ts.oid}/`;
      const route: MemberRoute = (name) => (loc === undefined ? undefined : join(loc, name));
      await layout.extractArchive(ts.path, noting(prefix, route), check?.observer(String(ts.oid), ts.oid), writer(prefix));
    }
    if (newest && source.walArchive) {
      const wal = t.walDir ?? join(t.dataDir, 'pg_wal');
      await layout.extractArchive(
        source.walArchive,
        noting('pg_wal/', (name) => join(wal, name)),
        undefined,
        writer('pg_wal/'),
      );
    }
    if (check) {
      const findings = check.finish();
      if (findings.length > 0) {
        throw new VerifyError(
          `${source.dir} does not match its manifest (${findings.length} problem${findings.length === 1 ? '' : 's'}): ${findings
            .slice(0, 5)
            .map((f) => f.message)
            .join('; ')}`,
          { path: source.dir },
        );
      }
    }
    for (const rel of chain.end()) {
      files.delete(rel);
      const p = physical(rel);
      if (p !== undefined && !roots.has(p)) await layout.remove(p);
    }
  }
  const refused = chain.finish();
  if (refused) throw refused;
  return [...files.values()];
}

/** A small member whole (backup_label, pg_control); a CombineError when it is larger than `max`. */
async function readAll(body: AsyncIterable<Buffer>, max: number, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size <= max) parts.push(Buffer.from(chunk));
  }
  if (size > max) throw new CombineError(`file "${path}" is too large (${size} bytes, at most ${max})`, { path });
  return Buffer.concat(parts);
}
