#!/usr/bin/env bash
# Makes a fresh machine ready for `npm test` (and, with --node-only, for `npm run demo`): installs what is
# missing and nothing else, so a second run costs a few file checks.
#  - Debian's PostgreSQL 15 server and client tools: the tests use them as a second server build and as oracles
#    (pg_basebackup, pg_verifybackup, pg_waldump, pgbench, psql); lz4, zstd, gzip and tar check our archives;
#    openssl makes the TLS material; useradd/runuser let the harness run servers as an unprivileged user.
#  - OpenStack Swift with its S3 middleware, and memcached: the real S3 API server of the storage tests
#    (test/harness/swift.ts); setpriv (util-linux) ties its processes' lives to the test worker's.
#  - The npm dependencies, when node_modules is missing or older than package-lock.json.
# Installing system packages needs root (or password-less sudo); without either it says what to install.
set -euo pipefail
cd "$(dirname "$0")/../.."

node_only=false
[ "${1:-}" = "--node-only" ] && node_only=true

say() { printf 'prepare: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1
  fi
}

if [ "$node_only" = false ]; then
  missing=()
  for f in postgres initdb pg_ctl; do
    [ -x "/usr/lib/postgresql/15/bin/$f" ] || missing+=(postgresql-15)
  done
  for f in pg_basebackup pg_verifybackup pg_waldump pgbench psql; do
    [ -x "/usr/lib/postgresql/15/bin/$f" ] || missing+=(postgresql-client-15 postgresql-15)
  done
  for c in lz4 zstd openssl tar gzip; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  for c in useradd runuser; do
    command -v "$c" >/dev/null || missing+=(passwd util-linux)
  done
  command -v setpriv >/dev/null || missing+=(util-linux)
  # wabt's wat2wasm: a unit test checks that the shipped lz4 module is its assembled source.
  command -v wat2wasm >/dev/null || missing+=(wabt)
  for s in proxy object container account; do
    command -v "swift-$s-server" >/dev/null || missing+=("swift-$s")
  done
  command -v swift-ring-builder >/dev/null || missing+=(swift-proxy)
  command -v memcached >/dev/null || missing+=(memcached)
  if [ "${#missing[@]}" -gt 0 ]; then
    pkgs="$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
    say "installing Debian packages: $pkgs"
    # postgresql-15's postinst would otherwise create and start a "main" cluster on port 5432 that outlives the
    # tests; the harness starts its own servers.
    if ! { as_root mkdir -p /etc/postgresql-common/createcluster.d &&
      echo 'create_main_cluster = false' | as_root tee /etc/postgresql-common/createcluster.d/pgbb-no-main.conf >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      # shellcheck disable=SC2086
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs </dev/null; }; then
      say "could not install them (root or password-less sudo is needed): apt-get install $pkgs"
      exit 1
    fi
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
