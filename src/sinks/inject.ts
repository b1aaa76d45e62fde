/**
 * Rewriting a `base.tar` on the fly for `-R`: the `postgresql.auto.conf` entry gets the extra settings
 * (its size changes, so that one small entry is buffered), and new files such as `standby.signal` are
 * appended before the end-of-archive marker. Every other entry passes through with its original header
 * bytes and its body as views, at the pace of the consumer.
 * @module
 */
import { TarError } from '../errors.js';
import { readBody, extractTar } from '../tar/extract.js';
import { bodySize } from '../tar/header.js';
import { entryHeader, padding, terminator } from '../tar/writer.js';
import type { Injection } from './types.js';

/** Options for {@link rewriteArchive}. */
export interface RewriteOptions {
  /**
   * Write the end-of-archive marker at the end. Leave false when more entries follow (the manifest
   * injected into a tar on standard output).
   * @default true
   */
  terminate?: boolean;
  /**
   * Largest `postgresql.auto.conf` buffered for the rewrite, in bytes.
   * @default 16777216
   */
  maxAutoConfBytes?: number;
  /** Modification time of the entries we add, in seconds since the epoch. @default now */
  mtime?: number;
}

/** The name PostgreSQL gives the file `ALTER SYSTEM` writes, relative to the data directory. */
export const AUTO_CONF = 'postgresql.auto.conf';

const strip = (name: string): string => name.replace(/^(\.\/)+/, '');

/**
 * Passes a tar archive through, applying an {@link Injection}. The output always ends with an
 * end-of-archive marker (unless `terminate` is false), whether or not the input had one.
 *
 * @example
 * ```ts
 * for await (const chunk of rewriteArchive(baseTarBytes, { addFiles: [{ name: 'standby.signal', content: Buffer.alloc(0) }] })) {
 *   await out.write(chunk);
 * }
 * ```
 */
export async function* rewriteArchive(
  source: AsyncIterable<Buffer | Uint8Array>,
  injection: Injection,
  options: RewriteOptions = {},
): AsyncGenerator<Buffer> {
  const mtime = options.mtime ?? Math.floor(Date.now() / 1000);
  const append = injection.appendToAutoConf;
  const added = new Set((injection.addFiles ?? []).map((f) => strip(f.name)));
  let sawAutoConf = false;
  for await (const entry of extractTar(source)) {
    const name = strip(entry.header.name);
    if (added.has(name)) {
      // The injected file replaces the server's copy, so the archive never holds two.
      await entry.body.skip();
      continue;
    }
    if (append !== undefined && name === AUTO_CONF && entry.header.type === 'file') {
      sawAutoConf = true;
      const original = await readBody(entry.body, options.maxAutoConfBytes ?? 16 * 1024 * 1024);
      const content = Buffer.concat([original, Buffer.from(append, 'utf8')]);
      const h = entry.header;
      yield entryHeader({
        name: h.name,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        mtime: h.mtime,
        uname: h.uname,
        gname: h.gname,
        size: content.length,
      });
      yield content;
      const pad = padding(content.length);
      if (pad.length > 0) yield pad;
      continue;
    }
    yield entry.headerBytes;
    for await (const chunk of entry.body) yield chunk;
    const pad = padding(bodySize(entry.header));
    if (pad.length > 0) yield pad;
  }
  if (append !== undefined && !sawAutoConf) {
    const content = Buffer.from(append, 'utf8');
    yield entryHeader({ name: AUTO_CONF, mode: 0o600, mtime, size: content.length });
    yield content;
    const pad = padding(content.length);
    if (pad.length > 0) yield pad;
  }
  for (const file of injection.addFiles ?? []) {
    if (strip(file.name) === '' || file.name.startsWith('/') || file.name.split('/').includes('..')) {
      throw new TarError(`cannot add "${file.name}" to the archive: the name must be relative to the data directory`);
    }
    yield entryHeader({ name: strip(file.name), mode: file.mode ?? 0o600, mtime, size: file.content.length });
    if (file.content.length > 0) yield file.content;
    const pad = padding(file.content.length);
    if (pad.length > 0) yield pad;
  }
  if (options.terminate ?? true) yield terminator();
}

/** Whether an injection would change anything. */
export function hasInjection(injection: Injection | undefined): injection is Injection {
  return injection !== undefined && (injection.appendToAutoConf !== undefined || (injection.addFiles?.length ?? 0) > 0);
}
