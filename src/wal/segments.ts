/**
 * WAL segment arithmetic and naming, as the WAL layer's modules and users know it. The code
 * lives one layer down in src/wal-segments.ts, beside src/lsn.ts, because the replication
 * commands (below this layer) need it too (TIMELINE_HISTORY names a history file).
 * @module
 */
export * from '../wal-segments.js';
