/**
 * A real S3 API server for storage tests: OpenStack Swift (account, container, object and proxy servers,
 * single replica, one device) with its S3 middleware (s3api) and memcached, from Debian's packages
 * (test/setup/prepare.sh installs them). Everything lives in one scratch directory; the servers listen on
 * free loopback ports and run as the unprivileged test user when we are root.
 *
 * Each process is started through `setpriv --pdeathsig KILL`, so the kernel kills it when the worker that
 * started it dies (crash, timeout, SIGKILL); a normal run stops them by PID in the file's afterAll
 * (test/harness/index.ts registers it) or, at the latest, when the worker exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './cluster.js';
import { asServerUser, chownToServer, runOk, serverEnv } from './os-user.js';
import { makeTempDir } from './run-root.js';

/** The S3 identity Swift's tempauth defines in {@link startSwift}'s configuration (test data, not a secret). */
export const SWIFT_S3_CREDENTIALS = { accessKeyId: 'test:tester', secretAccessKey: 'testing' } as const;

/** A running Swift with s3api. */
export interface SwiftServer {
  /** The S3 endpoint, `http://127.0.0.1:PORT` (path-style addressing). */
  endpoint: string;
  /** The proxy's port. */
  port: number;
  /** The region s3api answers for. */
  region: 'us-east-1';
  /** Access key and secret of the test account. */
  credentials: typeof SWIFT_S3_CREDENTIALS;
  /** The scratch directory (configuration, rings, devices, logs). */
  dir: string;
  /** The servers' combined output so far (for failure messages). */
  log(): string;
  /** Stop every process (SIGTERM, then SIGKILL after a grace period) and remove the directory. Idempotent. */
  stop(): Promise<void>;
}

const SERVERS = ['account', 'container', 'object'] as const;
const START_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 5_000;

const live = new Set<SwiftServer>();

/** Stop every Swift this process started (test/harness/index.ts runs it in afterAll). */
export async function stopAllSwift(): Promise<void> {
  await Promise.allSettled([...live].map((s) => s.stop()));
}

// A worker that exits normally without afterAll (an uncaught error) still stops its servers.
process.once('exit', () => {
  for (const s of live) for (const child of childrenOf.get(s) ?? []) child.kill('SIGKILL');
});
const childrenOf = new WeakMap<SwiftServer, ChildProcess[]>();

