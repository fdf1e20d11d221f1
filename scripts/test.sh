#!/usr/bin/env bash
# Run the whole test suite: unit, integration (real PostgreSQL) and end-to-end (real server
# process, skopeo, podman). Installs what is missing; uses the PostgreSQL at
# $DOCKYARD_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres) or starts a
# throwaway one. Extra arguments go to pytest. The tests run in DOCKYARD_TEST_WORKERS processes
# (default 2, pytest-xdist, a test module's tests in one process; 0: in this process, in order).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ensure_venv test
dpkg -s slapd >/dev/null 2>&1 ||  # preseed: installing slapd must not configure a default instance
  echo 'slapd slapd/no_configuration boolean true' | as_root debconf-set-selections
apt_install skopeo podman slapd ldap-utils chromium  # chromium: the portal tests (Playwright)
apt_install docker.io  # tests/e2e/test_docker_cli.py starts its own dockerd (testinfra.md 8)
apt_install haproxy docker-compose openssl  # tests/e2e/test_replicas.py (balancer, compose file), test_tls.py
# Object stores for tests/storage and the e2e tests (testinfra.md 3-5): moto comes with the `test`
# extra; a single-node Swift from Debian; Azurite from npm, pinned (3.37 wants node >= 22).
apt_install swift swift-proxy swift-object swift-account swift-container memcached
if [ ! -x "$VENV/azurite/node_modules/.bin/azurite-blob" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  mkdir -p "$VENV/azurite"
  (cd "$VENV/azurite" && npm install --no-audit --no-fund --silent azurite@3.35.0 >&2)
fi
cd "$ROOT"

export DOCKYARD_TEST_PG=${DOCKYARD_TEST_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
pg_ok() { "$VENV/bin/python" -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$DOCKYARD_TEST_PG" 2>/dev/null; }

PGTMP=""
cleanup() {
  if [ -n "$PGTMP" ]; then
    as_root runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGTMP/data" -m fast stop >/dev/null 2>&1 || true
    as_root rm -rf "$PGTMP"
  fi
}
trap cleanup EXIT

if ! pg_ok; then
  # A cluster that is installed but stopped (as on the project's machines): start it.
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
fi
if ! pg_ok; then
  # None at all (a newcomer's machine): a throwaway trust-auth cluster on port 55432.
  apt_install postgresql
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PGTMP=$(mktemp -d /tmp/dockyard-pg.XXXXXX)
  as_root chown postgres "$PGTMP"
  as_root runuser -u postgres -- "$PGBIN/initdb" -D "$PGTMP/data" -A trust -U postgres >/dev/null
  as_root runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/log" \
    -o "-p 55432 -k $PGTMP -c listen_addresses=127.0.0.1" -w start >/dev/null
  export DOCKYARD_TEST_PG=postgresql://postgres@127.0.0.1:55432/postgres
fi

"$VENV/bin/python" -m pytest -n "${DOCKYARD_TEST_WORKERS:-2}" --dist loadfile "$@"
