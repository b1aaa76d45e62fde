import { ensureTlsMaterial } from './tls.js';
import { createRunRoot, RUN_ROOT_ENV, RUN_ROOT_PREFIX } from './run-root.js';
import { serverIdentity } from './os-user.js';
import { sweepStaleRunRoots, teardownRunRoot } from './teardown.js';

/**
 * Vitest global setup: one temp root per run (shared with the forked workers through the environment, which they
 * inherit), the unprivileged OS user when running as root, and the TLS material. Clusters themselves start lazily
 * in the workers, so a run of unit tests only pays for the root and a few openssl calls.
 *
 * The returned teardown stops every postmaster any worker registered, even those of workers that crashed or
 * timed out, and removes the root.
 */
export default async function setup(): Promise<() => void> {
  sweepStaleRunRoots(RUN_ROOT_PREFIX);
  serverIdentity();
  const root = createRunRoot();
  process.env[RUN_ROOT_ENV] = root;
  await ensureTlsMaterial(root);
  let done = false;
  const teardown = (): void => {
    if (done) return;
    done = true;
    const { stopped, killed } = teardownRunRoot(root);
    if (stopped > 0) {
      // Clusters still running here were not destroyed by their test file (crash, timeout, missing afterAll).
      process.stderr.write(`pgbb harness: stopped ${stopped} leftover PostgreSQL server(s)${killed ? `, ${killed} with SIGKILL` : ''}\n`);
    }
  };
  // Vitest interrupted (Ctrl-C) may exit without calling teardown.
  process.once('exit', teardown);
  return teardown;
}
