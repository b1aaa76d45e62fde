/**
 * What a restore learns about a backup before writing anything: its format (a plain data directory,
 * or `base.tar` with `<oid>.tar` tablespaces and `pg_wal.tar`, each maybe compressed), its
 * `backup_label` (start LSN and timeline; `INCREMENTAL FROM` marks an incremental backup), its
 * `tablespace_map` or `pg_tblspc` links, and the WAL range of its manifest (the end LSN). A tar backup's
 * label and map are the first members of `base.tar` (the server sends them first), so only its head is read.
 * @module
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { decompressorFor } from '../compress/decompress.js';
import { parseBackupLabel, type BackupLabelInfo } from '../combine/backup-label.js';
import { ConfigError, IoError, PgBackupError } from '../errors.js';
import type { Lsn } from '../lsn.js';
import { parseManifest } from '../manifest/parse.js';
import type { BackupManifest } from '../manifest/types.js';
import { extractTar, readBody } from '../tar/extract.js';
import { classifyArchive } from '../verify/sources.js';

/**
 * A tar archive that is not a local file (an object of a backup repository): its name (whose suffix
 * says the compression) and how to stream its stored bytes.
 */
export interface StoredArchive {
  /** `base.tar.gz`, `16384.tar`, `pg_wal.tar.lz4`. */
  name: string;
  /** Stored bytes, for messages and checks. */
  size: number;
  /** The stored (still compressed) bytes, from the start. */
  open(signal?: AbortSignal): Promise<Readable>;
  /** Where it is, for messages. */
  location: string;
}

/** A tar archive of a backup: a file's path, or a {@link StoredArchive}. */
export type ArchiveLocation = string | StoredArchive;

/** Where an archive is, for messages. */
export function archiveLocation(archive: ArchiveLocation): string {
  return typeof archive === 'string' ? archive : archive.location;
}

/** One tablespace of a backup. */
export interface BackupTablespaceSource {
  oid: number;
  /** Where it was on the backed-up server (`tablespace_map`, or the plain backup's `pg_tblspc` link). */
  location: string;
  /** Tar: the `<oid>.tar*` archive. Plain: the directory the link points to. */
  path: ArchiveLocation;
}

/** A backup as a restore sees it. */
export interface BackupSource {
  /** The backup directory, or where the stored backup is (for messages). */
  dir: string;
  format: 'plain' | 'tar';
  /** Tar: the `base.tar*` file. */
  baseArchive: ArchiveLocation | undefined;
  /** Tar: the `pg_wal.tar*` file, when the backup has one. */
  walArchive: ArchiveLocation | undefined;
  tablespaces: BackupTablespaceSource[];
  label: BackupLabelInfo;
  /** The parsed `backup_manifest`, when the backup has one. */
  manifest: BackupManifest | undefined;
  /** The end of the WAL the backup needs (the manifest's WAL range on the start timeline). */
  endLsn: Lsn | undefined;
}

const LABEL_MAX = 64 * 1024;
const MAP_MAX = 1024 * 1024;

async function readText(path: string, what: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return undefined;
    throw new IoError(`cannot read ${what} ${path}: ${e.message}`, { cause: err, path, syscallCode: e.code });
  }
}

/** Parse `tablespace_map`: `<oid> <location>` per line (the location runs to the end of the line). */
export function parseTablespaceMap(text: string): { oid: number; location: string }[] {
  const out: { oid: number; location: string }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^(\d+) (.+)$/.exec(line.replace(/\r$/, ''));
    if (!m) throw new ConfigError(`invalid line in tablespace_map: "${line}"`);
    // PostgreSQL 13+ escapes a newline or carriage return in a location with a backslash.
    out.push({ oid: Number(m[1]), location: m[2]!.replace(/\\(.)/g, '$1') });
  }
  return out;
}

/** The head of `base.tar*`: its `backup_label` and `tablespace_map`. */
async function readTarHead(archive: ArchiveLocation): Promise<{ label: string | undefined; map: string | undefined }> {
  const path = archiveLocation(archive);
  const raw = typeof archive === 'string' ? createReadStream(archive) : await archive.open();
  const input = raw.pipe(decompressorFor(typeof archive === 'string' ? archive : archive.name));
  let label: string | undefined;
  let map: string | undefined;
  try {
    for await (const entry of extractTar(input as AsyncIterable<Buffer>, { drainAfterEnd: false })) {
      const name = entry.header.name.replace(/^\.\//, '');
      if (name === 'backup_label') label = (await readBody(entry.body, LABEL_MAX)).toString('utf8');
      else if (name === 'tablespace_map') map = (await readBody(entry.body, MAP_MAX)).toString('utf8');
      else if (label !== undefined) break; // the server sends both before anything else
    }
  } catch (err) {
    if (err instanceof PgBackupError) throw err;
    throw new IoError(`cannot read ${path}: ${(err as Error).message}`, { cause: err, path });
  } finally {
    input.destroy();
    raw.destroy();
  }
  return { label, map };
}

/**
 * Inspect the backup in `dir`.
 * @throws ConfigError when it is not a backup, or is an incremental one.
 */
export async function inspectBackup(dirIn: string): Promise<BackupSource> {
  const dir = resolve(dirIn);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new IoError(`cannot read the backup directory ${dir}: ${e.message}`, { cause: err, path: dir, syscallCode: e.code });
  }
  const manifestText = await readText(join(dir, 'backup_manifest'), 'the backup manifest');
  const manifest = manifestText === undefined ? undefined : parseManifest(Buffer.from(manifestText, 'utf8'));
  let format: 'plain' | 'tar';
  let labelText: string | undefined;
  let baseArchive: ArchiveLocation | undefined;
  let walArchive: ArchiveLocation | undefined;
  const tablespaces: BackupTablespaceSource[] = [];
  if (names.includes('PG_VERSION')) {
    format = 'plain';
    labelText = await readText(join(dir, 'backup_label'), 'the backup label');
    const links = await readdir(join(dir, 'pg_tblspc')).catch(() => [] as string[]);
    for (const l of links) {
      if (!/^\d+$/.test(l)) continue;
      const p = join(dir, 'pg_tblspc', l);
      if (!(await lstat(p)).isSymbolicLink()) continue;
      const target = resolve(join(dir, 'pg_tblspc'), await readlink(p));
      tablespaces.push({ oid: Number(l), location: target, path: target });
    }
  } else {
    format = 'tar';
    ({ baseArchive, walArchive, labelText } = await tarArchives(
      dir,
      names.map((n) => ({ name: n, archive: join(dir, n) })),
      tablespaces,
    ));
  }
  return finishSource({ dir, format, baseArchive, walArchive, tablespaces, labelText, manifest });
}

