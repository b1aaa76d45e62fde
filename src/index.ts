/**
 * pg-basebackup: physical backups of PostgreSQL 13–18 over the streaming
 * replication protocol. This file is the public surface: re-exports only.
 * @module
 */
export * from './errors.js';
export type * from './connection/types.js';
