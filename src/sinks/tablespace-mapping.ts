/**
 * `-T OLDDIR=NEWDIR` tablespace relocation for plain-format backups, with pg_basebackup's rules:
 * both sides absolute, `=` inside a path escaped as `\=`, paths compared after canonicalization.
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
 * Parses one `OLDDIR=NEWDIR` mapping. A literal `=` in a path is written `\=`.
 * Throws a {@link ConfigError} with pg_basebackup's reasons (missing or repeated `=`, relative path).
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
  if (!posix.isAbsolute(oldDir)) throw new ConfigError(`old directory is not an absolute path in tablespace mapping: "${oldDir}"`);
  if (!posix.isAbsolute(newDir)) throw new ConfigError(`new directory is not an absolute path in tablespace mapping: "${newDir}"`);
  return [canonicalizePath(oldDir), canonicalizePath(newDir)];
}

/**
 * Builds the map a sink takes from several `-T` specs. A later mapping for the same old directory wins.
 *
 * @example
 * ```ts
 * const tablespaceMapping = tablespaceMappingFrom(['/srv/ts1=/mnt/ts1', '/srv/ts2=/mnt/ts2']);
 * ```
 */
export function tablespaceMappingFrom(specs: Iterable<string>): Map<string, string> {
  const map = new Map<string, string>();
  for (const spec of specs) {
    const [oldDir, newDir] = parseTablespaceMapping(spec);
    map.set(oldDir, newDir);
  }
  return map;
}
