import { defineConfig } from 'tsup';

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
  errors: 'src/entries/errors.ts',
};

export default defineConfig({
  entry: { ...publicEntries, 'cli/main': 'src/cli/main.ts' },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: { entry: publicEntries },
  sourcemap: true,
  clean: true,
  // Shared chunks: a class is defined once, so `instanceof` agrees whichever entry point it came from.
  splitting: true,
  // Not minified: error classes print their own names (`ConnectionError [...]` from console.error, and
  // `err.constructor.name`), and stack traces and source maps read as the source does.
  minify: false,
});
