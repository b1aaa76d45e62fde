/**
 * Real PostgreSQL servers for integration tests: every supported major (embedded builds from the pg13..pg18
 * devDependencies) and Debian's PostgreSQL 15, which also provides the oracle tools (pg_basebackup,
 * pg_verifybackup, pg_waldump, pgbench, psql).
 *
 * Importing this module registers an afterAll hook that destroys the clusters the test file started; global
 * teardown (test/harness/global-setup.ts) stops whatever a crashed or timed-out worker left behind.
 */
import { afterAll } from 'vitest';
import { destroyAllClusters } from './cluster.js';
import { stopAllSwift } from './swift.js';

export { ALL_MAJORS, DEBIAN_BIN_DIR, debianBinDir, oracleBin, testMajors, type Flavor } from './binaries.js';
export { ROLES, type Roles } from './config.js';
export { destroyAllClusters, freePort, liveClusters, startCluster, type Cluster, type StartOptions } from './cluster.js';
export { makeTempDir, runRoot } from './run-root.js';
export { atomicArchiveCommand } from './archive.js';
export { TEST_OS_USER, chownToServer, serverIdentity } from './os-user.js';
export type { TlsMaterial } from './tls.js';
export { SWIFT_S3_CREDENTIALS, startSwift, stopAllSwift, type SwiftServer } from './swift.js';
export { startFaultProxy, type Fault, type FaultAction, type FaultProxy } from './fault-proxy.js';

afterAll(destroyAllClusters);
afterAll(stopAllSwift);
