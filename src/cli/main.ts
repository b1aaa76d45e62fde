#!/usr/bin/env node
/**
 * The `pgbb` executable (built to dist/cli/main.js). It turns on Node's on-disk compile cache where
 * Node has one (22.1+: `module.enableCompileCache`, as npm does) before the rest of the program is
 * loaded, so that later runs skip compiling it: every command pays its start-up, and a backup of a
 * few hundred megabytes lasts half a second. Then it runs the command line (process.ts).
 * @module
 */
import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';

function packageVersion(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two levels below package.json.
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

try {
  (nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
} catch {
  // Only start-up time is at stake.
}
const { main } = await import('./process.js');
await main(packageVersion());