/**
 * Sorts a tar-format backup's files into the base, WAL and tablespace archives (filling `tablespaces`
 * with their locations from the base archive's `tablespace_map`), and reads the base archive's label.
 */
async function tarArchives(
  dir: string,
  files: readonly { name: string; archive: ArchiveLocation }[],
  tablespaces: BackupTablespaceSource[],
): Promise<{ baseArchive: ArchiveLocation; walArchive: ArchiveLocation | undefined; labelText: string | undefined }> {
  let baseArchive: ArchiveLocation | undefined;
  let walArchive: ArchiveLocation | undefined;
  for (const { name: n, archive } of files) {
    const k = classifyArchive(n);
    if (k.kind === 'base') {
      if (baseArchive) throw new ConfigError(`the backup ${dir} has two base archives (${archiveLocation(baseArchive)} and ${n})`);
      baseArchive = archive;
    } else if (k.kind === 'wal') walArchive = archive;
    else if (k.kind === 'tablespace') tablespaces.push({ oid: k.oid, location: '', path: archive });
  }
  if (!baseArchive) {
    throw new ConfigError(`${dir} is not a backup: it holds neither PG_VERSION (plain format) nor base.tar (tar format)`);
  }
  const { label: labelText, map: mapText } = await readTarHead(baseArchive);
  const map = mapText === undefined ? [] : parseTablespaceMap(mapText);
  for (const ts of tablespaces) {
    const entry = map.find((m) => m.oid === ts.oid);
    if (!entry)
      throw new ConfigError(
        `the backup has tablespace archive ${archiveLocation(ts.path)} but its tablespace_map does not list tablespace ${ts.oid}`,
      );
    ts.location = entry.location;
  }
  return { baseArchive, walArchive, labelText };
}

/**
 * A tar-format backup stored elsewhere than a local directory (a repository's `backups/<id>/`): its
 * archives by name, and its manifest's bytes. Only the head of the base archive is read.
 * @throws ConfigError when it is not a tar-format base backup.
 */
export async function inspectStoredBackup(
  where: string,
  archives: readonly StoredArchive[],
  manifestBytes: Buffer | undefined,
  options: { allowIncremental?: boolean } = {},
): Promise<BackupSource> {
  const manifest = manifestBytes === undefined ? undefined : parseManifest(manifestBytes);
  const tablespaces: BackupTablespaceSource[] = [];
  const { baseArchive, walArchive, labelText } = await tarArchives(
    where,
    archives.map((a) => ({ name: a.name, archive: a })),
    tablespaces,
  );
  return finishSource({ dir: where, format: 'tar', baseArchive, walArchive, tablespaces, labelText, manifest }, options);
}

function finishSource(
  o: {
    dir: string;
    format: 'plain' | 'tar';
    baseArchive: ArchiveLocation | undefined;
    walArchive: ArchiveLocation | undefined;
    tablespaces: BackupTablespaceSource[];
    labelText: string | undefined;
    manifest: BackupManifest | undefined;
  },
  options: { allowIncremental?: boolean } = {},
): BackupSource {
  const { dir, format, baseArchive, walArchive, tablespaces, labelText, manifest } = o;
  if (labelText === undefined) {
    throw new ConfigError(`the backup ${dir} has no backup_label: it is not a base backup (or was started by hand and not finished)`);
  }
  const label = parseBackupLabel(labelText, 'backup_label');
  if (label.incrementalFromLsn !== undefined && !options.allowIncremental) {
    throw new ConfigError(
      `the backup ${dir} is incremental: combine it with the backups it depends on first (pgbb combine FULL ... INCREMENTAL -o DIR), then restore the result`,
    );
  }
  const range = manifest?.walRanges.find((r) => r.timeline === label.startTimeline) ?? manifest?.walRanges[0];
  return {
    dir,
    format,
    baseArchive,
    walArchive,
    tablespaces,
    label,
    manifest,
    endLsn: manifest
      ? manifest.walRanges.reduce<Lsn | undefined>((m, r) => (m === undefined || r.endLsn > m ? r.endLsn : m), range?.endLsn)
      : undefined,
  };
}
