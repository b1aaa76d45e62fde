/**
 * Reading tar archives as PostgreSQL writes them (ustar, pax and GNU long names), entry by entry with
 * backpressure: each entry's body must be read or skipped before the next header is parsed. It reads
 * the archives of a tar-format backup, or those a `BackupArchive` streams.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * import { extractTar, readBody } from 'pg-basebackup/tar';
 *
 * for await (const entry of extractTar(createReadStream('/backups/monday/base.tar'))) {
 *   if (entry.header.name === 'PG_VERSION') console.log((await readBody(entry.body, 64)).toString().trim());
 *   else await entry.body.skip();
 * }
 * ```
 * @module pg-basebackup/tar
 */
export { extractTar, readBody, TarExtractor } from '../tar/extract.js';
export type { ExtractOptions, TarEntry, TarEntryBody, TarSource } from '../tar/extract.js';
export type { TarEntryType, TarHeader, TarHeaderFormat } from '../tar/header.js';
