#!/usr/bin/env bash
# Two servers on one PostgreSQL database against one, on this machine, against the scripted upstream.
#   1. a fresh database of this bench's own (DB_NAME, default assistants_cluster_bench) on the local
#      PostgreSQL (scripts/setup-postgres.sh makes it run)
#   2. tests/conformance/upstream.py twice: an instant one (every model) and a slow one (the model
#      `slow-model`, routed to it by a models file) for the cancels
#   3. server A alone: N runs (bench/cluster_driver.py, CONCURRENCY in flight)
#   4. server B started on the same database: N runs spread over A and B (worker w on server w mod 2)
#   5. CANCELS runs of `slow-model` created on A and cancelled through B: the time until B reads
#      `cancelled`
#   6. print runs/s and server CPU ms per run (utime + stime of every server process over the phase,
#      over N) for one and two servers, and the cancel latency p50 / p99
#
# Env: N (2000), CONCURRENCY (64), CANCELS (50), POLL_INTERVAL (0.02 s), DB_NAME, PG_ADMIN_URL
#      (postgres://assistants:assistants@127.0.0.1:5432; the role must be allowed to create
#      databases, else the database is made with `createdb` as the postgres user), and those of
#      bench/lib.sh. ASSISTANTS_SERVER_BIN defaults to the release build when there is one, else
#      the debug build (printed); SKIP_BUILD=1 uses it as it is.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

CANCELS="${CANCELS:-50}"
DB_NAME="${DB_NAME:-assistants_cluster_bench}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://assistants:assistants@127.0.0.1:5432}"
runs_bench_setup

if [ -z "${ASSISTANTS_SERVER_BIN:-}" ]; then
    if [ -x "$ROOT/.build/release/assistants-server" ] || [ "${SKIP_BUILD:-0}" != 1 ]; then
        ASSISTANTS_SERVER_BIN="$ROOT/.build/release/assistants-server"
    else
        ASSISTANTS_SERVER_BIN="$ROOT/.build/debug/assistants-server"
    fi
