#!/usr/bin/env bash
# Per-delta latency of streamed runs, on loopback, release build, SQLite.
#   1. the release binary: built (swift build -c release --product assistants-server) only
#      when it is missing or older than Sources/ / Package.swift / Package.resolved, after
#      waiting for any running swift-build to finish (one Swift build at a time)
#   2. start tests/conformance/upstream.py --mode instant --stamp --stream-chunks C --nodelay:
#      every streamed reply is C chunks "<t=NANOS>", NANOS = time.time_ns() at the chunk's send
#   3. start the server with ASSISTANTS_UPSTREAM_URL pointing at it
#   4. bench/stream_driver.py: phase "baseline" reads RUNS streams straight from the upstream,
#      phase "server" streams RUNS runs (POST /v1/threads/runs, stream true), CONCURRENCY at a
#      time; for each delta: receive time - upstream send time; server CPU per delta
#   5. print a table: median / p90 / p99 per phase, added latency (server - baseline),
#      server CPU us per delta; target: median added latency < 1 ms
#
# Env: RUNS (50), CHUNKS (120), CONCURRENCY (4), DELAY_MS (1: pause before each upstream
#      chunk; 0 = bursts), WARMUP (3), ROUNDS (5: the phases take turns), PHASES ("baseline,server"), TARGET_US (1000),
#      SKIP_BUILD=1 (use the binary as is), ASSISTANTS_SERVER_BIN (default the release one),
#      BUILD_WAIT (seconds to wait for another swift-build, default 1800), and bench/lib.sh's.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

RUNS="${RUNS:-50}"
CHUNKS="${CHUNKS:-120}"
CONCURRENCY="${CONCURRENCY:-4}"
DELAY_MS="${DELAY_MS:-1}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-5}"
PHASES="${PHASES:-baseline,server}"
TARGET_US="${TARGET_US:-1000}"
BUILD_WAIT="${BUILD_WAIT:-1800}"
UPSTREAM_PY="$ROOT/tests/conformance/upstream.py"
[ -f "$UPSTREAM_PY" ] || { log "missing $UPSTREAM_PY"; exit 1; }

# Newest mtime of the inputs of the server binary.
sources_mtime() {
    find "$ROOT/Sources" "$ROOT/Package.swift" "$ROOT/Package.resolved" -type f -printf '%T@\n' 2>/dev/null |
        sort -n | tail -n 1 | cut -d. -f1
}

binary_fresh() {
    [ -x "$1" ] || return 1
    [ "$(stat -c %Y "$1")" -ge "$(sources_mtime)" ]
}

wait_other_builds() {
    local deadline=$((SECONDS + BUILD_WAIT))
    while pgrep -f swift-build >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "another swift-build still runs after ${BUILD_WAIT}s; giving up"
            exit 1
        fi
        log "another swift-build is running; waiting"
        sleep 10
    done
}

ensure_release() {
    ASSISTANTS_SERVER_BIN="${ASSISTANTS_SERVER_BIN:-$ROOT/.build/release/assistants-server}"
    if [ "${SKIP_BUILD:-0}" = 1 ]; then
        log "SKIP_BUILD=1: using $ASSISTANTS_SERVER_BIN"
    elif binary_fresh "$ASSISTANTS_SERVER_BIN"; then
        log "$ASSISTANTS_SERVER_BIN is newer than the sources: no build"
    else
        wait_other_builds
        if binary_fresh "$ASSISTANTS_SERVER_BIN"; then
            log "$ASSISTANTS_SERVER_BIN was built meanwhile: no build"
        else
            log "swift build -c release --product assistants-server"
            (cd "$ROOT" && swift build -c release --product assistants-server) >&2
        fi
    fi
    if [ ! -x "$ASSISTANTS_SERVER_BIN" ]; then
        log "no server binary at $ASSISTANTS_SERVER_BIN"
        exit 1
    fi
}

log "preparing .venv-conformance (httpx for the driver)"
VENV_PY="$(EXTRA_PIP_PACKAGES=httpx "$ROOT/scripts/conformance-venv.sh")"

ensure_release

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/assistants-bench.XXXXXX")"
UPSTREAM_PORT="$(free_port)"
log "starting upstream: $UPSTREAM_PY --port $UPSTREAM_PORT --mode instant --stamp --stream-chunks $CHUNKS --delay-ms $DELAY_MS --nodelay"
"$VENV_PY" "$UPSTREAM_PY" --port "$UPSTREAM_PORT" --mode instant --stamp --stream-chunks "$CHUNKS" \
    --delay-ms "$DELAY_MS" --nodelay >"$BENCH_TMP/upstream.log" 2>&1 &
