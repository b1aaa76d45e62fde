/**
 * The usual shape of an integration file: one cluster per major of the run, started before the file's
 * tests and destroyed after them, plus a scratch directory. Registers the vitest hooks itself.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import type { ConnectionOptions } from '../../src/connection/types.js';
import { startCluster, type Cluster, type StartOptions } from './cluster.js';
import { ROLES } from './config.js';
import { makeTempDir } from './run-root.js';

/** The clusters of a file, by major, and its scratch directory (both ready once beforeAll ran). */
export interface MajorClusters {
  /** The cluster of `major`; throws for a major the run did not start. */
  get(major: number): Cluster;
  /** A scratch directory for the file. */
  readonly tmp: string;
}

/**
 * Starts one cluster of each of `majors` in beforeAll (after `setup`, if given, ran on each) and destroys
 * them in afterAll.
 * @example
 * ```ts
 * const clusters = clustersForMajors(testMajors(), 'wal-stream');
 * it('...', () => { const c = clusters.get(16); });
 * ```
 */
export function clustersForMajors(majors: readonly number[], name: string, setup?: (c: Cluster) => Promise<void>): MajorClusters {
  const byMajor = new Map<number, Cluster>();
  let tmp: string | undefined;
  beforeAll(async () => {
    tmp = await makeTempDir(name);
    const started = await Promise.all(
      majors.map(async (major) => {
        const c = await startCluster({ major });
        await setup?.(c);
        return c;
      }),
    );
    for (const c of started) byMajor.set(c.major, c);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([...byMajor.values()].map((c) => c.destroy()));
  });
  return {
    get(major: number): Cluster {
      const c = byMajor.get(major);
      if (!c) throw new Error(`no cluster for ${major}`);
      return c;
    },
    get tmp(): string {
      if (tmp === undefined) throw new Error('the scratch directory exists once beforeAll ran');
      return tmp;
    },
  };
}

/** Connection options for the trust role over TCP without TLS, ignoring the environment. */
export function trustTcp(c: Cluster, extra: ConnectionOptions = {}): ConnectionOptions {
  return { host: c.host, port: c.port, user: ROLES.trust, sslmode: 'disable', env: {}, connectTimeoutMs: 20_000, ...extra };
}

/**
 * `describe.concurrent(title)` with, for each major of `majors`, a sequential block that has its own
 * primary (started with `start`, destroyed after the block). `body` declares the block's tests.
 * @example
 * ```ts
 * describeEachMajor('failing backups', testMajors(), (major, primary) => {
 *   it('...', async () => { await runBackup({ connection: primary().connectionString(), ... }); });
 * });
 * ```
 */
export function describeEachMajor(
  title: string,
  majors: readonly number[],
  body: (major: number, primary: () => Cluster) => void,
  start: Omit<StartOptions, 'major'> = { ssl: false },
): void {
  describe.concurrent(title, () => {
    for (const major of majors) {
      describe.sequential(`PostgreSQL ${major}`, () => {
        let primary: Cluster | undefined;
        beforeAll(async () => {
          primary = await startCluster({ major, ...start });
        });
        afterAll(async () => {
          await primary?.destroy();
        });
        body(major, () => {
          if (!primary) throw new Error(`the PostgreSQL ${major} primary is not running`);
          return primary;
        });
      });
    }
  });
}