fi
build_release
case "$ASSISTANTS_SERVER_BIN" in
    */debug/*) BUILD_KIND="DEBUG build (figures are not release figures)" ;;
    *) BUILD_KIND="release build" ;;
esac
log "server binary: $ASSISTANTS_SERVER_BIN ($BUILD_KIND)"

# A fresh database of this bench's own.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "PostgreSQL does not answer on 127.0.0.1:5432 (scripts/setup-postgres.sh starts it)"
    exit 1
fi
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
if ! psql -q "$PG_ADMIN_URL/postgres" -c "DROP DATABASE IF EXISTS $DB_NAME" -c "CREATE DATABASE $DB_NAME" >/dev/null 2>&1; then
    as_postgres dropdb --if-exists "$DB_NAME"
    as_postgres createdb -O assistants "$DB_NAME"
fi
DATABASE_URL="$PG_ADMIN_URL/$DB_NAME"
log "database $DATABASE_URL"

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/assistants-bench.XXXXXX")"
start_upstream() { # NAME ARGS...: sets UP_PID, UP_PORT
    local name="$1"; shift
    UP_PORT="$(free_port)"
    "$VENV_PY" "$UPSTREAM_PY" --port "$UP_PORT" "$@" >"$BENCH_TMP/$name.log" 2>&1 &
    UP_PID=$!
    track_pid "$UP_PID"
    wait_http "http://127.0.0.1:$UP_PORT/health" "$UP_PID" "$name" || { tail -n 30 "$BENCH_TMP/$name.log" >&2; exit 1; }
}
start_upstream upstream --mode instant
FAST_URL="http://127.0.0.1:$UP_PORT/v1"
# A reply of 600 chunks, 100 ms apart: a minute, longer than any cancel waits.
start_upstream slow-upstream --mode instant --stamp --stream-chunks 600 --delay-ms 100
SLOW_URL="http://127.0.0.1:$UP_PORT/v1"
cat >"$BENCH_TMP/models.yaml" <<EOF
models:
  - name: slow-model
    upstream_url: $SLOW_URL
EOF

# start_node NAME: a server on the shared database with a data folder of its own; sets NODE_PID, NODE_URL.
start_node() {
    local name="$1" port dir
    port="$(free_port)"
    dir="$BENCH_TMP/$name"
    mkdir -p "$dir"
    env -u ASSISTANTS_API_KEYS ASSISTANTS_LOG_LEVEL="${BENCH_LOG_LEVEL:-warning}" ASSISTANTS_NODE_ID="bench-$name" \
        ASSISTANTS_UPSTREAM_URL="$FAST_URL" ASSISTANTS_UPSTREAM_API_KEY=bench-upstream-key \
        ASSISTANTS_MODELS_CONFIG="$BENCH_TMP/models.yaml" ASSISTANTS_LOCAL_MODEL=off \
        "$ASSISTANTS_SERVER_BIN" serve --host 127.0.0.1 --port "$port" --database-url "$DATABASE_URL" --data-dir "$dir" \
        >"$dir/server.log" 2>&1 &
    NODE_PID=$!
    track_pid "$NODE_PID"
    NODE_URL="http://127.0.0.1:$port"
    wait_http "$NODE_URL/v1/assistants" "$NODE_PID" "server $name" || { tail -n 30 "$dir/server.log" >&2; exit 1; }
    log "server $name pid $NODE_PID on $NODE_URL"
}

driver() { timeout 1800 "$VENV_PY" "$ROOT/bench/cluster_driver.py" --clk-tck "$(getconf CLK_TCK)" "$@" >>"$BENCH_TMP/driver.out"; }
status=0
start_node a; A_PID=$NODE_PID; A_URL=$NODE_URL
log "one server: $N runs, $CONCURRENCY in flight"
driver --label "one server" --base-url "$A_URL" --server-pid "$A_PID" -n "$N" --concurrency "$CONCURRENCY" \
    --poll-interval "$POLL_INTERVAL" || status=$?
start_node b; B_PID=$NODE_PID; B_URL=$NODE_URL
log "two servers: $N runs spread over both"
driver --label "two servers" --base-url "$A_URL" --base-url "$B_URL" --server-pid "$A_PID" --server-pid "$B_PID" \
    -n "$N" --concurrency "$CONCURRENCY" --poll-interval "$POLL_INTERVAL" || status=$?
log "cancel across nodes: $CANCELS runs created on A, cancelled through B"
driver --phase cancel --base-url "$A_URL" --base-url "$B_URL" --server-pid "$A_PID" --server-pid "$B_PID" \
    --cancels "$CANCELS" || status=$?

printf '\n== bench/cluster.sh: PostgreSQL (%s), instant upstream, %s runs, %s in flight, %s ==\n' \
    "$DB_NAME" "$N" "$CONCURRENCY" "$BUILD_KIND"
"$BENCH_PY" - "$BENCH_TMP/driver.out" <<'PY'
import json, sys
rows = [json.loads(l[len("RESULT "):]) for l in open(sys.argv[1]) if l.startswith("RESULT ")]
fmt = "{:<12} {:>7} {:>7} {:>14} {:>8} {:>8}  {}"
print(fmt.format("", "runs", "runs/s", "srv CPU ms/run", "p50 ms", "p99 ms", "statuses (runs per server)"))
for r in rows:
    if r["phase"] != "runs":
        continue
    st = ", ".join(f"{k}={v}" for k, v in sorted(r["statuses"].items()))
    print(fmt.format(r["label"], r["runs"], r["runs_per_s"], r["server_cpu_ms_per_run"], r["latency_ms_p50"],
                     r["latency_ms_p99"], f"{st} ({'/'.join(map(str, r['per_server']))})"))
    if r["errors"]:
        print(f"             errors: {r['errors']}")
for r in rows:
    if r["phase"] == "cancel":
        print(f"cancel on B of a run owned by A: {r['cancelled']}/{r['cancels']} cancelled, "
              f"p50 {r['latency_ms_p50']} ms, p99 {r['latency_ms_p99']} ms, max {r['latency_ms_max']} ms")
        if r["failures"]:
            print(f"             failures: {r['failures']}")
if not rows:
    print("no results from the driver")
PY
echo "(server CPU ms/run: utime + stime of every server process over the phase, over the runs; the database's own CPU is not counted)"
if [ "$status" -ne 0 ]; then
    echo "FAIL: a phase did not complete every run or cancel (exit $status); logs in $BENCH_TMP"
    KEEP_TMP=1
else
    echo "OK"
fi
exit "$status"
