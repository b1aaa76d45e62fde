/**
 * The name of the bootstrap superuser (the role with OID 10, which initdb creates and which cannot be
 * dropped), read from the restored `pg_authid` heap file (`global/1260`) before the server starts: the
 * rehearsal connects as that role over its private socket, whatever the cluster called it. Pure: the
 * caller reads the file.
 * @module
 */

/** The relation file of pg_authid (a mapped shared catalog; initdb gives it this file). */
export const PG_AUTHID_FILE = 'global/1260';
/** The bootstrap superuser's OID (BOOTSTRAP_SUPERUSERID). */
const BOOTSTRAP_SUPERUSER_OID = 10;
/** sizeof(NameData). */
const NAMEDATALEN = 64;
const PAGE_HEADER_BYTES = 24;
const ITEM_ID_BYTES = 4;
const LP_NORMAL = 1;

/**
 * The bootstrap superuser's name in a pg_authid heap file: the newest live version (no `xmax`) of the
 * tuple whose `oid` (pg_authid's first column, then `rolname`) is 10. `undefined` when none is found.
 */
export function bootstrapSuperuser(heap: Buffer): string | undefined {
  let found: string | undefined;
  let page = 0;
  while (page + PAGE_HEADER_BYTES <= heap.length) {
    const pageSize = heap.readUInt16LE(page + 18) & 0xff00;
    if (pageSize === 0) break; // an all-zero (new) page ends the walk, like a short file
    const lower = heap.readUInt16LE(page + 12);
    for (let lp = page + PAGE_HEADER_BYTES; lp + ITEM_ID_BYTES <= page + lower; lp += ITEM_ID_BYTES) {
      const item = heap.readUInt32LE(lp);
      const off = item & 0x7fff;
      const flags = (item >>> 15) & 0x3;
      const len = item >>> 17;
      if (flags !== LP_NORMAL || off + len > pageSize) continue;
      const tuple = page + off;
      const xmax = heap.readUInt32LE(tuple + 4);
      const hoff = heap[tuple + 22]!;
      if (xmax !== 0 || hoff + 4 + NAMEDATALEN > len) continue;
      if (heap.readUInt32LE(tuple + hoff) !== BOOTSTRAP_SUPERUSER_OID) continue;
      const name = heap.subarray(tuple + hoff + 4, tuple + hoff + 4 + NAMEDATALEN);
      const end = name.indexOf(0);
      found = name.subarray(0, end < 0 ? NAMEDATALEN : end).toString('utf8');
    }
    page += pageSize;
  }
  return found;
}
