// Architectural rules (STYLE.md practice 1), checked on every lint run:
// the CLI goes through the public surface only, library code never prints,
// the top-level folders of src form layers without cycles,
// and only the layers that own I/O touch sockets or the file system.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const sources = files(root).map((p) => ({ path: relative(root, p), text: readFileSync(p, 'utf8') }));
const importsOf = (text: string) => [...text.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1] ?? '');

/** One import or re-export statement of a module (comment lines, TSDoc examples included, are not statements). */
interface ImportStatement {
  specifier: string;
  /** `import type` / `export type`: erased at run time. */
  typeOnly: boolean;
}

/** The import and re-export statements of `text`, including dynamic `import('...')`. */
function statementsOf(text: string): ImportStatement[] {
  const out: ImportStatement[] = [];
  for (const m of text.matchAll(/^(import|export)(\s+type)?\s[^;]*?\bfrom\s+'([^']+)'/gm)) {
    out.push({ specifier: m[3] ?? '', typeOnly: m[2] !== undefined });
  }
  for (const m of text.matchAll(/^import\s+'([^']+)'/gm)) out.push({ specifier: m[1] ?? '', typeOnly: false });
  for (const m of text.matchAll(/^[^*/\n]*\bimport\(\s*'([^']+)'\s*\)/gm)) out.push({ specifier: m[1] ?? '', typeOnly: false });
  return out;
}

/** The src-relative path (`wal/streamer.ts`) a relative specifier of `from` names; undefined for packages and builtins. */
function resolveInSrc(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return normalize(join(dirname(from), specifier)).replace(/\.js$/, '.ts');
}

/** The layer a src file belongs to: its top-level folder (`wal/`), or the file itself at the top (`lsn.ts`). */
const layerOf = (path: string): string => (path.includes('/') ? `${path.slice(0, path.indexOf('/'))}/` : path);

/**
 * Every cycle among the nodes of `graph` (one per strongly connected component of more than one
 * node), each written as a closed path `a -> b -> a` with the file behind each edge.
 */
