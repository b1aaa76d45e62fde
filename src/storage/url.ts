/**
 * The repository address: a local directory, or an S3 bucket and prefix with the settings an
 * S3-compatible server needs. Pure: parsing only, nothing is opened.
 * @module
 */
import { ConfigError } from '../errors.js';

/** A parsed local-directory address. */
export interface LocalStorageAddress {
  kind: 'local';
  /** The directory, as given (relative paths are resolved by whoever opens it). */
  path: string;
}

/** A parsed `s3://` address. */
export interface S3StorageAddress {
  kind: 's3';
  /** The bucket. */
  bucket: string;
  /** Key prefix inside the bucket: empty, or ending with `/`. */
  prefix: string;
  /** `endpoint=URL`: an S3-compatible server (`http://127.0.0.1:9000`); absent for AWS. */
  endpoint?: string;
  /** `region=R`; absent to take it from the SDK's configuration (`AWS_REGION`, shared config). */
  region?: string;
  /** `forcePathStyle=true`: address the bucket in the path, not the host name (most S3-compatible servers). */
  forcePathStyle: boolean;
}

/** What {@link parseStorageUrl} returns. */
export type StorageAddress = LocalStorageAddress | S3StorageAddress;

const S3_PARAMETERS = new Set(['endpoint', 'region', 'forcePathStyle']);

// S3's bucket naming rules (3-63 characters, lower case, digits, dots and hyphens), loosened to accept
// the underscores and capitals some S3-compatible servers allow.
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/;

/**
 * Parse a repository address:
 * - a local path (`/backups/main`, `./repo`), or `file:///backups/main`;
 * - `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&forcePathStyle=true]`.
 *
 * Credentials are never part of the address (they come from the AWS SDK's provider chain): an address with
 * a user or password is refused, and the message does not repeat it. Throws {@link pg-basebackup/errors!ConfigError}.
 *
 * @example
 * ```ts
 * parseStorageUrl('s3://backups/db1?endpoint=http://127.0.0.1:8080&forcePathStyle=true')
 * // { kind: 's3', bucket: 'backups', prefix: 'db1/', endpoint: 'http://127.0.0.1:8080', forcePathStyle: true }
 * ```
 */
export function parseStorageUrl(address: string): StorageAddress {
  if (address === '') throw new ConfigError('the repository address is empty: give a directory or s3://BUCKET/PREFIX');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(address)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'local', path: address };
  if (scheme === 'file') return parseFileUrl(address);
  if (scheme === 's3') return parseS3Url(address);
  throw new ConfigError(`the repository address has an unsupported scheme "${scheme}://": use a directory path or s3://BUCKET/PREFIX`);
}

function parseFileUrl(address: string): LocalStorageAddress {
  let url: URL;
  try {
    url = new URL(address);
  } catch (cause) {
    throw new ConfigError('the repository address is not a valid file:// URL', { cause });
  }
  if (url.host !== '' && url.host !== 'localhost') {
    throw new ConfigError(`a file:// repository address must name a local path (file:///path), not host "${url.host}"`);
  }
  if (url.search !== '' || url.hash !== '') throw new ConfigError('a file:// repository address takes no query or fragment');
  return { kind: 'local', path: decodeURIComponent(url.pathname) };
}

function parseS3Url(address: string): S3StorageAddress {
  // Parsed by hand rather than with URL: bucket names are not host names (URL would lower-case them and
  // refuse underscores), and we must not echo an embedded secret in an error.
  const rest = address.slice('s3://'.length);
  const queryAt = rest.indexOf('?');
  const path = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const query = queryAt === -1 ? '' : rest.slice(queryAt + 1);
  if (path.includes('#') || query.includes('#')) throw new ConfigError('an s3:// repository address takes no #fragment');
  const slash = path.indexOf('/');
  const bucket = slash === -1 ? path : path.slice(0, slash);
  if (bucket.includes('@')) {
    throw new ConfigError(
      'an s3:// repository address must not contain credentials: they come from the AWS SDK ' +
        '(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, shared credentials file, web identity, instance metadata)',
    );
  }
  if (bucket === '') throw new ConfigError('the s3:// repository address has no bucket: s3://BUCKET/PREFIX');
  if (!BUCKET_NAME.test(bucket)) {
    throw new ConfigError(`"${bucket}" is not a valid bucket name (3-63 letters, digits, dots, hyphens or underscores)`);
  }
  const prefix = normalizePrefix(slash === -1 ? '' : path.slice(slash + 1));
  const out: S3StorageAddress = { kind: 's3', bucket, prefix, forcePathStyle: false };
  const seen = new Set<string>();
  for (const [name, value] of new URLSearchParams(query)) {
    if (!S3_PARAMETERS.has(name)) {
      throw new ConfigError(`unknown parameter "${name}" in the s3:// repository address: use ${[...S3_PARAMETERS].join(', ')}`);
    }
    if (seen.has(name)) throw new ConfigError(`parameter "${name}" appears twice in the s3:// repository address`);
    seen.add(name);
    if (name === 'endpoint') out.endpoint = parseEndpoint(value);
    else if (name === 'region') {
      if (!/^[a-z0-9-]+$/i.test(value)) throw new ConfigError(`invalid region "${value}" in the s3:// repository address`);
      out.region = value;
    } else {
      if (value !== 'true' && value !== 'false') {
        throw new ConfigError(`forcePathStyle must be true or false in the s3:// repository address, not "${value}"`);
      }
      out.forcePathStyle = value === 'true';
    }
  }
  return out;
}

function normalizePrefix(raw: string): string {
  let prefix: string;
  try {
    prefix = decodeURIComponent(raw);
  } catch (cause) {
    throw new ConfigError('the prefix of the s3:// repository address has a bad %-escape', { cause });
  }
  const segments = prefix.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '.' || s === '..')) {
    throw new ConfigError('the prefix of the s3:// repository address must not contain "." or ".." segments');
  }
  return segments.length === 0 ? '' : `${segments.join('/')}/`;
}

function parseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new ConfigError('the endpoint of the s3:// repository address is not a URL (e.g. endpoint=http://127.0.0.1:9000)', { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`the endpoint of the s3:// repository address must be http:// or https://, not ${url.protocol}//`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError('the endpoint of the s3:// repository address must not contain credentials: they come from the AWS SDK');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ConfigError(
      'the endpoint of the s3:// repository address takes no query or fragment (percent-encode it as a parameter value)',
    );
  }
  return url.origin + (url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''));
}

/** The address as text, for messages: never contains credentials (addresses cannot hold any). */
export function formatStorageAddress(address: StorageAddress): string {
  if (address.kind === 'local') return address.path;
  return `s3://${address.bucket}/${address.prefix}`;
}
