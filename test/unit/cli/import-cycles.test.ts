// src/cli is layered: commands → context/output/library → the package entry point. A cycle between
// its files, even one made only of `import type`, means a module's meaning depends on one that
// depends on it back; keep the graph acyclic.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../../src/cli/', import.meta.url));

/** Every `./x.js` a file imports or re-exports (as `x.ts`), type-only and dynamic imports included. */
function localImports(source: string): string[] {
  const out = new Set<string>();
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*['"](\.\/[^'"]+)['"]/g,
    /\bimport\s*['"](\.\/[^'"]+)['"]/g,
    /\bimport\s*\(\s*['"](\.\/[^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) out.add((m[1] as string).slice(2).replace(/\.js$/, '.ts'));
  return [...out];
}

/** The first cycle found, as a path of file names, or undefined. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'visiting') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('src/cli imports', () => {
  it('finds cycles, type-only ones too (the checker itself)', () => {
    const edges = (src: Record<string, string>) => new Map(Object.entries(src).map(([f, s]) => [f, localImports(s)]));
    expect(
      findCycle(
        edges({
          'a.ts': "import { b } from './b.js';",
          'b.ts': "import type { C } from './c.js';",
          'c.ts': "export type { A } from './a.js';",
        }),
      ),
    ).toEqual(['a.ts', 'b.ts', 'c.ts', 'a.ts']);
    expect(findCycle(edges({ 'a.ts': "const m = await import('./b.js');", 'b.ts': "import {\n  type A,\n} from './a.js';" }))).toEqual([
      'a.ts',
      'b.ts',
      'a.ts',
    ]);
    expect(findCycle(edges({ 'a.ts': "import { b } from './b.js';", 'b.ts': "import { x } from '../index.js';" }))).toBeUndefined();
  });

  it('form no cycle', () => {
    const files = readdirSync(CLI).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    const graph = new Map(files.map((f) => [f, localImports(readFileSync(join(CLI, f), 'utf8'))]));
    // The graph is read right: backup.ts imports context.ts.
    expect(graph.get('backup.ts')).toContain('context.ts');
    expect(findCycle(graph)).toBeUndefined();
  });
});