function cyclesOf(graph: Map<string, Map<string, string>>): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  // Name one closed path through each component: breadth-first from its first node back to it.
  return components.map((component) => {
    const inside = new Set(component);
    const start = [...component].sort()[0]!;
    const previous = new Map<string, string>();
    const queue = [start];
    let end: string | undefined;
    while (queue.length > 0 && end === undefined) {
      const v = queue.shift()!;
      for (const w of [...(graph.get(v)?.keys() ?? [])].sort()) {
        if (!inside.has(w)) continue;
        if (w === start) {
          end = v;
          break;
        }
        if (!previous.has(w)) {
          previous.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = end!; v !== start; v = previous.get(v)!) path.splice(1, 0, v);
    path.push(start);
    return path
      .slice(1)
      .map((to, i) => `${path[i]} -> ${to} (${graph.get(path[i]!)!.get(to)})`)
      .join(', ');
  });
}

/**
 * Where file-system I/O (`node:fs`, `node:fs/promises`) may be imported, one entry per path with
 * the reason. A path ending in `/` is a folder; `*` matches within one file name. Type-only
 * imports (`import type { Stats }`) are not I/O and need no entry. Add an entry here, with its
 * reason, rather than weakening the rule.
 */
const FS_IO_ALLOWED: readonly { path: string; reason: string }[] = [
  { path: 'sinks/', reason: 'sinks write the backup to the file system' },
  { path: 'wal/*-sink.ts', reason: 'WAL sinks write segments and fsync them (directory-sink.ts; the WAL spool sink)' },
  { path: 'recovery/', reason: 'recovery configuration and restore write into the data directory' },
  { path: 'storage/local.ts', reason: 'the local-directory repository storage reads and writes its files' },
  { path: 'cli/', reason: 'the CLI reads its own package.json and the files the user names' },
  { path: 'connection/env.ts', reason: 'libpq default host: the Unix-socket directory that exists' },
  { path: 'connection/pgpass.ts', reason: 'reads the password file (.pgpass), as libpq does' },
  { path: 'connection/tls.ts', reason: 'reads sslrootcert, sslcert, sslkey and sslcrl files, as libpq does' },
  { path: 'verify/io.ts', reason: 'verify: the backup directory and archives it reads' },
  { path: 'verify/sources-io.ts', reason: 'verify: opens the files and archives it checks' },
  { path: 'verify/checksum-io.ts', reason: 'verify: the checksum scheduler reads plain files' },
  { path: 'combine/files.ts', reason: 'combine reads the input backups and writes the combined one' },
  { path: 'archive/store.ts', reason: 'the WAL archive directory: segments written, fsynced and renamed' },
  { path: 'archive/compressed-sink.ts', reason: 'compressed WAL segments written to the archive directory' },
  { path: 'repository/wal-spool.ts', reason: "receive-wal --repo's local spool: the segment in progress, until it is stored" },
  { path: 'manifest/prior.ts', reason: "reads the prior backup's manifest for an incremental backup" },
  { path: 'rehearse/', reason: 'the rehearsal: its scratch directory and the server binaries' },
];

function fsIoAllowed(path: string): boolean {
  return FS_IO_ALLOWED.some(({ path: entry }) => {
    if (entry.endsWith('/')) return path.startsWith(entry);
    const pattern = new RegExp(
      `^${entry
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*')}$`,
    );
    return pattern.test(path);
  });
}

describe('layering', () => {
  it('the CLI imports only public entry points', () => {
    // The root (src/index.ts) and the subpath entries (src/entries/<name>.ts, `pg-basebackup/<name>`).
    const publicEntry = /^\.\.\/(index|entries\/[a-z-]+)\.js$/;
    const offenders = sources
      .filter((s) => s.path.startsWith('cli/'))
      .flatMap((s) =>
        importsOf(s.text)
          .filter((i) => i.startsWith('../') && !publicEntry.test(i))
          .map((i) => `${s.path} imports ${i}`),
      );
    expect(offenders).toEqual([]);
  });

  it('the CLI takes no value from the root entry point', () => {
    // esbuild puts a file in the chunks of every entry point whose imports reach it, used or not, and
    // the root reaches nearly all of the library: a CLI module importing a value from it would load
    // the whole library with that module (`pgbb --version` included, for the runner's modules).
    const offenders = sources
      .filter((s) => s.path.startsWith('cli/'))
      .flatMap((s) =>
        statementsOf(s.text)
          .filter((i) => i.specifier === '../index.js' && !i.typeOnly)
          .map((i) => `${s.path} imports ${i.specifier}`),
      );
    expect(offenders).toEqual([]);
  });

  it('entry points hold re-exports only', () => {
    const entries = sources.filter((s) => s.path === 'index.ts' || s.path.startsWith('entries/'));
    expect(entries.length).toBeGreaterThan(1);
    for (const e of entries) {
      // Drop comments, then every `export ... from '...';` statement: nothing may be left.
      const code = e.text
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '')
        .replace(/export\s+(type\s+)?(\*|\{[^}]*\})\s+from\s+'[^']+';/g, '');
      expect(code.trim(), e.path).toBe('');
    }
  });

  it('library code never writes to the console', () => {
    const offenders = sources
      .filter((s) => !s.path.startsWith('cli/'))
      // Code lines only: TSDoc examples may show console output.
      .filter((s) => s.text.split('\n').some((l) => !/^\s*(\*|\/\/)/.test(l) && /\bconsole\.(log|error|warn|info|debug)\(/.test(l)))
      .map((s) => s.path);
    expect(offenders).toEqual([]);
  });

  it('pure layers (protocol, tar codec, manifest parsing, lsn) do no I/O', () => {
    const pure = sources.filter((s) =>
      /^(protocol\/|storage\/(url|keys|s3-errors)\.ts|lsn\.ts|wal-segments\.ts|server-version\.ts|tar\/(header|pax)\.ts)/.test(s.path),
    );
    const offenders = pure.flatMap((s) =>
      importsOf(s.text)
        .filter((i) => /^node:(fs|net|tls|child_process|fs\/promises)$/.test(i))
        .map((i) => `${s.path} imports ${i}`),
    );
    expect(offenders).toEqual([]);
  });

  it('the top-level folders of src import each other without cycles', () => {
    const graph = new Map<string, Map<string, string>>();
    for (const s of sources) {
      const from = layerOf(s.path);
      for (const { specifier } of statementsOf(s.text)) {
        const target = resolveInSrc(s.path, specifier);
        if (target === undefined || target.startsWith('..')) continue;
        const to = layerOf(target);
        if (to === from) continue;
        const edges = graph.get(from) ?? new Map<string, string>();
        graph.set(from, edges);
        if (!edges.has(to)) edges.set(to, s.path);
      }
    }
    expect(graph.size).toBeGreaterThan(5); // the graph was built (the import parser found imports)
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('the cycle finder names the files behind a cycle', () => {
    const graph = new Map([
      ['a/', new Map([['b/', 'a/x.ts']])],
      ['b/', new Map([['c.ts', 'b/y.ts']])],
      ['c.ts', new Map([['a/', 'c.ts']])],
      ['d/', new Map([['a/', 'd/z.ts']])],
    ]);
    expect(cyclesOf(graph)).toEqual(['a/ -> b/ (a/x.ts), b/ -> c.ts (b/y.ts), c.ts -> a/ (c.ts)']);
  });

  it('file-system I/O happens only in the layers that own it (FS_IO_ALLOWED)', () => {
    const offenders = sources.flatMap((s) =>
      statementsOf(s.text)
        .filter((i) => !i.typeOnly && /^(node:)?fs(\/promises)?$/.test(i.specifier))
        .filter(() => !fsIoAllowed(s.path))
        .map((i) => `${s.path} imports ${i.specifier}`),
    );
    expect(offenders).toEqual([]);
    // The rule sees the imports it is about: a sink does import node:fs.
    expect(
      statementsOf(sources.find((s) => s.path === 'wal/directory-sink.ts')!.text).some((i) => i.specifier === 'node:fs/promises'),
    ).toBe(true);
    expect(fsIoAllowed('wal/directory-sink.ts')).toBe(true);
    expect(fsIoAllowed('wal/streamer.ts')).toBe(false);
  });
  it('the files of src import each other without cycles (type-only imports included)', () => {
    const graph = new Map<string, Map<string, string>>();
    for (const s of sources) {
      const edges = new Map<string, string>();
      graph.set(s.path, edges);
      for (const { specifier } of statementsOf(s.text)) {
        const target = resolveInSrc(s.path, specifier);
        if (target !== undefined && !target.startsWith('..') && target !== s.path) edges.set(target, s.path);
      }
    }
    expect(cyclesOf(graph)).toEqual([]);
  });
});
