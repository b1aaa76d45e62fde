/**
 * `-T OLDDIR=NEWDIR` tablespace relocation, with pg_basebackup's rules (tablespace_list_append and
 * get_tablespace_mapping): the one parser behind `pgbb backup -T`, `pgbb combine -T` and the
 * library's `tablespaceMapping` options.
 * @module
 */
import { posix } from 'node:path';
import { ConfigError } from '../errors.js';

/**
 * Canonicalizes a path the way pg_basebackup compares tablespace locations: `.` and `..` resolved,
 * repeated and trailing slashes removed.
 */
export function canonicalizePath(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 ? normalized.replace(/\/+$/, '') : normalized;
}

/**
 * A drive (`C:\`, `C:/`) or UNC (`\\server`) path. pg_basebackup accepts these for OLDDIR whatever
 * the client runs on, because OLDDIR names a location on the server, which may run on Windows.
 */
function isWindowsAbsolute(path: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(path) || /^[\\/]{2}/.test(path);
}

/**
 * Parses one `OLDDIR=NEWDIR` mapping, as pg_basebackup's tablespace_list_append: a literal `=` in a
 * path is written `\=`; neither side may be empty; a second unescaped `=` is refused; OLDDIR must be
 * absolute by Unix or Windows rules (it is a server path), NEWDIR absolute here. Both come back
 * canonicalized (`canonicalizePath`).
 * @throws ConfigError with pg_basebackup's reason.
 *
 * @example
 * ```ts
 * parseTablespaceMapping('/srv/ts=/mnt/ts'); // ['/srv/ts', '/mnt/ts']
 * parseTablespaceMapping('/srv/a\\=b=/mnt/c'); // ['/srv/a=b', '/mnt/c']
 * ```
 */
export function parseTablespaceMapping(spec: string): [oldDir: string, newDir: string] {
  let oldDir = '';
  let newDir = '';
  let sawEquals = false;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i] as string;
    if (c === '\\' && spec[i + 1] === '=') {
      if (sawEquals) newDir += '=';
      else oldDir += '=';
      i++;
    } else if (c === '=') {
      if (sawEquals) throw new ConfigError(`multiple "=" signs in tablespace mapping "${spec}": escape a literal "=" as "\\="`);
      sawEquals = true;
    } else if (sawEquals) {
      newDir += c;
    } else {
      oldDir += c;
    }
  }
  if (!sawEquals || oldDir === '' || newDir === '') {
    throw new ConfigError(`invalid tablespace mapping format "${spec}", must be "OLDDIR=NEWDIR"`);
  }
  if (!posix.isAbsolute(oldDir) && !isWindowsAbsolute(oldDir)) {
    throw new ConfigError(`old directory is not an absolute path in tablespace mapping: ${oldDir}`);
  }
  if (!posix.isAbsolute(newDir)) throw new ConfigError(`new directory is not an absolute path in tablespace mapping: ${newDir}`);
  return [canonicalizePath(oldDir), canonicalizePath(newDir)];
}

/**
 * Builds the map the plain sink and `combineBackups` take from several `-T` specs, in command-line
 * order. When two specs name the same old directory the FIRST one wins, as in pg_basebackup, whose
 * get_tablespace_mapping returns the first matching entry of its list.
 * @throws ConfigError for the first spec {@link parseTablespaceMapping} refuses.
 *
 * @example
 * ```ts
 * const tablespaceMapping = tablespaceMappingFrom(['/srv/ts1=/mnt/ts1', '/srv/ts2=/mnt/ts2']);
 * tablespaceMappingFrom(['/srv/ts=/a', '/srv/ts=/b']).get('/srv/ts'); // '/a'
 * ```
 */
export function tablespaceMappingFrom(specs: Iterable<string>): Map<string, string> {
  const map = new Map<string, string>();
  for (const spec of specs) {
    const [oldDir, newDir] = parseTablespaceMapping(spec);
    if (!map.has(oldDir)) map.set(oldDir, newDir);
  }
  return map;
}