UPSTREAM_PID=$!
track_pid "$UPSTREAM_PID"
if ! wait_http "http://127.0.0.1:$UPSTREAM_PORT/health" "$UPSTREAM_PID" upstream; then
    tail -n 30 "$BENCH_TMP/upstream.log" >&2 || true
    exit 1
fi
UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT/v1"
start_server ASSISTANTS_UPSTREAM_URL="$UPSTREAM_URL" ASSISTANTS_UPSTREAM_API_KEY=bench-upstream-key

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "driver: $RUNS runs x $CHUNKS chunks per phase, $CONCURRENCY at a time, ${DELAY_MS} ms between chunks"
status=0
timeout 1200 "$VENV_PY" "$ROOT/bench/stream_driver.py" \
    --base-url "$BASE_URL" --upstream-url "$UPSTREAM_URL" \
    --server-pid "$SERVER_PID" --upstream-pid "$UPSTREAM_PID" --clk-tck "$(getconf CLK_TCK)" \
    --runs "$RUNS" --chunks "$CHUNKS" --concurrency "$CONCURRENCY" --warmup "$WARMUP" --rounds "$ROUNDS" --phases "$PHASES" \
    >"$BENCH_TMP/driver.out" || status=$?

printf '\n== bench/stream.sh: %s runs x %s chunks, %s concurrent, %s ms between upstream chunks, %s rounds, SQLite, %s ==\n' \
    "$RUNS" "$CHUNKS" "$CONCURRENCY" "$DELAY_MS" "$ROUNDS" "$ASSISTANTS_SERVER_BIN"
printf 'load average before: %s\n' "$LOAD_BEFORE"
verdict=0
"$BENCH_PY" - "$BENCH_TMP/driver.out" "$TARGET_US" <<'PY' || verdict=$?
import json, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        r = json.loads(line[len("RESULT "):])
        rows[r["phase"]] = r
target = float(sys.argv[2])
fmt = "{:<9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12} {:>13}"
print(fmt.format("phase", "runs ok", "deltas", "tokens", "p50 us", "p90 us", "p99 us", "max us", "tokens/s",
                 "srv CPU us/d", "upstr CPU us/c"))
for name in ("baseline", "server"):
    r = rows.get(name)
    if not r:
        continue
    cpu = r["server_cpu_us_per_delta"]
    print(fmt.format(name, f"{r['runs_ok']}/{r['runs']}", r["deltas"], r["tokens"], r["lat_us_p50"],
                     r["lat_us_p90"], r["lat_us_p99"], r["lat_us_max"], int(r["tokens_per_s"]),
                     "-" if cpu is None else cpu, r["upstream_cpu_us_per_chunk"]))
    if r["errors"]:
        print(f"          errors: {r['errors']}")
if "server" in rows:
    s = rows["server"]
    print(f"server events per run: {s.get('events_per_run')}")
    if s["deltas"] != s["tokens"]:
        print(f"note: {s['tokens']} upstream chunks arrived in {s['deltas']} deltas (coalesced)")
if "server" in rows and "baseline" in rows:
    s, b = rows["server"], rows["baseline"]
    added50 = s["lat_us_p50"] - b["lat_us_p50"]
    added99 = s["lat_us_p99"] - b["lat_us_p99"]
    print(f"added by the server: median {added50:.1f} us, p99 {added99:.1f} us "
          f"(server phase minus baseline; target median < {target:.0f} us)")
    sys.exit(0 if added50 < target else 3)
elif "server" in rows:
    s = rows["server"]
    print(f"server median {s['lat_us_p50']} us (no baseline; target median < {target:.0f} us)")
    sys.exit(0 if s["lat_us_p50"] < target else 3)
sys.exit(2)
PY
if [ "$status" -ne 0 ]; then
    echo "FAIL: driver exit $status (runs not completed or too few deltas); logs in $BENCH_TMP"
    KEEP_TMP=1
    exit "$status"
fi
if [ "$verdict" -eq 3 ]; then
    echo "OVER TARGET: median added latency >= ${TARGET_US} us"
    exit 3
elif [ "$verdict" -ne 0 ]; then
    echo "FAIL: no results"
    exit "$verdict"
fi
echo "OK: median added latency under ${TARGET_US} us"
