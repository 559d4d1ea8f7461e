#!/usr/bin/env bash
# Install (from Debian's packages), start and prepare a local PostgreSQL for the
# tests. Idempotent; works as root in a fresh Debian 12 container (no systemd).
#
# Creates role `assistants` (password `assistants`) and database
# `assistants_test` owned by it, then prints the URL as the only line on stdout:
#   postgres://assistants:assistants@127.0.0.1:5432/assistants_test
# Progress goes to stderr, so:  export ASSISTANTS_TEST_POSTGRES_URL=$(scripts/setup-postgres.sh)
#
# Env: PG_ROLE, PG_PASSWORD, PG_DATABASE override the names above.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PG_ROLE="${PG_ROLE:-assistants}"
PG_PASSWORD="${PG_PASSWORD:-assistants}"
PG_DATABASE="${PG_DATABASE:-assistants_test}"

log() { echo "setup-postgres: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs packages and starts the cluster as user postgres)"
    exit 1
fi

"$ROOT/scripts/apt-install.sh" postgresql

# The newest installed major version, e.g. 15 on Debian 12.
version="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)"
if [ -z "$version" ]; then
    log "no PostgreSQL server found under /usr/lib/postgresql"
    exit 1
fi
cluster=main

if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {found=1} END {exit !found}'; then
    log "creating cluster $version/$cluster"
    pg_createcluster "$version" "$cluster" >&2
fi

port="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3}')"
status="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $4}')"

if [ "$status" != "online" ]; then
    log "starting cluster $version/$cluster on port $port"
    # A server killed without a clean stop (e.g. the end of a previous session)
    # leaves postmaster.pid and a socket lock file behind; PostgreSQL removes
    # them once their pid is gone, which can take a moment (an unreaped
    # zombie still counts), so retry a few times.
    started=0
    for attempt in 1 2 3 4 5; do
        if pg_ctlcluster "$version" "$cluster" start >&2; then
            started=1
            break
        fi
        log "start attempt $attempt failed; retrying in 2 s"
        sleep 2
    done
    if [ "$started" -ne 1 ]; then
        log "could not start cluster $version/$cluster"
        tail -n 20 "/var/log/postgresql/postgresql-$version-$cluster.log" >&2 || true
        exit 1
    fi
else
    log "cluster $version/$cluster already running on port $port"
fi

# Wait (bounded) until it accepts TCP connections on loopback.
ready=0
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$port"; then
        ready=1
        break
    fi
    sleep 0.5
done
if [ "$ready" -ne 1 ]; then
    log "PostgreSQL did not become ready on 127.0.0.1:$port within 30 s"
    tail -n 20 "/var/log/postgresql/postgresql-$version-$cluster.log" >&2 || true
    exit 1
fi

as_postgres_psql() {
    # cd / so that psql does not complain about root's home directory.
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" "$@")
}

# Role: create it, or reset its password so the URL below always works.
as_postgres_psql -d postgres -v role="$PG_ROLE" -v pw="$PG_PASSWORD" >&2 <<'SQL'
SELECT format(
    CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')
         THEN 'ALTER ROLE %I WITH LOGIN PASSWORD %L'
         ELSE 'CREATE ROLE %I WITH LOGIN PASSWORD %L' END,
    :'role', :'pw') \gexec
SQL

# Database owned by the role (CREATE DATABASE cannot run inside DO/functions).
as_postgres_psql -d postgres -v role="$PG_ROLE" -v db="$PG_DATABASE" >&2 <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
SQL

url="postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$port/$PG_DATABASE"

# Check the URL for real: password authentication over TCP.
if ! PGCONNECT_TIMEOUT=5 psql -X -q -At "$url" -c 'SELECT 1' >/dev/null; then
    log "cannot connect with $url"
    exit 1
fi
log "ready: PostgreSQL $version, role $PG_ROLE, database $PG_DATABASE"
echo "$url"
