/**
 * Node built-in modules that only some commands need, loaded on first use rather than when the
 * package is imported: every `pgbb` command pays for what its start-up loads (TLS alone is a noticeable share,
 * as it reads the bundled root certificates), and most backups use neither TLS nor compression.
 * `process.getBuiltinModule` is synchronous (Node 20.16+, 22.3+) and returns the same module
 * object a static import would.
 * @module
 */
import type * as Tls from 'node:tls';
import type * as WorkerThreads from 'node:worker_threads';
import type * as Zlib from 'node:zlib';

/** `node:tls`, loaded on first call. */
export function nodeTls(): typeof Tls {
  return process.getBuiltinModule('node:tls');
}

/** `node:zlib`, loaded on first call. */
export function nodeZlib(): typeof Zlib {
  return process.getBuiltinModule('node:zlib');
}

/** `node:worker_threads`, loaded on first call. */
export function nodeWorkerThreads(): typeof WorkerThreads {
  return process.getBuiltinModule('node:worker_threads');
}
