/**
 * A directory tree as a map, for comparing two restores or a restore with a combined backup byte for
 * byte: every directory (`dir`) and file (its SHA-256) by its `/`-separated path, links followed (a
 * restored tablespace is one).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every path under `root` but those in `skip` (and what they hold), sorted by name within each directory. */
export function directoryDigests(root: string, skip: ReadonlySet<string> = new Set()): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (skip.has(r)) continue;
      const p = join(root, r);
      if (statSync(p).isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else out.set(r, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk('');
  return out;
}

/** The paths where two trees differ: present in one only, or with other bytes. */
export function treeDifferences(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k)).sort();
}
