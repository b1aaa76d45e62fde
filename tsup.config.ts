import { defineConfig, type Options } from 'tsup';

/**
 * The public entry points: the root and one file per subpath (`pg-basebackup/<name>`), each with its
 * declarations. package.json's `exports`, typedoc.json's `entryPoints` and test/api/api-report.ts
 * list the same names.
 */
export const publicEntries: Record<string, string> = {
  index: 'src/index.ts',
  connection: 'src/entries/connection.ts',
  replication: 'src/entries/replication.ts',
  wal: 'src/entries/wal.ts',
  tar: 'src/entries/tar.ts',
  manifest: 'src/entries/manifest.ts',
  compress: 'src/entries/compress.ts',
  recovery: 'src/entries/recovery.ts',
  rehearse: 'src/entries/rehearse.ts',
  backup: 'src/entries/backup.ts',
  repository: 'src/entries/repository.ts',
  errors: 'src/entries/errors.ts',
};

const shared: Options = {
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  // Shared chunks: a class is defined once, so `instanceof` agrees whichever entry point it came from.
  splitting: true,
  // Not minified: error classes print their own names (`ConnectionError [...]` from console.error, and
  // `err.constructor.name`), and stack traces and source maps read as the source does.
  minify: false,
};

export default defineConfig([
  // The two builds run at once: each cleans only its own files.
  { ...shared, entry: publicEntries, dts: { entry: publicEntries }, clean: ['!cli/**'] },
  // The CLI is bundled on its own, into dist/cli/ with its own chunks. Built with the library, the
  // runner's module imported every chunk of every library entry point, and every command's module was
  // loaded with it; alone, the commands' modules are loaded when they run, and the library modules the
  // CLI reaches (through `../index.js`, whose imports esbuild keeps for their evaluation) share one
  // chunk. The CLI never hands its objects to a copy of the library loaded from dist/index.js, so its
  // own copies of the classes are never compared with `instanceof` across copies.
  { ...shared, entry: { main: 'src/cli/main.ts' }, outDir: 'dist/cli', clean: true },
]);