/** Start Swift with s3api; resolves once the proxy's /healthcheck and every back-end server answer. */
export async function startSwift(): Promise<SwiftServer> {
  const dir = await makeTempDir('swift');
  const [proxyPort, memcachedPort, ...backendPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const ports = { account: backendPorts[0]!, container: backendPorts[1]!, object: backendPorts[2]! };
  await writeConfiguration(dir, proxyPort!, memcachedPort!, ports);
  await chownToServer(dir, { recursive: true });

  const logFile = join(dir, 'servers.log');
  const logFd = openSync(logFile, 'a', 0o600);
  const children: ChildProcess[] = [];
  let exited: string | undefined;
  const launch = (name: string, file: string, args: string[]): void => {
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', file, ...args], {
      cwd: dir,
      env: serverEnv({ PYTHONUNBUFFERED: '1' }),
      stdio: ['ignore', logFd, logFd],
      ...asServerUser(),
    });
    child.on('exit', (code, signal) => {
      exited ??= `${name} exited (${signal ?? `status ${String(code)}`})`;
    });
    child.on('error', (err) => {
      exited ??= `${name} could not start: ${err.message}`;
    });
    children.push(child);
  };
  const readLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  let stopped = false;
  const server: SwiftServer = {
    endpoint: `http://127.0.0.1:${proxyPort!}`,
    port: proxyPort!,
    region: 'us-east-1',
    credentials: SWIFT_S3_CREDENTIALS,
    dir,
    log: readLog,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      live.delete(server);
      await Promise.all(children.map((c) => stopChild(c)));
      closeSync(logFd);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  childrenOf.set(server, children);
  live.add(server);

  try {
    launch('memcached', 'memcached', ['-l', '127.0.0.1', '-p', String(memcachedPort), '-U', '0', '-m', '64']);
    for (const name of SERVERS) launch(`swift-${name}-server`, `swift-${name}-server`, [join(dir, `${name}-server.conf`)]);
    launch('swift-proxy-server', 'swift-proxy-server', [join(dir, 'proxy-server.conf')]);
    const deadline = Date.now() + START_TIMEOUT_MS;
    const urls = [
      `${server.endpoint}/healthcheck`,
      // The back ends have no health check; any HTTP answer means they listen.
      ...SERVERS.map((name) => `http://127.0.0.1:${ports[name]}/`),
    ];
    for (const url of urls) {
      for (;;) {
        if (exited) throw new Error(exited);
        if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${START_TIMEOUT_MS} ms`);
        const status = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
          (r) => r.status,
          () => undefined,
        );
        if (status !== undefined && (url.endsWith('/healthcheck') ? status === 200 : true)) break;
        // Waiting on another process's start-up, which announces nothing we could await.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (err) {
    const log = readLog();
    await server.stop();
    throw new Error(`Swift failed to start: ${(err as Error).message}\n--- servers' output ---\n${log.slice(-4000)}`);
  }
  return server;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await gone;
  clearTimeout(timer);
}

async function writeConfiguration(
  dir: string,
  proxyPort: number,
  memcachedPort: number,
  ports: Record<(typeof SERVERS)[number], number>,
): Promise<void> {
  await mkdir(join(dir, 'srv', 'd1'), { recursive: true, mode: 0o700 });
  // Logs go to syslog by default; a UDP port nobody reads keeps them off the host's syslog.
  const logging = `log_udp_host = 127.0.0.1\nlog_udp_port = ${memcachedPort}\nlog_level = WARNING\n`;
  await writeFile(
    join(dir, 'swift.conf'),
    [
      '[swift-hash]',
      'swift_hash_path_suffix = pgbbtest',
      'swift_hash_path_prefix = pgbbtest',
      '',
      '[storage-policy:0]',
      'name = gold',
      'default = yes',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  for (const name of SERVERS) {
    await writeFile(
      join(dir, `${name}-server.conf`),
      [
        '[DEFAULT]',
        `swift_dir = ${dir}`,
        `devices = ${join(dir, 'srv')}`,
        'mount_check = false',
        'bind_ip = 127.0.0.1',
        `bind_port = ${ports[name]}`,
        'workers = 0',
        'disable_fallocate = true',
        logging,
        '[pipeline:main]',
        `pipeline = ${name}-server`,
        '',
        `[app:${name}-server]`,
        `use = egg:swift#${name}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const builder = `${name}.builder`;
    await runOk('swift-ring-builder', [builder, 'create', '4', '1', '1'], { cwd: dir });
    await runOk('swift-ring-builder', [builder, 'add', `r1z1-127.0.0.1:${ports[name]}/d1`, '1'], { cwd: dir });
    await runOk('swift-ring-builder', [builder, 'rebalance'], { cwd: dir });
  }
  const filters = [
    'catch_errors',
    'gatekeeper',
    'healthcheck',
    'proxy-logging',
    'cache',
    'listing_formats',
    'bulk',
    's3api',
    'tempauth',
    'copy',
    'slo',
    'dlo',
    'versioned_writes',
    'symlink',
  ];
  const eggs: Record<string, string> = { 'proxy-logging': 'proxy_logging', cache: 'memcache' };
  const special: Record<string, string[]> = {
    s3api: ['location = us-east-1', 'allow_multipart_uploads = true', 'check_bucket_owner = false'],
    tempauth: [`user_${SWIFT_S3_CREDENTIALS.accessKeyId.replace(':', '_')} = ${SWIFT_S3_CREDENTIALS.secretAccessKey} .admin`],
    cache: [`memcache_servers = 127.0.0.1:${memcachedPort}`],
  };
  await writeFile(
    join(dir, 'proxy-server.conf'),
    [
      '[DEFAULT]',
      `swift_dir = ${dir}`,
      'bind_ip = 127.0.0.1',
      `bind_port = ${proxyPort}`,
      'workers = 0',
      logging,
      '[pipeline:main]',
      `pipeline = ${filters.join(' ')} proxy-logging proxy-server`,
      '',
      '[app:proxy-server]',
      'use = egg:swift#proxy',
      'allow_account_management = true',
      'account_autocreate = true',
      '',
      ...filters.flatMap((f) => [`[filter:${f}]`, `use = egg:swift#${eggs[f] ?? f}`, ...(special[f] ?? []), '']),
    ].join('\n'),
    { mode: 0o600 },
  );
}
